//! Schedule files: parsed from TOML, checked whole, so a bad file names its field and the
//! service it belongs to.

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a schedule's offsets count from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// The child's birth date.
    Birth,
    /// The first day of the last menstrual period (gestational age).
    Lmp,
    /// The delivery date (postnatal care of the mother).
    Delivery,
}

/// The kind of fact that completes a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    Immunization,
    Measurement,
    VitaminA,
    Deworming,
    BirthRegistration,
    PreprimaryEnrolment,
    AncContact,
    PncContact,
}

impl FactKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            FactKind::Immunization => "immunization",
            FactKind::Measurement => "measurement",
            FactKind::VitaminA => "vitamin_a",
            FactKind::Deworming => "deworming",
            FactKind::BirthRegistration => "birth_registration",
            FactKind::PreprimaryEnrolment => "preprimary_enrolment",
            FactKind::AncContact => "anc_contact",
            FactKind::PncContact => "pnc_contact",
        }
    }
}

/// A span of calendar time: years and months are added as calendar months (a child born on
/// 31 January is 1 month old on the last day of February), then weeks and days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offset {
    pub months: u32,
    pub days: u32,
}

impl Offset {
    /// Parses `<n><unit>` terms (`d`, `w`, `m`, `y`) joined by `+`: `6w`, `6w+14d`, `3y+4m`.
    pub fn parse(s: &str) -> Result<Offset, String> {
        let mut off = Offset::default();
        for term in s.split('+').map(str::trim) {
            let split = term
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(term.len());
            let (num, unit) = term.split_at(split);
            let n: u32 = num
                .parse()
                .map_err(|_| format!("'{s}': expected terms like 6w, 14d, 9m or 3y"))?;
            match unit {
                "d" => off.days += n,
                "w" => off.days += 7 * n,
                "m" => off.months += n,
                "y" => off.months += 12 * n,
                _ => return Err(format!("'{s}': unit '{unit}' is not one of d, w, m, y")),
            }
        }
        Ok(off)
    }

    /// `from` plus this offset; `None` past the calendar's end (not reachable for real dates).
    pub fn after(self, from: NaiveDate) -> Option<NaiveDate> {
        from.checked_add_months(Months::new(self.months))?
            .checked_add_days(chrono::Days::new(u64::from(self.days)))
    }

    /// This offset `n` times (for recurring services).
    fn times(self, n: u32) -> Offset {
        Offset {
            months: self.months * n,
            days: self.days * n,
        }
    }

    fn plus(self, o: Offset) -> Offset {
        Offset {
            months: self.months + o.months,
            days: self.days + o.days,
        }
    }

    /// A rough length in days, only to check that offsets are in order.
    fn approx_days(self) -> u32 {
        self.months * 30 + self.days
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.months, self.days) {
            (0, d) => write!(f, "{d}d"),
            (m, 0) => write!(f, "{m}m"),
            (m, d) => write!(f, "{m}m+{d}d"),
        }
    }
}

/// When a service falls due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timing {
    /// Once: counts from `opens`, recommended by `due_by`, no longer given after `closes`.
    Once {
        opens: Offset,
        due_by: Offset,
        closes: Option<Offset>,
    },
    /// Every `every` from `from` until `until`; within each period due for `due_for`.
    Recurring {
        every: Offset,
        from: Offset,
        until: Offset,
        due_for: Offset,
    },
}

/// One service of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub code: String,
    pub name: String,
    pub fact: FactKind,
    /// For immunisations: the vaccine (as named in `vaccine-codes.toml`) and the dose number.
    pub vaccine: Option<String>,
    pub dose: Option<u32>,
    pub timing: Timing,
}

/// A versioned schedule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub id: String,
    pub version: String,
    pub title: String,
    pub anchor: Anchor,
    /// True until the health authority signs it off.
    pub provisional: bool,
    pub note: Option<String>,
    pub services: Vec<Service>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    id: String,
    version: String,
    title: String,
    anchor: Anchor,
    provisional: bool,
    note: Option<String>,
    services: Vec<RawService>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    code: String,
    name: String,
    fact: FactKind,
    vaccine: Option<String>,
    dose: Option<u32>,
    opens: Option<String>,
    due_by: Option<String>,
    closes: Option<String>,
    every: Option<String>,
    from: Option<String>,
    until: Option<String>,
    due_for: Option<String>,
}

/// A schedule file that does not parse or does not make sense, with where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schedule {file}: {at}: {reason}")]
pub struct ScheduleError {
    pub file: String,
    pub at: String,
    pub reason: String,
}

