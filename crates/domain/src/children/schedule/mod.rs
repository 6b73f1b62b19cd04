//! Services due: schedules as versioned configuration (`data/schedules/*.toml`), evaluated
//! against the facts received about a child or a mother.
//!
//! A schedule lists services. Each has a window per occurrence — opens (the earliest day it
//! counts), due by (the end of the recommended window) and closes (after which it is no longer
//! given) — relative to an anchor: the child's birth, the pregnancy's last menstrual period, or
//! the delivery. On a given day every occurrence is completed, upcoming, due, overdue or missed
//! ([`Status`]). Recurring services (growth monitoring, vitamin A, deworming) repeat a window
//! every period.
//!
//! Schedules marked `provisional` have not been signed off by the health authority; the flag
//! travels with every status computed from them.

mod config;
mod eval;
#[cfg(test)]
mod tests;

pub use config::{Anchor, FactKind, Offset, Schedule, ScheduleError, Service, Timing, Window};
pub use eval::{evaluate, Fact, ServiceStatus, Status};

use serde::Deserialize;
use std::sync::LazyLock;

/// The schedule files embedded in the binary, by file name.
const FILES: &[(&str, &str)] = &[
    (
        "rw-epi.toml",
        include_str!("../../../../../data/schedules/rw-epi.toml"),
    ),
    (
        "rw-child-services.toml",
        include_str!("../../../../../data/schedules/rw-child-services.toml"),
    ),
    (
        "who-anc-2016.toml",
        include_str!("../../../../../data/schedules/who-anc-2016.toml"),
    ),
    (
        "who-pnc-2013.toml",
        include_str!("../../../../../data/schedules/who-pnc-2013.toml"),
    ),
];

const VACCINE_CODES: (&str, &str) = (
    "vaccine-codes.toml",
    include_str!("../../../../../data/schedules/vaccine-codes.toml"),
);

/// Every embedded schedule and the vaccine code map.
#[derive(Debug)]
pub struct Schedules {
    pub schedules: Vec<Schedule>,
    pub vaccines: VaccineCodes,
}

static EMBEDDED: LazyLock<Result<Schedules, ScheduleError>> = LazyLock::new(Schedules::parse);

impl Schedules {
    /// The embedded schedules, parsed once. The files are checked by this crate's tests, so an
    /// error here means a file was changed without running them.
    pub fn embedded() -> Result<&'static Schedules, ScheduleError> {
        EMBEDDED.as_ref().map_err(Clone::clone)
    }

    fn parse() -> Result<Schedules, ScheduleError> {
        let schedules = FILES
            .iter()
            .map(|(f, t)| Schedule::parse_toml(f, t))
            .collect::<Result<Vec<_>, _>>()?;
        let vaccines = VaccineCodes::parse_toml(VACCINE_CODES.0, VACCINE_CODES.1)?;
        for s in &schedules {
            for svc in &s.services {
                if let Some(v) = &svc.vaccine {
                    if !vaccines.names().any(|n| n == v) {
                        return Err(ScheduleError {
                            file: s.id.clone(),
                            at: format!("services ({})", svc.code),
                            reason: format!("vaccine '{v}' has no code in {}", VACCINE_CODES.0),
                        });
                    }
                }
            }
        }
        Ok(Schedules {
            schedules,
            vaccines,
        })
    }

    /// A service by its schedule id and code.
    pub fn service(&self, schedule: &str, code: &str) -> Option<&Service> {
        self.schedules
            .iter()
            .find(|s| s.id == schedule)?
            .services
            .iter()
            .find(|s| s.code == code)
    }

    /// The schedules counted from `anchor`.
    pub fn for_anchor(&self, anchor: Anchor) -> impl Iterator<Item = &Schedule> {
        self.schedules.iter().filter(move |s| s.anchor == anchor)
    }
}

/// Incoming vaccine codes (CVX, WHO ATC) mapped to the vaccines the schedules name.
#[derive(Debug, Clone)]
pub struct VaccineCodes {
    pub version: String,
    pub provisional: bool,
    codes: Vec<VaccineCode>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct VaccineCode {
    system: String,
    code: String,
    vaccine: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCodes {
    version: String,
    provisional: bool,
    codes: Vec<VaccineCode>,
}

/// The code systems vaccine codes may come in.
pub const CVX: &str = "http://hl7.org/fhir/sid/cvx";
pub const ATC: &str = "http://www.whocc.no/atc";

impl VaccineCodes {
    pub fn parse_toml(file: &str, text: &str) -> Result<VaccineCodes, ScheduleError> {
        let raw: RawCodes = toml::from_str(text).map_err(|e| ScheduleError {
            file: file.to_string(),
            at: "file".into(),
            reason: e.message().to_string(),
        })?;
        if let Some(c) = raw
            .codes
            .iter()
            .find(|c| c.system != CVX && c.system != ATC)
        {
            return Err(ScheduleError {
                file: file.to_string(),
                at: format!("code {}", c.code),
                reason: format!("system '{}' is neither {CVX} nor {ATC}", c.system),
            });
        }
        Ok(VaccineCodes {
            version: raw.version,
            provisional: raw.provisional,
            codes: raw.codes,
        })
    }

    /// The vaccine a code stands for; `None` for a code not mapped yet.
    pub fn map(&self, system: &str, code: &str) -> Option<&str> {
        self.codes
            .iter()
            .find(|c| c.system == system && c.code == code.trim())
            .map(|c| c.vaccine.as_str())
    }

    /// Whether Inkingi accepts codes of this system at all.
    pub fn known_system(system: &str) -> bool {
        system == CVX || system == ATC
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.codes.iter().map(|c| c.vaccine.as_str())
    }
}
