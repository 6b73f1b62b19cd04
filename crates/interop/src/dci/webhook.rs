//! Partner webhooks: registry events as plain JSON, signed with HMAC-SHA256 over a timestamp
//! and the body, delivered through the same outbox, per-household chains, retries, circuit
//! breaker and dead letters as DCI notifications.
//!
//! Each delivery carries
//! - `X-Inkingi-Event`: the event id, the same on every retry (receivers drop repeats by it);
//! - `X-Inkingi-Timestamp`: Unix seconds when this attempt was signed;
//! - `X-Inkingi-Signature`: `v1=` and the hex HMAC-SHA256, keyed with the webhook's secret, of
//!   `{timestamp}.{body}`. Signing the timestamp lets receivers refuse old replays (e.g. older
//!   than five minutes) without keeping every event id forever.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use inkingi_store::dci_notify::{OutboxEvent, Subscription};
use serde_json::{json, Value};
use sha2::Sha256;

use super::envelope::timestamp;
use super::notify::EventType;

pub const EVENT_HEADER: &str = "x-inkingi-event";
pub const TIMESTAMP_HEADER: &str = "x-inkingi-timestamp";
pub const SIGNATURE_HEADER: &str = "x-inkingi-signature";

/// The JSON a webhook receives for one event.
pub fn body(
    sub: &Subscription,
    ev: &OutboxEvent,
    etype: EventType,
    records: Vec<Value>,
    seq: i64,
) -> Value {
    let e = &ev.event;
    json!({
        "id": e.id,
        "type": etype.as_str(),
        "occurred_at": timestamp(e.at),
        "webhook": sub.code,
        "subject_id": e.household_id,
        "seq": seq,
        "record_type": sub.record_type,
        "records": records,
    })
}

fn mac(secret: &str, ts: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(ts.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `v1=` and the hex signature of `body` at `at`.
pub fn sign(secret: &str, at: DateTime<Utc>, body: &[u8]) -> String {
    let tag = mac(secret, at.timestamp(), body).finalize().into_bytes();
    format!("v1={}", hex::encode(tag))
}

/// What a receiver does: checks the signature (in constant time) and that the timestamp is
/// within `tolerance_secs` of `now`.
pub fn verify(
    secret: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance_secs: i64,
) -> Result<(), &'static str> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| "bad timestamp")?;
    if (now.timestamp() - ts).abs() > tolerance_secs {
        return Err("timestamp outside the tolerance");
    }
    let hex_sig = signature
        .trim()
        .strip_prefix("v1=")
        .ok_or("signature is not v1=…")?;
    let tag = hex::decode(hex_sig).map_err(|_| "signature is not hex")?;
    mac(secret, ts, body)
        .verify_slice(&tag)
        .map_err(|_| "signature does not match")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn signatures_verify_and_refuse_changes_old_timestamps_and_other_keys() {
        let now = Utc::now();
        let body = br#"{"id":"e1","type":"household_registered"}"#;
        let sig = sign("s3cret", now, body);
        let ts = now.timestamp().to_string();
        assert_eq!(verify("s3cret", &ts, &sig, body, now, 300), Ok(()));
        assert_eq!(
            verify("s3cret", &ts, &sig, b"{}", now, 300),
            Err("signature does not match")
        );
        assert_eq!(
            verify("other", &ts, &sig, body, now, 300),
            Err("signature does not match")
        );
        let later = now + chrono::Duration::minutes(10);
        assert_eq!(
            verify("s3cret", &ts, &sig, body, later, 300),
            Err("timestamp outside the tolerance")
        );
        // The same body signed at another time is another signature.
        assert_ne!(sign("s3cret", later, body), sig);
    }
}