impl Schedule {
    /// Parses and checks one schedule file.
    pub fn parse_toml(file: &str, text: &str) -> Result<Schedule, ScheduleError> {
        let err = |at: String, reason: String| ScheduleError {
            file: file.to_string(),
            at,
            reason,
        };
        let raw: RawSchedule = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!("byte {}", s.start))
                .unwrap_or_else(|| "file".into());
            err(at, e.message().to_string())
        })?;
        let mut services = Vec::with_capacity(raw.services.len());
        for (i, s) in raw.services.into_iter().enumerate() {
            let at = format!("services[{i}] ({})", s.code);
            if services.iter().any(|o: &Service| o.code == s.code) {
                return Err(err(at, "duplicate code".into()));
            }
            services.push(service(s).map_err(|reason| err(at.clone(), reason))?);
        }
        if services.is_empty() {
            return Err(err(
                "services".into(),
                "a schedule needs at least one".into(),
            ));
        }
        Ok(Schedule {
            id: raw.id,
            version: raw.version,
            title: raw.title,
            anchor: raw.anchor,
            provisional: raw.provisional,
            note: raw.note,
            services,
        })
    }
}

fn service(s: RawService) -> Result<Service, String> {
    let off = |name: &str, v: &Option<String>| -> Result<Option<Offset>, String> {
        v.as_deref()
            .map(Offset::parse)
            .transpose()
            .map_err(|e| format!("{name}: {e}"))
    };
    let once = [&s.opens, &s.due_by, &s.closes].iter().any(|v| v.is_some());
    let recurring = [&s.every, &s.from, &s.until, &s.due_for]
        .iter()
        .any(|v| v.is_some());
    let timing =
        match (once, recurring) {
            (true, false) => {
                let need = |name: &str, v: Option<Offset>| v.ok_or(format!("{name} is required"));
                let opens = need("opens", off("opens", &s.opens)?)?;
                let due_by = need("due_by", off("due_by", &s.due_by)?)?;
                let closes = off("closes", &s.closes)?;
                if due_by.approx_days() < opens.approx_days()
                    || closes.is_some_and(|c| c.approx_days() < due_by.approx_days())
                {
                    return Err("expected opens <= due_by <= closes".into());
                }
                Timing::Once {
                    opens,
                    due_by,
                    closes,
                }
            }
            (false, true) => {
                let need = |name: &str, v: Option<Offset>| v.ok_or(format!("{name} is required"));
                let every = need("every", off("every", &s.every)?)?;
                let from = need("from", off("from", &s.from)?)?;
                let until = need("until", off("until", &s.until)?)?;
                let due_for = need("due_for", off("due_for", &s.due_for)?)?;
                if every.approx_days() == 0 || due_for.approx_days() > every.approx_days() {
                    return Err("expected 0 < due_for <= every".into());
                }
                if until.approx_days() <= from.approx_days() {
                    return Err("expected from < until".into());
                }
                Timing::Recurring {
                    every,
                    from,
                    until,
                    due_for,
                }
            }
            _ => return Err(
                "give either opens/due_by[/closes] (once) or every/from/until/due_for (recurring)"
                    .into(),
            ),
        };
    match (s.fact, &s.vaccine, s.dose) {
        (FactKind::Immunization, Some(_), Some(_)) => {}
        (FactKind::Immunization, _, _) => {
            return Err("an immunization needs vaccine and dose".into())
        }
        (_, None, None) => {}
        _ => return Err("vaccine and dose are for immunizations only".into()),
    }
    Ok(Service {
        code: s.code,
        name: s.name,
        fact: s.fact,
        vaccine: s.vaccine,
        dose: s.dose,
        timing,
    })
}

/// One occurrence's window, in dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub opens: NaiveDate,
    pub due_by: NaiveDate,
    /// Missed after this day; `None`: never missed.
    pub closes: Option<NaiveDate>,
}

impl Timing {
    /// The windows of every occurrence, from the anchor date.
    pub(crate) fn windows(&self, anchor: NaiveDate) -> Vec<Window> {
        match *self {
            Timing::Once {
                opens,
                due_by,
                closes,
            } => window(anchor, opens, due_by, closes).into_iter().collect(),
            Timing::Recurring {
                every,
                from,
                until,
                due_for,
            } => {
                let Some(end) = until.after(anchor) else {
                    return Vec::new();
                };
                let mut out = Vec::new();
                for n in 0.. {
                    let start = from.plus(every.times(n));
                    let next = from.plus(every.times(n + 1));
                    let Some(w) = window(anchor, start, start.plus(due_for), Some(next)) else {
                        break;
                    };
                    if w.opens >= end {
                        break;
                    }
                    // The last day of the period is the day before the next one opens.
                    let closes = w.closes.and_then(|c| c.pred_opt());
                    out.push(Window { closes, ..w });
                }
                out
            }
        }
    }
}

fn window(
    anchor: NaiveDate,
    opens: Offset,
    due_by: Offset,
    closes: Option<Offset>,
) -> Option<Window> {
    Some(Window {
        opens: opens.after(anchor)?,
        due_by: due_by.after(anchor)?,
        closes: match closes {
            Some(c) => Some(c.after(anchor)?),
            None => None,
        },
    })
}
