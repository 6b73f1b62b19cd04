//! Evaluating a schedule against the facts received: which occurrence each fact completes and
//! the status of every occurrence on a given day.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::config::{FactKind, Schedule, Service, Timing, Window};

/// A fact as the schedules see it: what happened and when (provenance stays in the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub kind: FactKind,
    /// For immunisations: the mapped vaccine (`None` when the code is not mapped yet: such a
    /// fact completes nothing until it is).
    pub vaccine: Option<String>,
    pub dose: Option<u32>,
    pub date: NaiveDate,
}

/// Where an occurrence stands on the day of evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A matching fact was received.
    Completed,
    /// Its window has not opened yet.
    Upcoming,
    /// Within the recommended window.
    Due,
    /// Past the recommended window, still worth giving.
    Overdue,
    /// The window closed without it.
    Missed,
}

impl Status {
    /// The status on `day` of an occurrence with window `w`, completed on `done` if at all.
    /// The one rule: the evaluator uses it, and so do readers of materialised statuses.
    pub fn on(w: &Window, done: Option<NaiveDate>, day: NaiveDate) -> Status {
        if done.is_some() {
            Status::Completed
        } else if day < w.opens {
            Status::Upcoming
        } else if day <= w.due_by {
            Status::Due
        } else if w.closes.is_none_or(|c| day <= c) {
            Status::Overdue
        } else {
            Status::Missed
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Completed,
            Status::Upcoming,
            Status::Due,
            Status::Overdue,
            Status::Missed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Upcoming => "upcoming",
            Status::Due => "due",
            Status::Overdue => "overdue",
            Status::Missed => "missed",
        }
    }
}

/// One occurrence of a service (a dose, a contact, a monthly weighing) with its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub schedule: String,
    pub schedule_version: String,
    pub provisional: bool,
    pub service: String,
    pub name: String,
    /// 1-based index of the occurrence of a recurring service; 1 for others.
    pub occurrence: u32,
    pub window: Window,
    pub status: Status,
    /// The date of the fact that completed it.
    pub completed_on: Option<NaiveDate>,
}

/// How far ahead upcoming occurrences are listed: the next one of each service always; others
/// only when they open within this many days.
const LOOKAHEAD_DAYS: i64 = 31;

/// Evaluates `schedule` for a person whose anchor date (birth, LMP or delivery) is `anchor`,
/// given the facts received, on `today`. Occurrences opening after `stop` (the sixth birthday,
/// the end of a pregnancy) are not listed.
pub fn evaluate(
    schedule: &Schedule,
    anchor: NaiveDate,
    facts: &[Fact],
    today: NaiveDate,
    stop: Option<NaiveDate>,
) -> Vec<ServiceStatus> {
    let mut out = Vec::new();
    // Immunisations are matched per vaccine across the schedule's doses; other facts per
    // service, each fact used once.
    let mut used = vec![false; facts.len()];
    for s in &schedule.services {
        let windows: Vec<Window> = s
            .timing
            .windows(anchor)
            .into_iter()
            .filter(|w| stop.is_none_or(|end| w.opens <= end))
            .collect();
        let mut shown_upcoming = false;
        for (i, w) in windows.iter().enumerate() {
            let done = match s.fact {
                FactKind::Immunization => dose_fact(schedule, s, anchor, facts),
                _ => window_fact(s, w, facts, &mut used),
            };
            let status = Status::on(w, done, today);
            if status == Status::Upcoming {
                let soon = (w.opens - today).num_days() <= LOOKAHEAD_DAYS;
                if shown_upcoming && !soon {
                    continue;
                }
                shown_upcoming = true;
            }
            out.push(ServiceStatus {
                schedule: schedule.id.clone(),
                schedule_version: schedule.version.clone(),
                provisional: schedule.provisional,
                service: s.code.clone(),
                name: s.name.clone(),
                occurrence: u32::try_from(i + 1).unwrap_or(u32::MAX),
                window: *w,
                status,
                completed_on: done,
            });
        }
    }
    out
}

/// The earliest unused fact of the service's kind inside the occurrence's window.
fn window_fact(s: &Service, w: &Window, facts: &[Fact], used: &mut [bool]) -> Option<NaiveDate> {
    let mut best: Option<usize> = None;
    for (i, f) in facts.iter().enumerate() {
        let inside = f.date >= w.opens && w.closes.is_none_or(|c| f.date <= c);
        // Birth registration and enrolment count whenever they happened (an early enrolment
        // or a registration received late still completes the service).
        let any_time = matches!(
            s.fact,
            FactKind::BirthRegistration | FactKind::PreprimaryEnrolment
        );
        if f.kind != s.fact || used[i] || !(inside || any_time) {
            continue;
        }
        if best.is_none_or(|b| f.date < facts[b].date) {
            best = Some(i);
        }
    }
    best.map(|i| {
        used[i] = true;
        facts[i].date
    })
}

/// The fact giving this dose of the service's vaccine: one recorded with this dose number, or
/// else the unnumbered doses of the vaccine, in date order, fill the doses without a numbered
/// record in dose order — skipping a dose whose window closed before the fact (an OPV given at
/// seven weeks is OPV 1, not the birth dose).
fn dose_fact(
    schedule: &Schedule,
    s: &Service,
    anchor: NaiveDate,
    facts: &[Fact],
) -> Option<NaiveDate> {
    let vaccine = s.vaccine.as_deref()?;
    let dose = s.dose?;
    let of_vaccine =
        |f: &&Fact| f.kind == FactKind::Immunization && f.vaccine.as_deref() == Some(vaccine);
    if let Some(f) = facts
        .iter()
        .filter(of_vaccine)
        .find(|f| f.dose == Some(dose))
    {
        return Some(f.date);
    }
    let numbered: Vec<u32> = facts
        .iter()
        .filter(of_vaccine)
        .filter_map(|f| f.dose)
        .collect();
    let mut unnumbered: Vec<NaiveDate> = facts
        .iter()
        .filter(of_vaccine)
        .filter(|f| f.dose.is_none())
        .map(|f| f.date)
        .collect();
    unnumbered.sort();
    // The vaccine's doses in this schedule without a numbered record, in dose order.
    let mut open: Vec<(u32, Option<NaiveDate>)> = schedule
        .services
        .iter()
        .filter(|o| o.vaccine.as_deref() == Some(vaccine))
        .filter_map(|o| Some((o.dose?, last_day(&o.timing, anchor))))
        .filter(|(d, _)| !numbered.contains(d))
        .collect();
    open.sort();
    let mut next = 0;
    for date in unnumbered {
        while let Some((d, closes)) = open.get(next) {
            next += 1;
            if closes.is_none_or(|c| date <= c) {
                if *d == dose {
                    return Some(date);
                }
                break;
            }
        }
    }
    None
}

fn last_day(t: &Timing, anchor: NaiveDate) -> Option<NaiveDate> {
    t.windows(anchor).first().and_then(|w| w.closes)
}
