//! `[connectors.sms]`: the SMS gateway and the rules of reminders.

use std::time::Duration;

use inkingi_interop::sms::{
    Caps, Provider, QuietHours, SmsConnector, SmsSettings, RWANDA_OFFSET_SECS,
};
use serde::{Deserialize, Serialize};

/// `[connectors.sms]`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    /// `kannel` or `africastalking`.
    pub provider: String,
    /// Kannel's smsbox (`http://HOST:13013`) or Africa's Talking's API base URL.
    pub url: String,
    /// Kannel sendsms-user, or the Africa's Talking application username.
    pub username: String,
    /// Kannel's password; better in the environment: `INKINGI_CONNECTORS__SMS__PASSWORD`.
    pub password: String,
    /// Africa's Talking's API key; better in the environment:
    /// `INKINGI_CONNECTORS__SMS__API_KEY`.
    pub api_key: String,
    /// Sender id (`from`); empty: the gateway's default.
    pub sender_id: String,
    /// Inkingi's public base URL, for Kannel's dlr-url (`…/sms/dlr/kannel`); empty: no
    /// delivery reports asked.
    pub dlr_base: String,
    pub timeout_ms: u64,
    /// Local (Kigali) hours when nothing is sent, `HH:MM-HH:MM`; empty: none.
    pub quiet_hours: String,
    /// Planned messages (reminders, digests, escalations) per person and day / week.
    pub max_per_day: u32,
    pub max_per_week: u32,
    /// Language of registry people with none recorded: rw, en or fr.
    pub default_language: String,
    /// Daily reminders of one overdue service before the supervisor is told.
    pub escalate_after: u32,
    /// Local time the worker plans the day's reminders, `HH:MM`.
    pub plan_at: String,
    /// Seconds between the worker's looks at the notification outbox.
    pub poll_secs: u64,
}

impl Default for SmsConfig {
    fn default() -> Self {
        let s = SmsSettings::default();
        SmsConfig {
            provider: "kannel".into(),
            url: String::new(),
            username: String::new(),
            password: String::new(),
            api_key: String::new(),
            sender_id: String::new(),
            dlr_base: String::new(),
            timeout_ms: 15_000,
            quiet_hours: "21:00-07:00".into(),
            max_per_day: s.caps.per_day,
            max_per_week: s.caps.per_week,
            default_language: s.default_language,
            escalate_after: s.escalate_after,
            plan_at: "08:00".into(),
            poll_secs: 60,
        }
    }
}

/// Keeps the secrets out of logs.
impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsConfig")
            .field("provider", &self.provider)
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("api_key", &"[redacted]")
            .field("sender_id", &self.sender_id)
            .field("dlr_base", &self.dlr_base)
            .field("quiet_hours", &self.quiet_hours)
            .finish()
    }
}

impl SmsConfig {
    /// Checks every setting, naming the key.
    pub fn check(&self) -> Result<(), String> {
        self.connector()?;
        self.settings()?;
        self.plan_at()?;
        Ok(())
    }

    pub fn connector(&self) -> Result<SmsConnector, String> {
        let key = |e: String| format!("connectors.sms.{e}");
        let provider =
            Provider::parse(self.provider.trim()).map_err(|e| key(format!("provider {e}")))?;
        let c = SmsConnector {
            provider,
            url: self.url.trim().into(),
            username: self.username.trim().into(),
            secret: match provider {
                Provider::Kannel => self.password.clone(),
                Provider::AfricasTalking => self.api_key.trim().into(),
            },
            sender_id: self.sender_id.trim().into(),
            dlr_base: self.dlr_base.trim().into(),
            timeout: Duration::from_millis(self.timeout_ms.max(1)),
        };
        c.check().map_err(key)?;
        Ok(c)
    }

    pub fn settings(&self) -> Result<SmsSettings, String> {
        let quiet = match self.quiet_hours.trim() {
            "" => None,
            q => Some(
                QuietHours::parse(q, RWANDA_OFFSET_SECS)
                    .map_err(|e| format!("connectors.sms.quiet_hours {e}"))?,
            ),
        };
        let lang = self.default_language.trim();
        if !inkingi_interop::sms::catalogue::LANGUAGES.contains(&lang) {
            return Err(format!(
                "connectors.sms.default_language '{lang}': expected rw, en or fr"
            ));
        }
        if self.escalate_after == 0 {
            return Err("connectors.sms.escalate_after: at least 1".into());
        }
        Ok(SmsSettings {
            quiet,
            caps: Caps {
                per_day: self.max_per_day,
                per_week: self.max_per_week,
            },
            default_language: lang.into(),
            escalate_after: self.escalate_after,
        })
    }

    /// `plan_at` as time after local midnight.
    pub fn plan_at(&self) -> Result<Duration, String> {
        let t = chrono::NaiveTime::parse_from_str(self.plan_at.trim(), "%H:%M")
            .map_err(|_| format!("connectors.sms.plan_at '{}': expected HH:MM", self.plan_at))?;
        Ok(Duration::from_secs(u64::from(
            chrono::Timelike::num_seconds_from_midnight(&t),
        )))
    }
}
