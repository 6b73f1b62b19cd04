//! The batch recompute's reads of the two large fact tables, one row per person: the
//! database concatenates a person's immunisations (and measurements) in the order the
//! evaluator reads them, and this module splits them again.
//!
//! Why: at national size the batch reads ~20 facts per child (47 M rows for 2.3 M children).
//! Read row by row, most of the CPU went to the driver's per-row machinery (a channel message
//! and a copied value per column, a date parsed through a format string), not to the
//! database. One text value per person makes that per-person instead of per-fact.
//!
//! The format: records separated by the ASCII record separator (0x1E), fields by the unit
//! separator (0x1F); neither occurs in a date, a number, a measurement kind or a mapped
//! vaccine name. Values are read back exactly: dates as `YYYY-MM-DD`, measurement values with
//! 17 significant digits on SQLite (PostgreSQL prints the shortest exact form by default).

use chrono::{Datelike, NaiveDate};

use crate::child_status::StatusRow;
use crate::children::{DoseFact, MeasureFact, MeasurementKind};
use crate::{BackendKind, StoreError, StoreResult};

const RS: char = '\u{1e}';
const US: char = '\u{1f}';

/// A person's immunisations in one value: `date US dose US =vaccine` (dose empty when not
/// numbered, vaccine empty when not mapped), ordered as `facts_of_people` orders them.
pub(crate) fn doses_sql(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Sqlite => {
            "SELECT person_id, group_concat(occurred_on || char(31) \
             || COALESCE(CAST(dose_number AS TEXT), '') || char(31) \
             || COALESCE('=' || vaccine, ''), char(30) ORDER BY occurred_on, id) AS packed \
             FROM child_immunizations WHERE person_id >= $1 AND person_id <= $2 \
             GROUP BY person_id"
        }
        BackendKind::Postgres => {
            "SELECT person_id, string_agg(CAST(occurred_on AS TEXT) || chr(31) \
             || COALESCE(CAST(dose_number AS TEXT), '') || chr(31) \
             || COALESCE('=' || vaccine, ''), chr(30) ORDER BY occurred_on, id) AS packed \
             FROM child_immunizations WHERE person_id >= $1 AND person_id <= $2 \
             GROUP BY person_id"
        }
    }
}

/// A person's measurements in one value: `date US kind US value`.
pub(crate) fn measures_sql(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Sqlite => {
            "SELECT person_id, group_concat(measured_on || char(31) || kind || char(31) \
             || printf('%!.17g', value), char(30) ORDER BY measured_on, id) AS packed \
             FROM child_measurements WHERE person_id >= $1 AND person_id <= $2 \
             GROUP BY person_id"
        }
        BackendKind::Postgres => {
            "SELECT person_id, string_agg(CAST(measured_on AS TEXT) || chr(31) || kind \
             || chr(31) || CAST(value AS TEXT), chr(30) ORDER BY measured_on, id) AS packed \
             FROM child_measurements WHERE person_id >= $1 AND person_id <= $2 \
             GROUP BY person_id"
        }
    }
}

fn bad(table: &str, record: &str, what: &str) -> StoreError {
    StoreError::Invalid(format!("{table}: packed record '{record}': {what}"))
}

/// `YYYY-MM-DD` without a format string (the batch parses millions).
pub(crate) fn parse_day(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, num(5..7)?, num(8..10)?)
}

fn fields<'a>(table: &str, record: &'a str) -> StoreResult<[&'a str; 3]> {
    let mut it = record.split(US);
    let (Some(a), Some(b), Some(c), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(bad(table, record, "expected three fields"));
    };
    Ok([a, b, c])
}

fn day_of(table: &str, record: &str, s: &str) -> StoreResult<NaiveDate> {
    parse_day(s).ok_or_else(|| bad(table, record, "not a YYYY-MM-DD date"))
}

