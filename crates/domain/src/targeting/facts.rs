//! What targeting knows about a household and its members on a given date: counts by age band,
//! dependency ratio, young children, pregnancy, disability, labour capacity, land, livestock and
//! assets, derived once from the registry's records so that scoring models and eligibility rules
//! read ready numbers instead of re-parsing answers.

use chrono::{Datelike, NaiveDate};
use serde_json::{Map, Value};

use crate::areas::AreaCode;
use crate::registry::model::{Household, Person};
use crate::registry::person::{BirthDate, DatePrecision, MemberRole, Sex};

/// Tropical livestock units per head (FAO convention after Jahnke 1982, as used in East African
/// household surveys): cattle 0.7, sheep and goats 0.1, pigs 0.2, poultry 0.01.
pub const TLU_PER_HEAD: [(&str, f64); 5] = [
    ("cattle", 0.7),
    ("goats", 0.1),
    ("sheep", 0.1),
    ("pigs", 0.2),
    ("poultry", 0.01),
];

/// Washington Group severities at or above the disability cut-off ("a lot of difficulty").
const SEVERE: [&str; 2] = ["a_lot", "cannot_do_at_all"];

/// One member as the registry holds it, borrowed for the time it takes to derive facts.
#[derive(Debug, Clone, Copy)]
pub struct MemberRecord<'a> {
    pub sex: Sex,
    pub birth_date: Option<BirthDate>,
    pub role: MemberRole,
    /// Answers to the member section of the form.
    pub answers: &'a Map<String, Value>,
    pub died_on: Option<NaiveDate>,
}

impl<'a> MemberRecord<'a> {
    pub fn of(person: &'a Person, role: MemberRole) -> MemberRecord<'a> {
        MemberRecord {
            sex: person.data.sex,
            birth_date: person.data.birth_date,
            role,
            answers: &person.data.answers,
            died_on: person.died_on,
        }
    }
}

/// Facts about one living member on the assessment date.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonFacts {
    pub sex: Sex,
    pub role: MemberRole,
    /// Completed years, from the middle of the known birth period; `None` without a birth date.
    pub age_years: Option<i32>,
    /// Completed months, on the same convention.
    pub age_months: Option<i32>,
    /// How much of the birth date is known (a year-only date gives an age within ±6 months).
    pub birth_precision: Option<DatePrecision>,
    pub pregnant: bool,
    /// Any reported difficulty in a Washington Group domain.
    pub disabled: bool,
    /// "A lot of difficulty" or "cannot do at all": the Washington Group disability cut-off.
    pub severely_disabled: bool,
    /// An unanswered `can_work` counts as able: a missing answer must not make a household look
    /// poorer than it is.
    pub can_work: bool,
    pub chronic_illness: bool,
    pub in_school: bool,
    pub answers: Map<String, Value>,
}

/// One member as the registry holds it, with its answers owned: the facts keep them without a
/// copy (whole-registry passes build facts once per household from freshly decoded data).
#[derive(Debug, Clone)]
pub struct OwnedMember {
    pub sex: Sex,
    pub birth_date: Option<BirthDate>,
    pub role: MemberRole,
    pub answers: Map<String, Value>,
    pub died_on: Option<NaiveDate>,
}

impl PersonFacts {
    pub fn derive(m: &MemberRecord<'_>, on: NaiveDate) -> PersonFacts {
        Self::from_parts(m.sex, m.birth_date, m.role, m.answers.clone(), on)
    }

