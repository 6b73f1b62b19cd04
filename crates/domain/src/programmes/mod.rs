//! Programmes and agencies: who runs what, for whom (a household or one person in it), under
//! which eligibility rule, paying what (a benefit formula), within which capacity or budget and
//! how often; and the enrolment lifecycle of a beneficiary.
//!
//! Programme configuration is data (TOML or JSON) checked when loaded: unknown fields are
//! refused, every error names its field, and the eligibility rule is parsed and type-checked
//! so that a programme with a broken rule never reaches the database.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::targeting::rules::{Rule, RuleError, Target};

pub mod cycle;
pub mod enrolment;

pub use enrolment::{EnrolmentStatus, TransitionError};

/// The illustrative configuration of Rwanda's nine programmes under four agencies.
pub const RW_ILLUSTRATIVE_TOML: &str =
    include_str!("../../../../data/programmes/rw-illustrative.toml");

/// An agency that runs programmes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agency {
    /// Stable short code, e.g. `loda`.
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// True when the entry is demo data, not an official record.
    #[serde(default)]
    pub illustrative: bool,
}

/// Whom a programme serves: a household as a whole, or individual members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetType {
    Household,
    Individual,
}

impl TargetType {
    pub fn rule_target(self) -> Target {
        match self {
            TargetType::Household => Target::Household,
            TargetType::Individual => Target::Person,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Household => "household",
            TargetType::Individual => "individual",
        }
    }
}

/// How often a programme pays (one cycle per period).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Monthly,
    Quarterly,
    Annual,
    /// A one-off transfer (an asset, a loan).
    Once,
}

/// What one beneficiary receives per cycle, in Rwandan francs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Benefit {
    /// The same amount for everyone.
    Fixed { amount: u64 },
    /// `base + per_member × household size`, at most `cap` when given.
    PerMember {
        #[serde(default)]
        base: u64,
        per_member: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cap: Option<u64>,
    },
    /// Public works: `daily_wage × days` per cycle.
    DailyWage { daily_wage: u64, days: u32 },
}

impl Benefit {
    /// The amount for a household of `size` living members.
    pub fn amount(&self, size: u32) -> u64 {
        match self {
            Benefit::Fixed { amount } => *amount,
            Benefit::PerMember {
                base,
                per_member,
                cap,
            } => {
                let raw = base.saturating_add(per_member.saturating_mul(u64::from(size)));
                cap.map_or(raw, |c| raw.min(c))
            }
            Benefit::DailyWage { daily_wage, days } => daily_wage.saturating_mul(u64::from(*days)),
        }
    }
}

/// A programme as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Programme {
    /// Stable short code used in rules (`enrolled("vup_ds")`) and URLs.
    pub code: String,
    pub name: String,
    /// The code of the agency that runs it.
    pub agency: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub illustrative: bool,
    pub target: TargetType,
    /// An eligibility rule (see docs/TARGETING.md) over household facts, or over a person's
    /// facts for individual programmes.
    pub eligibility: String,
    pub benefit: Benefit,
    /// Most beneficiaries enrolled (or suspended) at once; more go on the waiting list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    /// Most paid per cycle over all enrolled beneficiaries, in francs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<u64>,
    pub frequency: Frequency,
    /// Programmes a household should not also be enrolled in (flagged, not blocked).
    #[serde(default)]
    pub overlaps_with: Vec<String>,
}

/// Why a programme or catalogue was refused: the field and the reason; for a rule, its
/// position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidProgramme {
    pub field: String,
    pub reason: String,
    /// Set when the eligibility rule did not compile.
    pub rule_error: Option<RuleError>,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> InvalidProgramme {
    InvalidProgramme {
        field: field.into(),
        reason: reason.into(),
        rule_error: None,
    }
}

/// A short code: lowercase letters, digits and `_`, starting with a letter, 2 to 32 long.
pub fn check_code(field: &str, code: &str) -> Result<(), InvalidProgramme> {
    let ok = (2..=32).contains(&code.len())
        && code.starts_with(|c: char| c.is_ascii_lowercase())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("'{code}' is not a code: use 2 to 32 lowercase letters, digits or _, starting with a letter"),
        ))
    }
}

