//! People and their place in households: names as written, sex, birth dates of known
//! precision, membership roles and family relationships.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident, $err:ident, $what:literal { $($variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $code)] $variant),+
        }

        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[error("unknown {what} '{0}': expected one of {names}", what = $what, names = [$($code),+].join(", "))]
        pub struct $err(pub String);

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }
        }

        impl FromStr for $name {
            type Err = $err;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let t = s.trim();
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(t))
                    .ok_or_else(|| $err(t.chars().take(40).collect()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

code_enum!(
    /// Sex as recorded by civil registration.
    Sex, UnknownSex, "sex" { Female = "F", Male = "M" }
);

code_enum!(
    /// A person's role in a household. Every active household has exactly one head.
    MemberRole, UnknownMemberRole, "member role" {
        Head = "head",
        Spouse = "spouse",
        Child = "child",
        OtherRelative = "other_relative",
        NonRelative = "non_relative",
    }
);

code_enum!(
    /// A family relationship from a child to an adult. Children need these because their
    /// identification numbers are often missing in health and school records; the mother is
    /// what links them.
    RelationshipKind, UnknownRelationship, "relationship" {
        Mother = "mother",
        Father = "father",
        Guardian = "guardian",
    }
);

/// How much of a birth date is known. Many older registrations and health records only know
/// the year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatePrecision {
    Exact,
    Month,
    Year,
}

/// A birth date of known precision, written `YYYY`, `YYYY-MM` or `YYYY-MM-DD`. The written form
/// sorts chronologically as text, so it is stored as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BirthDate {
    /// The first day of the known period.
    start: NaiveDate,
    precision: DatePrecision,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidBirthDate {
    #[error("birth date '{0}': expected YYYY, YYYY-MM or YYYY-MM-DD")]
    Shape(String),
    #[error("birth date '{0}': no such date")]
    NoSuchDate(String),
    #[error("birth date '{0}': is in the future")]
    Future(String),
    #[error("birth date '{0}': implies an age over 120 years")]
    TooOld(String),
}

impl BirthDate {
    /// Parses the written form; `today` bounds the date (no births in the future, no one
    /// older than 120).
    pub fn parse_on(input: &str, today: NaiveDate) -> Result<BirthDate, InvalidBirthDate> {
        let b = Self::parse(input)?;
        let shown = || input.chars().take(40).collect::<String>();
        if b.start > today {
            return Err(InvalidBirthDate::Future(shown()));
        }
        if today.year() - b.year() > 120 {
            return Err(InvalidBirthDate::TooOld(shown()));
        }
        Ok(b)
    }

    /// Parses the written form without bounds (for data already validated).
    pub fn parse(input: &str) -> Result<BirthDate, InvalidBirthDate> {
        let s = input.trim();
        let shape = || InvalidBirthDate::Shape(s.chars().take(40).collect());
        let parts: Vec<&str> = s.split('-').collect();
        let widths_ok = match parts.as_slice() {
            [y] => y.len() == 4,
            [y, m] => y.len() == 4 && m.len() == 2,
            [y, m, d] => y.len() == 4 && m.len() == 2 && d.len() == 2,
            _ => false,
        };
        if !widths_ok || !parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())) {
            return Err(shape());
        }
        let num = |i: usize| parts.get(i).map(|p| p.parse::<u32>().unwrap_or(0));
        let year = num(0).unwrap_or(0) as i32;
        let (month, day) = (num(1).unwrap_or(1), num(2).unwrap_or(1));
        let start = NaiveDate::from_ymd_opt(year, month, day)
            .ok_or_else(|| InvalidBirthDate::NoSuchDate(s.chars().take(40).collect()))?;
        let precision = match parts.len() {
            1 => DatePrecision::Year,
            2 => DatePrecision::Month,
            _ => DatePrecision::Exact,
        };
        Ok(BirthDate { start, precision })
    }

    pub fn exact(date: NaiveDate) -> BirthDate {
        BirthDate {
            start: date,
            precision: DatePrecision::Exact,
        }
    }

    pub fn precision(&self) -> DatePrecision {
        self.precision
    }

    pub fn year(&self) -> i32 {
        self.start.year()
    }

    /// First possible day.
    pub fn earliest(&self) -> NaiveDate {
        self.start
    }

    /// Last possible day.
    pub fn latest(&self) -> NaiveDate {
        let next = match self.precision {
            DatePrecision::Exact => return self.start,
            DatePrecision::Month => self.start.checked_add_months(chrono::Months::new(1)),
            DatePrecision::Year => self.start.with_year(self.start.year() + 1),
        };
        next.and_then(|d| d.pred_opt()).unwrap_or(self.start)
    }

    /// The middle of the known period: the usual convention for ages when only the year or
    /// month is known.
    pub fn midpoint(&self) -> NaiveDate {
        let span = (self.latest() - self.start).num_days() / 2;
        self.start + chrono::Duration::days(span)
    }

    /// Completed years on `on`, from the midpoint of the known period.
    pub fn age_on(&self, on: NaiveDate) -> i32 {
        let b = self.midpoint();
        let mut age = on.year() - b.year();
        if (on.month(), on.day()) < (b.month(), b.day()) {
            age -= 1;
        }
        age
    }
}

