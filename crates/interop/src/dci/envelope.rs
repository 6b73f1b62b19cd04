//! The `{signature, header, message}` envelope of every DCI message, the header checks, and the
//! acknowledgement an asynchronous endpoint answers with.
//!
//! Input is read leniently where the published samples disagree with the schema (e.g.
//! `total_count` sent as the string "1", `meta` as ""), and strictly where it matters: a
//! missing required header field is an `ERR`, a replayed or stale message a `rjct`.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The protocol version this server speaks.
pub const VERSION: &str = "1.0.0";

/// An inbound envelope; `message` is read by each endpoint into its own type.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub signature: Option<Value>,
    pub header: Header,
    pub message: Value,
}

/// `MsgHeader_V1.0.0`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Header {
    #[serde(default)]
    pub version: Option<String>,
    pub message_id: String,
    pub message_ts: String,
    pub action: String,
    pub sender_id: String,
    #[serde(default)]
    pub sender_uri: Option<String>,
    #[serde(default)]
    pub receiver_id: Option<String>,
    #[serde(deserialize_with = "count_from_int_or_string")]
    pub total_count: u64,
    #[serde(default)]
    pub is_msg_encrypted: Option<bool>,
    #[serde(default)]
    pub meta: Option<Value>,
}

/// The published samples send counts as strings ("1"); the schema says integer: take both.
fn count_from_int_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| serde::de::Error::custom(format!("total_count {n}: not a count"))),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("total_count '{s}': not a count"))),
        other => Err(serde::de::Error::custom(format!(
            "total_count: expected an integer, got {other}"
        ))),
    }
}

/// `MsgHeaderStatusReasonCode`: why a whole message is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderReason {
    VersionInvalid,
    MessageIdDuplicate,
    MessageTsInvalid,
    ActionInvalid,
    ActionNotSupported,
    TotalCountInvalid,
    TotalCountLimitExceeded,
}

impl HeaderReason {
    pub fn code(self) -> &'static str {
        match self {
            HeaderReason::VersionInvalid => "rjct.version.invalid",
            HeaderReason::MessageIdDuplicate => "rjct.message_id.duplicate",
            HeaderReason::MessageTsInvalid => "rjct.message_ts.invalid",
            HeaderReason::ActionInvalid => "rjct.action.invalid",
            HeaderReason::ActionNotSupported => "rjct.action.not_supported",
            HeaderReason::TotalCountInvalid => "rjct.total_count.invalid",
            HeaderReason::TotalCountLimitExceeded => "rjct.total_count.limit_exceeded",
        }
    }

    /// The transport-level `Error.code` an asynchronous NACK carries for this reason (the
    /// acknowledgement's error codes are a different list from the header's reason codes).
    pub fn ack_error(self) -> ErrorCode {
        match self {
            HeaderReason::VersionInvalid => ErrorCode::VersionNotSupported,
            _ => ErrorCode::RequestBad,
        }
    }
}

/// A message refused as a whole, with a reason a sender can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRejection {
    pub reason: HeaderReason,
    pub message: String,
}

impl HeaderRejection {
    pub fn new(reason: HeaderReason, message: impl Into<String>) -> Self {
        HeaderRejection {
            reason,
            message: message.into(),
        }
    }
}

/// The `Error.code` values of an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    RequestBad,
    VersionNotSupported,
    SenderUriInvalid,
    SignatureInvalid,
    EncryptionInvalid,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::RequestBad => "err.request.bad",
            ErrorCode::VersionNotSupported => "err.version.not_supported",
            ErrorCode::SenderUriInvalid => "err.sender_uri.invalid",
            ErrorCode::SignatureInvalid => "err.signature.invalid",
            ErrorCode::EncryptionInvalid => "err.encryption.invalid",
        }
    }
}

/// What the header checks need besides the header.
#[derive(Debug, Clone, Copy)]
pub struct HeaderRules<'a> {
    /// The action the endpoint serves (`search`, `txn-status`).
    pub action: &'a str,
    /// How far `message_ts` may be from now, either way.
    pub max_skew: Duration,
    /// Most requests in one message.
    pub max_batch: u64,
    pub now: DateTime<Utc>,
}

impl Header {
    /// Checks version, action and timestamp; `requests` is how many requests the message holds.
    pub fn check(&self, rules: &HeaderRules<'_>, requests: usize) -> Result<(), HeaderRejection> {
        use HeaderReason::*;
        let version = self.version.as_deref().unwrap_or(VERSION);
        if version != VERSION {
            return Err(HeaderRejection::new(
                VersionInvalid,
                format!(
                    "header.version '{}': only {VERSION} is supported",
                    short(version)
                ),
            ));
        }
        if self.action != rules.action {
            return Err(HeaderRejection::new(
                ActionInvalid,
                format!(
                    "header.action '{}': this endpoint takes '{}'",
                    short(&self.action),
                    rules.action
                ),
            ));
        }
        let ts = DateTime::parse_from_rfc3339(self.message_ts.trim()).map_err(|e| {
            HeaderRejection::new(
                MessageTsInvalid,
                format!(
                    "header.message_ts '{}': not an ISO 8601 date-time with offset ({e})",
                    short(&self.message_ts)
                ),
            )
        })?;
        let skew = (rules.now - ts.with_timezone(&Utc)).abs();
        if skew > rules.max_skew {
            return Err(HeaderRejection::new(
                MessageTsInvalid,
                format!(
                    "header.message_ts {}: more than {} s from this server's clock ({})",
                    short(&self.message_ts),
                    rules.max_skew.num_seconds(),
                    rules.now.to_rfc3339()
                ),
            ));
        }
        if self.total_count > rules.max_batch {
            return Err(HeaderRejection::new(
                TotalCountLimitExceeded,
                format!(
                    "header.total_count {}: at most {} requests per message",
                    self.total_count, rules.max_batch
                ),
            ));
        }
        if self.total_count != requests as u64 {
            return Err(HeaderRejection::new(
                TotalCountInvalid,
                format!(
                    "header.total_count {} but the message holds {requests} request(s)",
                    self.total_count
                ),
            ));
        }
        Ok(())
    }
}

