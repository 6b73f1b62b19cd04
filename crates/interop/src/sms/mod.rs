//! Outbound SMS: a gateway trait with two adapters — Kannel's HTTP `sendsms` interface and
//! Africa's Talking's messaging API — the settings of `[connectors.sms]` (quiet hours, caps),
//! the message catalogue in three languages, and the `sms.send` job handler.
//!
//! Formats (see docs/CHILDREN.md for the sources):
//! - **Kannel**: `GET {url}/cgi-bin/sendsms?username&password&from&to&text&charset&coding&
//!   dlr-mask&dlr-url`; answers `202` with `0: Accepted for delivery` or `3: Queued for later
//!   delivery`, `4xx` with the reason (`Authorization failed`…). It calls `dlr-url` back (GET)
//!   with `%d` replaced by the report type: 1 delivered to phone, 2 not delivered to phone,
//!   4 queued on the SMSC, 8 delivered to the SMSC, 16 not delivered to the SMSC.
//! - **Africa's Talking**: `POST {url}/version1/messaging` (form: `username`, `to`,
//!   `message`, `from`; headers `apiKey`, `Accept: application/json`); answers
//!   `{"SMSMessageData": {"Message": …, "Recipients": [{"statusCode", "number", "status",
//!   "cost", "messageId"}]}}` (status codes 100–102 taken, 5xx transient, others refused).
//!   Delivery reports are POSTed (form) to the callback URL set in its dashboard: `id`,
//!   `status` (`Sent`, `Submitted`, `Buffered`, `Rejected`, `Success`, `Failed`),
//!   `phoneNumber`, `networkCode`, `failureReason`.

pub mod catalogue;
pub mod gateways;
pub mod send;

use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveTime, TimeZone, Utc};

pub use gateways::{AfricasTalking, Kannel};

/// Which gateway protocol a connector speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Kannel,
    #[serde(rename = "africastalking")]
    AfricasTalking,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Kannel => "kannel",
            Provider::AfricasTalking => "africastalking",
        }
    }

    pub fn parse(s: &str) -> Result<Provider, String> {
        match s {
            "kannel" => Ok(Provider::Kannel),
            "africastalking" => Ok(Provider::AfricasTalking),
            other => Err(format!("'{other}': expected kannel or africastalking")),
        }
    }
}

/// A message for the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<'a> {
    pub message_id: uuid::Uuid,
    /// E.164 (`+2507…`).
    pub to: &'a str,
    pub text: &'a str,
    /// Authenticates the delivery reports of this message (Kannel's dlr-url carries it).
    pub dlr_token: &'a str,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth another attempt: time-out, 5xx, 429, an unreadable answer.
    #[error("{0}")]
    Transient(String),
    /// The gateway refused the message or our credentials: retrying cannot help.
    #[error("{0}")]
    Refused(String),
}

/// An SMS gateway: takes one message, says whether it took it and under which id.
#[async_trait::async_trait]
pub trait SmsGateway: Send + Sync + 'static {
    fn provider(&self) -> Provider;
    /// The system called, as breakers and metrics name it (`scheme://host:port`).
    fn system(&self) -> String;
    /// Sends; `Ok` with the gateway's message id when it gives one.
    async fn send(&self, m: &Outgoing<'_>) -> Result<Option<String>, SendError>;
}

/// Where quiet hours are counted from: Rwanda is UTC+2 all year.
pub const RWANDA_OFFSET_SECS: i32 = 2 * 3600;

/// Hours (local) when no SMS is sent; a message planned inside them waits for their end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub offset: FixedOffset,
}

impl QuietHours {
    /// Parses `HH:MM-HH:MM` (local time at `offset_secs` east of UTC); the window may wrap
    /// midnight (`21:00-07:00`). Equal ends mean no quiet hours.
    pub fn parse(s: &str, offset_secs: i32) -> Result<QuietHours, String> {
        let bad = || format!("'{s}': expected HH:MM-HH:MM, e.g. 21:00-07:00");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let t = |x: &str| NaiveTime::parse_from_str(x.trim(), "%H:%M").map_err(|_| bad());
        Ok(QuietHours {
            start: t(a)?,
            end: t(b)?,
            offset: FixedOffset::east_opt(offset_secs)
                .ok_or_else(|| format!("UTC offset {offset_secs} s is out of range"))?,
        })
    }