impl fmt::Display for BirthDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.precision {
            DatePrecision::Year => write!(f, "{:04}", self.start.year()),
            DatePrecision::Month => write!(f, "{:04}-{:02}", self.start.year(), self.start.month()),
            DatePrecision::Exact => write!(f, "{}", self.start.format("%Y-%m-%d")),
        }
    }
}

impl Serialize for BirthDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BirthDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BirthDate::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Longest name part accepted, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// A name part as written (Unicode NFC, trimmed, inner white space folded): 1 to 100
/// characters with at least one letter and no control characters. Matching keys are derived
/// separately; the written form is never overwritten.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    #[error("name is empty")]
    Empty,
    #[error("name is longer than {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("name '{0}' contains a control character or no letter")]
    Characters(String),
}

impl Name {
    pub fn parse(input: &str) -> Result<Name, InvalidName> {
        let folded = input.split_whitespace().collect::<Vec<_>>().join(" ");
        let s: String = folded.nfc().collect();
        if s.is_empty() {
            return Err(InvalidName::Empty);
        }
        if s.chars().count() > MAX_NAME_CHARS {
            return Err(InvalidName::TooLong);
        }
        if s.chars().any(char::is_control) || !s.chars().any(char::is_alphabetic) {
            return Err(InvalidName::Characters(s.chars().take(40).collect()));
        }
        Ok(Name(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Name::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn birth_dates_keep_their_precision() {
        let y = BirthDate::parse("1984").expect("year");
        assert_eq!(
            (y.precision(), y.to_string()),
            (DatePrecision::Year, "1984".into())
        );
        assert_eq!(
            (y.earliest(), y.latest()),
            (day("1984-01-01"), day("1984-12-31"))
        );
        let m = BirthDate::parse("2024-02").expect("month");
        assert_eq!(m.latest(), day("2024-02-29"));
        assert_eq!(m.to_string(), "2024-02");
        let e = BirthDate::parse("2020-12-31").expect("exact");
        assert_eq!(e.midpoint(), day("2020-12-31"));
        assert!("1984" < "1984-03" && "1984-03" < "1984-03-02" && "1984-12-31" < "1985");
    }

    #[test]
    fn bad_birth_dates() {
        let today = day("2026-01-01");
        assert!(matches!(
            BirthDate::parse("84"),
            Err(InvalidBirthDate::Shape(_))
        ));
        assert!(matches!(
            BirthDate::parse("1984-2-1"),
            Err(InvalidBirthDate::Shape(_))
        ));
        assert!(matches!(
            BirthDate::parse("2023-02-29"),
            Err(InvalidBirthDate::NoSuchDate(_))
        ));
        assert!(matches!(
            BirthDate::parse_on("2027", today),
            Err(InvalidBirthDate::Future(_))
        ));
        assert!(matches!(
            BirthDate::parse_on("1890", today),
            Err(InvalidBirthDate::TooOld(_))
        ));
        assert!(BirthDate::parse_on("2025-12-31", today).is_ok());
    }

    #[test]
    fn ages() {
        let b = BirthDate::parse("2020-06-15").expect("date");
        assert_eq!(b.age_on(day("2026-06-14")), 5);
        assert_eq!(b.age_on(day("2026-06-15")), 6);
        assert_eq!(
            BirthDate::parse("2020")
                .expect("y")
                .age_on(day("2026-07-01")),
            6
        );
    }

    #[test]
    fn names_are_nfc_and_trimmed() {
        let n = Name::parse("  Mukamana \t Ange\u{0301}lique ").expect("name");
        assert_eq!(n.as_str(), "Mukamana Angélique");
        assert_eq!(Name::parse("   "), Err(InvalidName::Empty));
        assert!(matches!(
            Name::parse("123"),
            Err(InvalidName::Characters(_))
        ));
        assert!(matches!(
            Name::parse("a\u{7}b"),
            Err(InvalidName::Characters(_))
        ));
        assert_eq!(Name::parse(&"a".repeat(101)), Err(InvalidName::TooLong));
    }

    #[test]
    fn codes_parse_case_insensitively() {
        assert_eq!("f".parse::<Sex>(), Ok(Sex::Female));
        assert_eq!("HEAD".parse::<MemberRole>(), Ok(MemberRole::Head));
        let err = "aunt".parse::<RelationshipKind>().expect_err("unknown");
        assert!(err.to_string().contains("mother, father, guardian"));
    }
}