/// Input echoed in messages is cut short: a reply must not amplify what it was sent.
pub fn short(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// `MsgCallbackHeader_V1.0.0`: the header of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackHeader {
    pub version: String,
    pub message_id: String,
    pub message_ts: String,
    pub action: String,
    /// `rcvd`, `pdng`, `succ` or `rjct`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason_message: Option<String>,
    pub total_count: u64,
    pub completed_count: u64,
    pub sender_id: String,
    pub receiver_id: String,
    pub is_msg_encrypted: bool,
}

impl CallbackHeader {
    /// A fresh header answering `to` (whose sender becomes the receiver).
    pub fn answering(to: &Header, action: &str, our_id: &str, now: DateTime<Utc>) -> Self {
        CallbackHeader {
            version: VERSION.to_string(),
            message_id: uuid::Uuid::now_v7().to_string(),
            message_ts: timestamp(now),
            action: action.to_string(),
            status: "succ".into(),
            status_reason_code: None,
            status_reason_message: None,
            total_count: to.total_count,
            completed_count: 0,
            sender_id: our_id.to_string(),
            receiver_id: to.sender_id.clone(),
            is_msg_encrypted: false,
        }
    }
}

/// An answer envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer<M> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    pub header: CallbackHeader,
    pub message: M,
}

/// ISO 8601 with milliseconds and `Z`, as the samples write it.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The `Response` schema: what an asynchronous endpoint answers at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub message: AckMessage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AckMessage {
    /// `ACK`, `NACK` or `ERR`.
    pub ack_status: String,
    pub timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<AckError>,
    pub correlation_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AckError {
    pub code: String,
    pub message: String,
}

impl Ack {
    pub fn accepted(correlation_id: &str, now: DateTime<Utc>) -> Ack {
        Ack::with("ACK", None, correlation_id, now)
    }

    /// Understood but refused (replay, stale, wrong action…): the rejection's reason code
    /// leads the error message.
    pub fn nack(r: &HeaderRejection, correlation_id: &str, now: DateTime<Utc>) -> Ack {
        let err = AckError {
            code: r.reason.ack_error().as_str().into(),
            message: format!("{}: {}", r.reason.code(), r.message),
        };
        Ack::with("NACK", Some(err), correlation_id, now)
    }

    /// Not understood: malformed JSON, a missing field, an unsupported feature.
    pub fn err(code: ErrorCode, message: String, correlation_id: &str, now: DateTime<Utc>) -> Ack {
        let err = AckError {
            code: code.as_str().into(),
            message,
        };
        Ack::with("ERR", Some(err), correlation_id, now)
    }

    fn with(status: &str, error: Option<AckError>, cid: &str, now: DateTime<Utc>) -> Ack {
        Ack {
            message: AckMessage {
                ack_status: status.into(),
                timestamp: timestamp(now),
                error,
                correlation_id: cid.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn header(ts: &str, count: Value) -> Header {
        serde_json::from_value(json!({
            "version": "1.0.0", "message_id": "m1", "message_ts": ts, "action": "search",
            "sender_id": "sp", "sender_uri": "", "receiver_id": "sr", "total_count": count,
            "is_msg_encrypted": false, "meta": ""
        }))
        .unwrap()
    }

    fn rules(now: DateTime<Utc>) -> HeaderRules<'static> {
        HeaderRules {
            action: "search",
            max_skew: Duration::minutes(5),
            max_batch: 10,
            now,
        }
    }

    #[test]
    fn total_count_as_string_or_integer() {
        let now = Utc::now();
        assert_eq!(header(&timestamp(now), json!("2")).total_count, 2);
        assert_eq!(header(&timestamp(now), json!(3)).total_count, 3);
        let bad = serde_json::from_value::<Header>(json!({
            "message_id": "m", "message_ts": "x", "action": "search", "sender_id": "s",
            "total_count": "two"
        }));
        assert!(bad.unwrap_err().to_string().contains("total_count 'two'"));
    }

    #[test]
    fn header_checks_give_the_reason_codes() {
        let now = Utc::now();
        let ok = header(&timestamp(now), json!(1));
        assert_eq!(ok.check(&rules(now), 1), Ok(()));
        let code = |h: &Header, n| h.check(&rules(now), n).unwrap_err().reason.code();
        assert_eq!(code(&ok, 2), "rjct.total_count.invalid");
        let stale = header(&timestamp(now - Duration::minutes(6)), json!(1));
        assert_eq!(code(&stale, 1), "rjct.message_ts.invalid");
        let future = header(&timestamp(now + Duration::minutes(6)), json!(1));
        assert_eq!(code(&future, 1), "rjct.message_ts.invalid");
        assert_eq!(
            code(&header("yesterday", json!(1)), 1),
            "rjct.message_ts.invalid"
        );
        let big = header(&timestamp(now), json!(11));
        assert_eq!(code(&big, 11), "rjct.total_count.limit_exceeded");
        let mut other = ok.clone();
        other.action = "subscribe".into();
        assert_eq!(code(&other, 1), "rjct.action.invalid");
        other = ok.clone();
        other.version = Some("2.0.0".into());
        assert_eq!(code(&other, 1), "rjct.version.invalid");
    }
}
