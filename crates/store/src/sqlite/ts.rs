//! Timestamps as fixed-width RFC 3339 UTC text with microseconds (`2026-01-02T03:04:05.123456Z`):
//! text order is time order, so SQL comparisons and indexes work, and values round-trip exactly.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::{StoreError, StoreResult};

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn ts_opt(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(ts)
}

pub(crate) fn parse_ts(s: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Invalid(format!("stored timestamp '{s}': {e}")))
}

pub(crate) fn parse_ts_opt(s: Option<String>) -> StoreResult<Option<DateTime<Utc>>> {
    s.as_deref().map(parse_ts).transpose()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::SubsecRound;

    #[test]
    fn round_trips_and_sorts() {
        let a = Utc::now().trunc_subsecs(6);
        assert_eq!(parse_ts(&ts(a)).unwrap(), a);
        let b = a + chrono::Duration::microseconds(1);
        assert!(ts(a) < ts(b));
        assert_eq!(ts(a).len(), "2026-01-02T03:04:05.123456Z".len());
    }
}