impl Programme {
    /// Parses a programme from JSON; unknown fields are refused and the rule is compiled.
    pub fn from_json(text: &str) -> Result<Programme, InvalidProgramme> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let p: Programme = serde_path_to_error::deserialize(de)
            .map_err(|e| invalid(path_or_root(e.path()), e.inner().to_string()))?;
        p.check("")?;
        Ok(p)
    }

    /// Checks the fields and compiles the eligibility rule; `at` prefixes field names.
    pub fn check(&self, at: &str) -> Result<Rule, InvalidProgramme> {
        check_code(&format!("{at}code"), &self.code)?;
        check_code(&format!("{at}agency"), &self.agency)?;
        if self.name.trim().is_empty() {
            return Err(invalid(format!("{at}name"), "must not be empty"));
        }
        if self.capacity == Some(0) {
            return Err(invalid(format!("{at}capacity"), "must be at least 1"));
        }
        if let Benefit::DailyWage { days: 0, .. } = self.benefit {
            return Err(invalid(format!("{at}benefit.days"), "must be at least 1"));
        }
        for (i, o) in self.overlaps_with.iter().enumerate() {
            check_code(&format!("{at}overlaps_with[{i}]"), o)?;
        }
        self.rule().map_err(|e| InvalidProgramme {
            field: format!("{at}eligibility"),
            reason: format!("line {}, column {}: {}", e.line, e.column, e.message),
            rule_error: Some(e),
        })
    }

    /// The compiled eligibility rule.
    pub fn rule(&self) -> Result<Rule, RuleError> {
        Rule::compile(&self.eligibility, self.target.rule_target())
    }
}

/// Agencies and programmes loaded together (the demo configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    #[serde(default)]
    pub illustrative: bool,
    #[serde(default)]
    pub note: String,
    #[serde(rename = "agency", default)]
    pub agencies: Vec<Agency>,
    #[serde(rename = "programme", default)]
    pub programmes: Vec<Programme>,
}

impl Catalogue {
    pub fn rw_illustrative() -> Result<Catalogue, InvalidProgramme> {
        Self::from_toml(RW_ILLUSTRATIVE_TOML)
    }

    pub fn from_toml(text: &str) -> Result<Catalogue, InvalidProgramme> {
        let de = toml::Deserializer::new(text);
        let c: Catalogue = serde_path_to_error::deserialize(de)
            .map_err(|e| invalid(path_or_root(e.path()), e.inner().message().to_string()))?;
        c.check()?;
        Ok(c)
    }

    /// Codes unique, every programme's agency and overlaps known, every rule compiled.
    pub fn check(&self) -> Result<(), InvalidProgramme> {
        let mut agencies = BTreeSet::new();
        for (i, a) in self.agencies.iter().enumerate() {
            check_code(&format!("agency[{i}].code"), &a.code)?;
            if !agencies.insert(a.code.as_str()) {
                return Err(invalid(
                    format!("agency[{i}].code"),
                    format!("'{}' is used twice", a.code),
                ));
            }
        }
        let codes: BTreeSet<&str> = self.programmes.iter().map(|p| p.code.as_str()).collect();
        if codes.len() != self.programmes.len() {
            return Err(invalid("programme", "two programmes share a code"));
        }
        for (i, p) in self.programmes.iter().enumerate() {
            let at = format!("programme[{i}].");
            p.check(&at)?;
            if !agencies.contains(p.agency.as_str()) {
                return Err(invalid(
                    format!("{at}agency"),
                    format!("no agency '{}' in this file", p.agency),
                ));
            }
            if let Some(o) = p.overlaps_with.iter().find(|o| !codes.contains(o.as_str())) {
                return Err(invalid(
                    format!("{at}overlaps_with"),
                    format!("no programme '{o}' in this file"),
                ));
            }
        }
        Ok(())
    }
}

fn path_or_root(p: &serde_path_to_error::Path) -> String {
    let s = p.to_string();
    if s == "." || s.is_empty() {
        "(programme)".into()
    } else {
        s
    }
}

impl fmt::Display for Frequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Frequency::Monthly => "monthly",
            Frequency::Quarterly => "quarterly",
            Frequency::Annual => "annual",
            Frequency::Once => "once",
        })
    }
}

#[cfg(test)]
mod tests;