/// Splits what [`doses_sql`] packed.
pub(crate) fn unpack_doses(packed: &str) -> StoreResult<Vec<DoseFact>> {
    const T: &str = "child_immunizations";
    packed
        .split(RS)
        .map(|record| {
            let [on, dose, vaccine] = fields(T, record)?;
            let dose = match dose {
                "" => None,
                d => Some(
                    d.parse::<i64>()
                        .map_err(|_| bad(T, record, "dose is not a number"))?,
                ),
            };
            Ok(DoseFact {
                vaccine: vaccine.strip_prefix('=').map(str::to_string),
                // As the row-by-row read: a dose number out of range counts as none.
                dose: dose.and_then(|d| u32::try_from(d).ok()),
                on: day_of(T, record, on)?,
            })
        })
        .collect()
}

/// Splits what [`measures_sql`] packed.
pub(crate) fn unpack_measures(packed: &str) -> StoreResult<Vec<MeasureFact>> {
    const T: &str = "child_measurements";
    packed
        .split(RS)
        .map(|record| {
            let [on, kind, value] = fields(T, record)?;
            Ok(MeasureFact {
                kind: MeasurementKind::parse(kind)
                    .ok_or_else(|| bad(T, record, "unknown measurement kind"))?,
                value: value
                    .parse()
                    .map_err(|_| bad(T, record, "value is not a number"))?,
                on: day_of(T, record, on)?,
            })
        })
        .collect()
}

/// Status rows written per statement by [`rows_insert_sql`]: one bound JSON value each.
pub(crate) const ROWS_PER_STATEMENT: usize = 5000;

/// An INSERT of the status rows packed by [`pack_rows`] as the one bind `$1` (the database
/// splits the JSON array), then `tail` (an upsert clause or nothing). Twelve binds a row cost
/// more in the driver than the database spends storing the row.
pub(crate) fn rows_insert_sql(kind: BackendKind, tail: &str) -> String {
    const COLS: &str = "INSERT INTO child_services_status (person_id, schedule, service, \
        occurrence, schedule_version, village_code, status, opens, due_by, closes, \
        completed_on, evaluated_on) ";
    match kind {
        BackendKind::Sqlite => format!(
            "{COLS}SELECT unhex(j.value ->> 0), j.value ->> 1, j.value ->> 2, j.value ->> 3, \
             j.value ->> 4, j.value ->> 5, j.value ->> 6, j.value ->> 7, j.value ->> 8, \
             j.value ->> 9, j.value ->> 10, j.value ->> 11 FROM json_each($1) AS j \
             WHERE TRUE{tail}"
        ),
        BackendKind::Postgres => format!(
            "{COLS}SELECT CAST(j ->> 0 AS uuid), j ->> 1, j ->> 2, CAST(j ->> 3 AS integer), \
             j ->> 4, j ->> 5, j ->> 6, CAST(j ->> 7 AS date), CAST(j ->> 8 AS date), \
             CAST(j ->> 9 AS date), CAST(j ->> 10 AS date), CAST(j ->> 11 AS date) \
             FROM jsonb_array_elements(CAST($1 AS jsonb)) AS j{tail}"
        ),
    }
}

/// The rows as a JSON array of arrays, in [`rows_insert_sql`]'s column order.
pub(crate) fn pack_rows(rows: &[&StatusRow]) -> String {
    let mut out = String::with_capacity(rows.len() * 160 + 2);
    out.push('[');
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("[\"");
        out.push_str(&r.person_id.simple().to_string());
        out.push_str("\",");
        push_str(&mut out, &r.schedule);
        out.push(',');
        push_str(&mut out, &r.service);
        out.push(',');
        out.push_str(&r.occurrence.to_string());
        out.push(',');
        push_str(&mut out, &r.schedule_version);
        out.push(',');
        match &r.village_code {
            Some(v) => push_str(&mut out, v),
            None => out.push_str("null"),
        }
        out.push(',');
        push_str(&mut out, r.status.as_str());
        for d in [
            Some(r.window.opens),
            Some(r.window.due_by),
            r.window.closes,
            r.completed_on,
            Some(r.evaluated_on),
        ] {
            out.push(',');
            match d {
                Some(d) => {
                    out.push('"');
                    push_day(&mut out, d);
                    out.push('"');
                }
                None => out.push_str("null"),
            }
        }
        out.push(']');
    }
    out.push(']');
    out
}

/// A JSON string (escaped by serde_json when it needs escaping at all).
fn push_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::Value::from(s).to_string());
    }
}