    fn from_parts(
        sex: Sex,
        birth_date: Option<BirthDate>,
        role: MemberRole,
        answers: Map<String, Value>,
        on: NaiveDate,
    ) -> PersonFacts {
        let flag = |key: &str| answers.get(key).and_then(Value::as_bool);
        let disability = answers.get("disability").and_then(Value::as_str);
        let severity = answers.get("disability_severity").and_then(Value::as_str);
        let disabled = disability.is_some_and(|d| d != "none");
        let severely_disabled = disabled && severity.is_some_and(|s| SEVERE.contains(&s));
        let (pregnant, can_work) = (flag("pregnant").unwrap_or(false), flag("can_work"));
        let chronic_illness = flag("chronic_illness").unwrap_or(false);
        let in_school = flag("in_school").unwrap_or(false);
        PersonFacts {
            sex,
            role,
            age_years: birth_date.map(|b| b.age_on(on)),
            age_months: birth_date.map(|b| completed_months(b.midpoint(), on)),
            birth_precision: birth_date.map(|b| b.precision()),
            pregnant,
            disabled,
            severely_disabled,
            can_work: can_work.unwrap_or(true),
            chronic_illness,
            in_school,
            answers,
        }
    }

    fn age_in(&self, years: std::ops::Range<i32>) -> bool {
        self.age_years.is_some_and(|a| years.contains(&a))
    }

    /// An adult of working age (18–64) able to work and not severely disabled.
    pub fn can_contribute_labour(&self) -> bool {
        self.age_in(18..65) && self.can_work && !self.severely_disabled
    }

    /// Age as shown in explanations: months under two years, years above.
    pub fn describe_age(&self) -> String {
        let approx = match self.birth_precision {
            Some(DatePrecision::Exact) | None => "",
            Some(_) => "about ",
        };
        match (self.age_months, self.age_years) {
            (Some(m), _) if m < 24 => format!("{approx}{m} months"),
            (_, Some(y)) => format!("{approx}{y} years"),
            _ => "age unknown".into(),
        }
    }
}

/// Completed calendar months from `from` to `to` (negative when `to` is earlier).
pub fn completed_months(from: NaiveDate, to: NaiveDate) -> i32 {
    let mut months = (to.year() - from.year()) * 12 + to.month() as i32 - from.month() as i32;
    if to.day() < from.day() {
        months -= 1;
    }
    months
}

/// Facts about a household on the assessment date, as scoring models and rules read them.
#[derive(Debug, Clone, PartialEq)]
pub struct HouseholdFacts {
    /// The village's NISR code.
    pub area: String,
    pub on: NaiveDate,
    /// Living members.
    pub size: u32,
    pub under_5: u32,
    /// Aged 0–14.
    pub under_15: u32,
    /// Aged 15–64.
    pub working_age: u32,
    /// Aged 65 and over.
    pub elderly: u32,
    /// Members without a birth date (counted in `size`, in no age band).
    pub age_unknown: u32,
    /// (0–14 and 65+) over 15–64. With nobody aged 15–64 the ratio is taken over one person,
    /// so it stays finite and still grows with the number of dependants.
    pub dependency_ratio: f64,
    pub pregnant_women: u32,
    pub disabled_members: u32,
    pub severely_disabled_members: u32,
    pub chronically_ill_members: u32,
    /// Adults 18–64 who can work and are not severely disabled.
    pub labour_capacity: u32,
    pub head_sex: Option<Sex>,
    pub head_age: Option<i32>,
    /// Farm land in hectares (0 when the household owns none).
    pub land_ha: f64,
    /// Livestock in tropical livestock units (see [`TLU_PER_HEAD`]).
    pub tlu: f64,
    /// Number of distinct goods in the `assets` answer.
    pub assets_count: u32,
    /// Living members per sleeping room (`size` when rooms are not answered).
    pub persons_per_room: f64,
    pub answers: Map<String, Value>,
    pub members: Vec<PersonFacts>,
}

