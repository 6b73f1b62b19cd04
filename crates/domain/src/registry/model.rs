//! The registry's records as the rest of the system sees them: households, people, memberships
//! and relationships, and the validated inputs that create or change them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::ids::{NationalId, PhoneNumber, RegistryNumber};
use super::person::{BirthDate, MemberRole, Name, RelationshipKind, Sex};
use crate::areas::AreaCode;

/// Longest free-text address accepted, in characters.
pub const MAX_ADDRESS_CHARS: usize = 200;
/// Longest other identifier (birth registration number, refugee ID, passport).
pub const MAX_IDENTIFIER_CHARS: usize = 40;

/// A GPS position inside Rwanda's bounding box (with a small margin).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gps {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("GPS position {lat}, {lon} is outside Rwanda (latitude −2.9…−1.0, longitude 28.8…31.0)")]
pub struct InvalidGps {
    pub lat: String,
    pub lon: String,
}

impl Gps {
    pub fn new(lat: f64, lon: f64) -> Result<Gps, InvalidGps> {
        if (-2.9..=-1.0).contains(&lat) && (28.8..=31.0).contains(&lon) {
            Ok(Gps { lat, lon })
        } else {
            Err(InvalidGps {
                lat: lat.to_string(),
                lon: lon.to_string(),
            })
        }
    }
}

/// Status of a household record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HouseholdStatus {
    Active,
    /// Merged into another household; kept for history and for links that still point here.
    Merged,
    /// No members left (all moved out or died).
    Dissolved,
}

impl HouseholdStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HouseholdStatus::Active => "active",
            HouseholdStatus::Merged => "merged",
            HouseholdStatus::Dissolved => "dissolved",
        }
    }

    pub fn parse(s: &str) -> Option<HouseholdStatus> {
        [Self::Active, Self::Merged, Self::Dissolved]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// What is needed to register a household (its members come separately).
#[derive(Debug, Clone, PartialEq)]
pub struct HouseholdInput {
    pub village: AreaCode,
    pub address: Option<String>,
    pub gps: Option<Gps>,
    /// Answers to the household section of `form_version` of the current form.
    pub answers: Map<String, Value>,
}

/// What is known about a person, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonInput {
    pub given_name: Name,
    pub family_name: Name,
    pub sex: Sex,
    pub birth_date: Option<BirthDate>,
    pub national_id: Option<NationalId>,
    #[serde(default)]
    pub birth_registration: Option<String>,
    #[serde(default)]
    pub refugee_id: Option<String>,
    #[serde(default)]
    pub passport: Option<String>,
    #[serde(default)]
    pub phones: Vec<PhoneNumber>,
    /// Answers to the member section of the form.
    #[serde(default)]
    pub answers: Map<String, Value>,
}

/// Problems found in a person's fields taken together (each field parsed on its own already).
pub fn person_consistency(p: &PersonInput, today: NaiveDate) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(id) = &p.national_id {
        if let Err(e) = id.check_against(p.sex, p.birth_date.as_ref()) {
            out.push(("national_id", e.to_string()));
        }
        if let Some(b) = &p.birth_date {
            // National ID cards are issued from 16.
            if b.age_on(today) < 16 {
                out.push((
                    "national_id",
                    format!("a person born {b} is too young for a national ID (issued from 16)"),
                ));
            }
        }
    }
    if let Some(b) = &p.birth_date {
        if b.earliest() > today {
            out.push(("birth_date", format!("{b} is in the future")));
        }
    }
    for (field, v) in [
        ("birth_registration", &p.birth_registration),
        ("refugee_id", &p.refugee_id),
        ("passport", &p.passport),
    ] {
        if let Some(v) = v {
            if v.chars().count() > MAX_IDENTIFIER_CHARS || v.trim().is_empty() {
                out.push((
                    field,
                    format!("must be 1 to {MAX_IDENTIFIER_CHARS} characters"),
                ));
            } else if !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-/ ".contains(c))
            {
                out.push((
                    field,
                    "may hold only letters, digits, '-', '/' and spaces".into(),
                ));
            }
        }
    }
    out
}

/// A household as stored now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Household {
    pub id: Uuid,
    pub registry_number: RegistryNumber,
    pub village: AreaCode,
    pub address: Option<String>,
    pub gps: Option<Gps>,
    pub form_id: String,
    pub form_version: u32,
    pub answers: Map<String, Value>,
    pub status: HouseholdStatus,
    /// Import source and row key (`source:key`), when it came from a bulk import.
    pub source_key: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A person as stored now, with their current household.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub id: Uuid,
    #[serde(flatten)]
    pub data: PersonInput,
    /// Date of death, once recorded.
    pub died_on: Option<NaiveDate>,
    pub household_id: Option<Uuid>,
    /// The current (or, after leaving, the last) household's village, kept on the person for
    /// scoping and search.
    pub village: Option<AreaCode>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A person's membership of a household over a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    pub household_id: Uuid,
    pub person_id: Uuid,
    pub role: MemberRole,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub end_reason: Option<String>,
}

/// `person` (a child) is related to `related` (an adult) as `kind`: the related person is the
/// child's mother, father or guardian.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relationship {
    pub person_id: Uuid,
    pub kind: RelationshipKind,
    pub related_id: Uuid,
}

/// Checks that a set of member roles has exactly one head.
pub fn check_one_head<'a>(roles: impl IntoIterator<Item = &'a MemberRole>) -> Result<(), String> {
    match roles
        .into_iter()
        .filter(|r| **r == MemberRole::Head)
        .count()
    {
        1 => Ok(()),
        0 => Err("a household needs exactly one head; none is given".into()),
        n => Err(format!("a household needs exactly one head; {n} are given")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(sex: Sex, born: &str, id: Option<&str>) -> PersonInput {
        PersonInput {
            given_name: Name::parse("Aline").expect("name"),
            family_name: Name::parse("Uwase").expect("name"),
            sex,
            birth_date: Some(BirthDate::parse(born).expect("date")),
            national_id: id.map(|i| NationalId::parse(i).expect("id")),
            birth_registration: None,
            refugee_id: None,
            passport: None,
            phones: vec![],
            answers: Map::new(),
        }
    }

    #[test]
    fn consistency_of_id_sex_and_age() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
        assert!(person_consistency(
            &person(Sex::Female, "1990-02-01", Some("1199070012345012")),
            today
        )
        .is_empty());
        let wrong_sex =
            person_consistency(&person(Sex::Male, "1990", Some("1199070012345012")), today);
        assert_eq!(wrong_sex[0].0, "national_id");
        let child = person_consistency(
            &person(Sex::Female, "2015", Some("1201570012345012")),
            today,
        );
        assert!(child[0].1.contains("too young"));
        let mut odd = person(Sex::Female, "2020", None);
        odd.passport = Some("PC<<123".into());
        assert_eq!(person_consistency(&odd, today)[0].0, "passport");
    }

    #[test]
    fn one_head() {
        use MemberRole::*;
        assert!(check_one_head(&[Head, Spouse, Child]).is_ok());
        assert!(check_one_head(&[Spouse])
            .expect_err("refused")
            .contains("none"));
        assert!(check_one_head(&[Head, Head])
            .expect_err("refused")
            .contains("2 are given"));
    }

    #[test]
    fn gps_inside_rwanda() {
        assert!(Gps::new(-1.95, 30.06).is_ok());
        assert!(Gps::new(1.95, 30.06).is_err());
    }
}