/// `YYYY-MM-DD` (years 0–9999, as dates are stored) without a format string.
pub(crate) fn push_day(out: &mut String, d: NaiveDate) {
    let digits = |out: &mut String, n: u32, width: u32| {
        for p in (0..width).rev() {
            let digit = (n / 10u32.pow(p)) % 10;
            out.push(char::from(b'0' + u8::try_from(digit).unwrap_or(0)));
        }
    };
    digits(out, u32::try_from(d.year()).unwrap_or(0), 4);
    out.push('-');
    digits(out, d.month(), 2);
    out.push('-');
    digits(out, d.day(), 2);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn days_parse_like_chrono_and_refuse_the_rest() {
        for s in ["2024-02-29", "2026-11-23", "0001-01-01", "9999-12-31"] {
            assert_eq!(parse_day(s), Some(day(s)), "{s}");
        }
        for s in [
            "2023-02-29",
            "2026-13-01",
            "2026-1-01",
            "2026/11/23",
            "",
            "20261123xx",
        ] {
            assert_eq!(parse_day(s), None, "{s}");
        }
    }

    #[test]
    fn doses_unpack_numbered_unnumbered_and_unmapped() {
        let packed = "2025-06-01\u{1f}1\u{1f}=BCG\u{1e}2025-06-01\u{1f}\u{1f}\u{1e}\
                      2025-07-13\u{1f}-1\u{1f}=OPV";
        let got = unpack_doses(packed).unwrap();
        assert_eq!(
            got,
            vec![
                DoseFact {
                    vaccine: Some("BCG".into()),
                    dose: Some(1),
                    on: day("2025-06-01")
                },
                DoseFact {
                    vaccine: None,
                    dose: None,
                    on: day("2025-06-01")
                },
                DoseFact {
                    vaccine: Some("OPV".into()),
                    dose: None,
                    on: day("2025-07-13")
                },
            ]
        );
    }

    #[test]
    fn measures_unpack_exactly_and_bad_records_are_named() {
        let packed = "2025-12-01\u{1f}weight\u{1f}0.30000000000000004\u{1e}\
                      2025-12-01\u{1f}length\u{1f}65.5";
        let got = unpack_measures(packed).unwrap();
        // 17 digits: not 0.3.
        assert_eq!(got[0].value, 0.1 + 0.2);
        assert_eq!(
            (got[1].kind, got[1].value, got[1].on),
            (MeasurementKind::Length, 65.5, day("2025-12-01"))
        );
        let e = unpack_measures("2025-12-01\u{1f}weight").unwrap_err();
        assert!(e.to_string().contains("child_measurements"), "{e}");
        let e = unpack_doses("2025-13-01\u{1f}1\u{1f}=BCG").unwrap_err();
        assert!(e.to_string().contains("YYYY-MM-DD"), "{e}");
    }

    #[test]
    fn days_print_as_stored() {
        for s in ["2024-02-29", "0031-01-09", "9999-12-31"] {
            let mut out = String::new();
            push_day(&mut out, day(s));
            assert_eq!(out, s);
        }
    }

    #[test]
    fn rows_pack_as_json_arrays_in_column_order() {
        use inkingi_domain::children::schedule::{Status, Window};
        let r = StatusRow {
            person_id: uuid::Uuid::from_u128(0xc0ffee),
            schedule: "rw-epi".into(),
            service: "odd \"name\"\\".into(),
            occurrence: 3,
            schedule_version: "2024.1".into(),
            village_code: None,
            status: Status::Overdue,
            window: Window {
                opens: day("2025-01-02"),
                due_by: day("2025-02-03"),
                closes: None,
            },
            completed_on: Some(day("2025-03-04")),
            evaluated_on: day("2026-11-23"),
        };
        let v: serde_json::Value = serde_json::from_str(&pack_rows(&[&r, &r])).unwrap();
        assert_eq!(
            v[1],
            serde_json::json!([
                "00000000000000000000000000c0ffee",
                "rw-epi",
                "odd \"name\"\\",
                3,
                "2024.1",
                null,
                "overdue",
                "2025-01-02",
                "2025-02-03",
                null,
                "2025-03-04",
                "2026-11-23"
            ])
        );
    }
}