impl HouseholdFacts {
    /// Derives the facts on `on`; members who died on or before `on` are left out.
    pub fn build(
        area: &AreaCode,
        answers: &Map<String, Value>,
        members: &[MemberRecord<'_>],
        on: NaiveDate,
    ) -> HouseholdFacts {
        let members: Vec<PersonFacts> = members
            .iter()
            .filter(|m| m.died_on.is_none_or(|d| d > on))
            .map(|m| PersonFacts::derive(m, on))
            .collect();
        Self::assemble(area, answers.clone(), members, on)
    }

    /// The same facts as [`HouseholdFacts::build`] from owned answers, which the facts keep.
    pub fn build_owned(
        area: &AreaCode,
        answers: Map<String, Value>,
        members: Vec<OwnedMember>,
        on: NaiveDate,
    ) -> HouseholdFacts {
        let members: Vec<PersonFacts> = members
            .into_iter()
            .filter(|m| m.died_on.is_none_or(|d| d > on))
            .map(|m| PersonFacts::from_parts(m.sex, m.birth_date, m.role, m.answers, on))
            .collect();
        Self::assemble(area, answers, members, on)
    }

    fn assemble(
        area: &AreaCode,
        answers: Map<String, Value>,
        members: Vec<PersonFacts>,
        on: NaiveDate,
    ) -> HouseholdFacts {
        let count =
            |f: &dyn Fn(&PersonFacts) -> bool| members.iter().filter(|p| f(p)).count() as u32;
        let under_15 = count(&|p| p.age_in(0..15));
        let working_age = count(&|p| p.age_in(15..65));
        let elderly = count(&|p| p.age_years.is_some_and(|a| a >= 65));
        let head = members.iter().find(|p| p.role == MemberRole::Head);
        let size = members.len() as u32;
        let rooms = number(&answers, "rooms").filter(|r| *r >= 1.0);
        HouseholdFacts {
            area: area.as_str().to_string(),
            on,
            size,
            under_5: count(&|p| p.age_in(0..5)),
            under_15,
            working_age,
            elderly,
            age_unknown: count(&|p| p.age_years.is_none()),
            dependency_ratio: f64::from(under_15 + elderly) / f64::from(working_age.max(1)),
            pregnant_women: count(&|p| p.pregnant && p.sex == Sex::Female),
            disabled_members: count(&|p| p.disabled),
            severely_disabled_members: count(&|p| p.severely_disabled),
            chronically_ill_members: count(&|p| p.chronic_illness),
            labour_capacity: count(&PersonFacts::can_contribute_labour),
            head_sex: head.map(|h| h.sex),
            head_age: head.and_then(|h| h.age_years),
            land_ha: land_ha(&answers),
            tlu: tlu(&answers),
            assets_count: distinct_strings(answers.get("assets")),
            persons_per_room: f64::from(size) / rooms.unwrap_or(1.0),
            answers,
            members,
        }
    }

    /// Facts for a stored household and its members (with their roles).
    pub fn of_household(
        household: &Household,
        members: &[MemberRecord<'_>],
        on: NaiveDate,
    ) -> HouseholdFacts {
        Self::build(&household.village, &household.answers, members, on)
    }

    /// The youngest living child under `months` months old, if any.
    pub fn youngest_under_months(&self, months: f64) -> Option<&PersonFacts> {
        self.members
            .iter()
            .filter(|p| {
                p.age_months
                    .is_some_and(|m| m >= 0 && f64::from(m) < months)
            })
            .min_by_key(|p| p.age_months)
    }
}

/// A numeric answer, `None` when missing or not a number.
pub fn number(answers: &Map<String, Value>, key: &str) -> Option<f64> {
    answers
        .get(key)
        .and_then(Value::as_f64)
        .filter(|f| f.is_finite())
}

fn land_ha(answers: &Map<String, Value>) -> f64 {
    if answers.get("owns_land").and_then(Value::as_bool) == Some(false) {
        return 0.0;
    }
    number(answers, "land_area_ha").unwrap_or(0.0).max(0.0)
}

fn tlu(answers: &Map<String, Value>) -> f64 {
    TLU_PER_HEAD
        .iter()
        .map(|(key, per_head)| number(answers, key).unwrap_or(0.0).max(0.0) * per_head)
        .sum()
}

fn distinct_strings(v: Option<&Value>) -> u32 {
    let Some(Value::Array(items)) = v else {
        return 0;
    };
    let mut seen: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn member<'a>(
        sex: Sex,
        born: &str,
        role: MemberRole,
        answers: &'a Map<String, Value>,
    ) -> MemberRecord<'a> {
        MemberRecord {
            sex,
            birth_date: Some(BirthDate::parse(born).expect("birth date")),
            role,
            answers,
            died_on: None,
        }
    }