    fn contains(&self, t: NaiveTime) -> bool {
        if self.start <= self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// The earliest time at or after `now` outside the quiet hours.
    pub fn next_allowed(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let local = now.with_timezone(&self.offset);
        if !self.contains(local.time()) {
            return now;
        }
        let mut day = local.date_naive();
        // Inside a wrapping window before midnight: it ends tomorrow.
        if self.start > self.end && local.time() >= self.start {
            day = day.succ_opt().unwrap_or(day);
        }
        self.offset
            .from_local_datetime(&day.and_time(self.end))
            .single()
            .map_or(now, |t| t.with_timezone(&Utc))
    }
}

/// How many planned messages one person may get (beneficiary notifications are not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub per_day: u32,
    pub per_week: u32,
}

/// Everything about sending besides the gateway: the settings of `[connectors.sms]`.
#[derive(Debug, Clone)]
pub struct SmsSettings {
    pub quiet: Option<QuietHours>,
    pub caps: Caps,
    /// Language of registry people with none recorded (`rw`, `en`, `fr`).
    pub default_language: String,
    /// Reminders of one overdue service before the supervisor is told.
    pub escalate_after: u32,
}

impl Default for SmsSettings {
    fn default() -> Self {
        SmsSettings {
            quiet: None,
            caps: Caps {
                per_day: 2,
                per_week: 5,
            },
            default_language: "rw".into(),
            escalate_after: 3,
        }
    }
}

/// A configured gateway: base URL, credentials, sender id, and our delivery-report base.
#[derive(Clone, PartialEq)]
pub struct SmsConnector {
    pub provider: Provider,
    /// Kannel's smsbox (`http://host:13013`) or Africa's Talking's API host.
    pub url: String,
    /// Kannel sendsms-user, or the Africa's Talking application username.
    pub username: String,
    /// Kannel password, or the Africa's Talking API key.
    pub secret: String,
    /// Sender id (`from`); empty: the gateway's default.
    pub sender_id: String,
    /// Inkingi's public base URL, to which Kannel's dlr-url points (`…/sms/dlr/kannel`).
    pub dlr_base: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for SmsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsConnector")
            .field("provider", &self.provider)
            .field("url", &self.url)
            .field("username", &self.username)
            .field("secret", &"[redacted]")
            .field("sender_id", &self.sender_id)
            .field("dlr_base", &self.dlr_base)
            .finish()
    }
}

impl SmsConnector {
    /// Refuses settings that cannot work, naming the setting.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [("url", &self.url), ("dlr_base", &self.dlr_base)] {
            if name == "dlr_base" && v.is_empty() {
                continue;
            }
            match reqwest::Url::parse(v) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
                Ok(_) => return Err(format!("{name} '{v}': an http or https URL is needed")),
                Err(e) => return Err(format!("{name} '{v}': {e}")),
            }
        }
        if self.username.trim().is_empty() {
            return Err("username: needed".into());
        }
        if self.secret.trim().is_empty() {
            return Err(match self.provider {
                Provider::Kannel => "password: needed".into(),
                Provider::AfricasTalking => "api_key: needed".into(),
            });
        }
        Ok(())
    }

    /// The gateway adapter for these settings.
    pub fn gateway(&self) -> Result<std::sync::Arc<dyn SmsGateway>, String> {
        self.check()?;
        Ok(match self.provider {
            Provider::Kannel => std::sync::Arc::new(Kannel::new(self.clone())?),
            Provider::AfricasTalking => std::sync::Arc::new(AfricasTalking::new(self.clone())?),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        // 2026-03-10 in Kigali, as UTC.
        let local = chrono::NaiveDate::from_ymd_opt(2026, 3, 10)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap();
        FixedOffset::east_opt(RWANDA_OFFSET_SECS)
            .unwrap()
            .from_local_datetime(&local)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn quiet_hours_defer_to_their_end_across_midnight() {
        let q = QuietHours::parse("21:00-07:00", RWANDA_OFFSET_SECS).unwrap();
        assert_eq!(q.next_allowed(at(12, 0)), at(12, 0));
        assert_eq!(q.next_allowed(at(6, 59)), at(7, 0));
        let late = q.next_allowed(at(22, 30));
        assert_eq!(late - at(22, 30), chrono::Duration::minutes(8 * 60 + 30));
        assert_eq!(q.next_allowed(at(7, 0)), at(7, 0));
    }

    #[test]
    fn quiet_hours_refuse_bad_text() {
        let e = QuietHours::parse("9pm-7am", RWANDA_OFFSET_SECS).unwrap_err();
        assert!(e.contains("HH:MM-HH:MM"), "{e}");
    }
}