    #[test]
    fn household_counts_and_ratios() {
        let none = Map::new();
        let pregnant = obj(json!({"pregnant": true}));
        let severe =
            obj(json!({"disability": "walking", "disability_severity": "cannot_do_at_all"}));
        let some = obj(json!({"disability": "seeing", "disability_severity": "some"}));
        let on = day("2026-06-15");
        let mut grandfather = member(Sex::Male, "1950", MemberRole::OtherRelative, &none);
        grandfather.died_on = Some(day("2026-01-01"));
        let members = [
            member(Sex::Female, "1990-03-02", MemberRole::Head, &pregnant),
            member(Sex::Male, "1988", MemberRole::Spouse, &severe),
            member(Sex::Female, "2025-09-10", MemberRole::Child, &none),
            member(Sex::Male, "2015-01-01", MemberRole::Child, &some),
            member(Sex::Female, "1955-05", MemberRole::OtherRelative, &none),
            grandfather,
        ];
        let answers = obj(json!({
            "rooms": 2, "owns_land": true, "land_area_ha": 0.5, "owns_livestock": true,
            "cattle": 1, "goats": 2, "poultry": 10, "assets": ["radio", "mobile_phone", "radio"]
        }));
        let f = HouseholdFacts::build(
            &AreaCode::parse("41010101").expect("area"),
            &answers,
            &members,
            on,
        );
        assert_eq!(
            (f.size, f.under_5, f.under_15, f.working_age, f.elderly),
            (5, 1, 2, 2, 1)
        );
        assert!((f.dependency_ratio - 1.5).abs() < 1e-12);
        assert_eq!(
            (
                f.pregnant_women,
                f.disabled_members,
                f.severely_disabled_members
            ),
            (1, 2, 1)
        );
        assert_eq!(f.labour_capacity, 1, "the spouse cannot work at all");
        assert_eq!((f.head_sex, f.head_age), (Some(Sex::Female), Some(36)));
        assert!((f.tlu - 1.0).abs() < 1e-12, "0.7 + 2×0.1 + 10×0.01");
        assert_eq!(f.assets_count, 2);
        assert!((f.persons_per_room - 2.5).abs() < 1e-12);
        assert_eq!(
            f.youngest_under_months(24.0).and_then(|p| p.age_months),
            Some(9)
        );
        assert!(f.youngest_under_months(9.0).is_none());
    }

    #[test]
    fn months_use_the_middle_of_an_imprecise_birth_date() {
        let none = Map::new();
        // Born "2025": midpoint 2025-07-02; on 2026-06-15 that is 11 completed months.
        let p = PersonFacts::derive(
            &member(Sex::Male, "2025", MemberRole::Child, &none),
            day("2026-06-15"),
        );
        assert_eq!(p.age_months, Some(11));
        assert_eq!(p.describe_age(), "about 11 months");
        assert_eq!(completed_months(day("2024-01-31"), day("2024-02-29")), 0);
        assert_eq!(completed_months(day("2024-01-31"), day("2024-03-31")), 2);
    }

    #[test]
    fn land_is_zero_without_land_and_ratio_stays_finite() {
        let none = Map::new();
        let answers = obj(json!({"owns_land": false, "land_area_ha": 3.0}));
        let members = [
            member(Sex::Female, "1940", MemberRole::Head, &none),
            member(Sex::Female, "2018", MemberRole::Child, &none),
        ];
        let f = HouseholdFacts::build(
            &AreaCode::parse("1").expect("area"),
            &answers,
            &members,
            day("2026-01-01"),
        );
        assert_eq!(f.land_ha, 0.0);
        assert_eq!((f.working_age, f.dependency_ratio), (0, 2.0));
        assert_eq!(f.labour_capacity, 0);
    }
}
