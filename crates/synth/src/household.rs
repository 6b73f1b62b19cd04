//! One household: who lives in it (ages, sexes, roles, mothers and fathers), then each
//! person's names, birth date, identifiers and phones.
//!
//! Composition follows how Rwandan households are made up: a head (about 3 in 10 women, most of
//! them without a spouse at home), usually a spouse a few years apart, the mother's children
//! born two to four years apart from her late teens or twenties (fewer in younger cohorts, as
//! fertility fell), older children leaving home in their twenties, grandchildren with older
//! heads, and now and then another relative or a domestic worker.

use chrono::{Datelike, Duration, NaiveDate};
use inkingi_domain::registry::{BirthDate, MemberRole, NationalId, PhoneNumber, Sex};
use rand::Rng;
use serde_json::{Map, Value};

use crate::reference::{Reference, Village};
use crate::stats::{normal, probit};

/// Households never exceed this many members (duplicates included): keeps identifier slots
/// per chunk bounded.
pub(crate) const MAX_MEMBERS: usize = 20;

/// One person of a household, as written to members.csv.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub given: String,
    pub family: String,
    pub sex: Sex,
    pub birth: BirthDate,
    pub role: MemberRole,
    pub national_id: Option<NationalId>,
    pub birth_registration: Option<String>,
    pub passport: Option<String>,
    pub phones: Vec<PhoneNumber>,
    /// Indices of other members of the same household.
    pub mother: Option<usize>,
    pub father: Option<usize>,
    pub guardian: Option<usize>,
    pub answers: Map<String, Value>,
    /// The true person (slot of the original registration).
    pub entity: u64,
    /// For an injected duplicate: the original's household (chunk-local id) and member index.
    pub original: Option<(usize, usize)>,
    pub errors: Vec<&'static str>,
}

#[derive(Debug, Clone)]
pub(crate) struct Household {
    /// Chunk-local id, stable while households are shuffled.
    pub id: usize,
    pub village: usize,
    pub address: Option<String>,
    pub gps: Option<(f64, f64)>,
    pub answers: Map<String, Value>,
    pub members: Vec<Person>,
    /// The latent wealth score the answers were drawn from.
    pub wealth: f64,
}

/// A member before names and identifiers: who they are to the others.
#[derive(Debug, Clone)]
pub(crate) struct Sketch {
    pub sex: Sex,
    pub age: i32,
    pub role: MemberRole,
    pub mother: Option<usize>,
    pub father: Option<usize>,
    pub guardian: Option<usize>,
}

impl Sketch {
    fn new(sex: Sex, age: i32, role: MemberRole) -> Sketch {
        Sketch {
            sex,
            age,
            role,
            mother: None,
            father: None,
            guardian: None,
        }
    }
}

fn other(sex: Sex) -> Sex {
    match sex {
        Sex::Female => Sex::Male,
        Sex::Male => Sex::Female,
    }
}

fn random_sex<R: Rng>(rng: &mut R) -> Sex {
    if rng.random_bool(0.5) {
        Sex::Female
    } else {
        Sex::Male
    }
}

/// Age of a household head: few under 25, most 25 to 55, a long tail of older heads.
fn head_age<R: Rng>(rng: &mut R) -> i32 {
    let bands: [(i32, i32, u32); 6] = [
        (18, 24, 8),
        (25, 34, 27),
        (35, 44, 25),
        (45, 54, 17),
        (55, 64, 12),
        (65, 90, 11),
    ];
    let mut pick = rng.random_range(0..100u32);
    for (lo, hi, share) in bands {
        if pick < share {
            return rng.random_range(lo..=hi);
        }
        pick -= share;
    }
    40
}

/// The ages the mother's children have today, youngest last.
fn births<R: Rng>(rng: &mut R, mother_age: i32, as_of_year: i32) -> Vec<i32> {
    let cohort = as_of_year - mother_age;
    // Completed fertility fell from about 6 (women born before 1970) to about 4.
    let wanted = match cohort {
        ..=1969 => rng.random_range(5..=8),
        1970..=1984 => rng.random_range(4..=7),
        _ => rng.random_range(3..=6),
    };
    let mut at = rng.random_range(18..=26);
    let mut ages = Vec::new();
    for _ in 0..wanted {
        if at > 45 || at > mother_age {
            break;
        }
        ages.push(mother_age - at);
        at += if rng.random_bool(0.7) {
            rng.random_range(2..=3)
        } else {
            4
        };
    }
    ages
}

/// Whether a child of this age still lives at home.
fn at_home<R: Rng>(rng: &mut R, age: i32) -> bool {
    let p = match age {
        ..=17 => 0.97,
        18..=21 => 0.75,
        22..=25 => 0.45,
        26..=30 => 0.2,
        _ => 0.03,
    };
    rng.random_bool(p)
}

/// Who lives in the household.
pub(crate) fn sketch<R: Rng>(rng: &mut R, wealth: f64, as_of_year: i32) -> Vec<Sketch> {
    let head_sex = if rng.random_bool(0.28) {
        Sex::Female
    } else {
        Sex::Male
    };
    let age = head_age(rng);
    let mut people = vec![Sketch::new(head_sex, age, MemberRole::Head)];
    let spouse_p = match (head_sex, age) {
        (Sex::Female, _) => 0.06,
        (Sex::Male, ..=24) => 0.55,
        (Sex::Male, 25..=64) => 0.9,
        (Sex::Male, _) => 0.7,
    };
    if rng.random_bool(spouse_p) {
        let gap = rng.random_range(1..=8);
        let spouse_age = if head_sex == Sex::Male {
            (age - gap).max(17)
        } else {
            age + gap
        };
        people.push(Sketch::new(other(head_sex), spouse_age, MemberRole::Spouse));
    }
    add_children(rng, &mut people, as_of_year);
    add_grandchildren(rng, &mut people, as_of_year);
    add_others(rng, &mut people, wealth);
    people.truncate(MAX_MEMBERS - 2);
    people
}

/// The children of the head and spouse (or of a lone head).
fn add_children<R: Rng>(rng: &mut R, people: &mut Vec<Sketch>, as_of_year: i32) {
    let mother = people.iter().position(|p| p.sex == Sex::Female);
    let father = people.iter().position(|p| p.sex == Sex::Male);
    let mother_age = match mother {
        Some(m) => people[m].age,
        // A man alone: widowed, separated or with his wife away; some keep their children.
        None if rng.random_bool(0.45) => people[0].age - rng.random_range(2..=8),
        None => return,
    };
    for child_age in births(rng, mother_age, as_of_year) {
        if !at_home(rng, child_age) {
            continue;
        }
        let mut child = Sketch::new(random_sex(rng), child_age, MemberRole::Child);
        child.mother = mother;
        // A woman heading the household alone: the father lives elsewhere.
        child.father = father;
        people.push(child);
    }
}

/// Grandchildren living with older heads, some with their own mother (a daughter at home).
fn add_grandchildren<R: Rng>(rng: &mut R, people: &mut Vec<Sketch>, as_of_year: i32) {
    let daughter = people
        .iter()
        .position(|p| p.role == MemberRole::Child && p.sex == Sex::Female && p.age >= 17);
    if let Some(d) = daughter {
        if rng.random_bool(0.25) {
            let young_mother_age = people[d].age;
            for age in births(rng, young_mother_age, as_of_year)
                .into_iter()
                .take(2)
            {
                let mut baby = Sketch::new(random_sex(rng), age, MemberRole::OtherRelative);
                baby.mother = Some(d);
                people.push(baby);
            }
            return;
        }
    }
    if people[0].age >= 50 && rng.random_bool(0.3) {
        for _ in 0..rng.random_range(1..=3) {
            let mut grandchild = Sketch::new(
                random_sex(rng),
                rng.random_range(0..=15),
                MemberRole::OtherRelative,
            );
            // Their parents are away; the head looks after them.
            grandchild.guardian = Some(0);
            people.push(grandchild);
        }
    }
}

fn add_others<R: Rng>(rng: &mut R, people: &mut Vec<Sketch>, wealth: f64) {
    if rng.random_bool(0.1) {
        let age = rng.random_range(8..=30);
        people.push(Sketch::new(random_sex(rng), age, MemberRole::OtherRelative));
    }
    if wealth > 0.8 && rng.random_bool(0.15) {
        let age = rng.random_range(16..=35);
        people.push(Sketch::new(random_sex(rng), age, MemberRole::NonRelative));
    }
}

/// A birth date `age` whole years before `as_of`, written with the precision the person's
/// records usually have: older adults often know only the year or the month.
pub(crate) fn birth_date<R: Rng>(rng: &mut R, age: i32, as_of: NaiveDate) -> BirthDate {
    let days = i64::from(age) * 36525 / 100 + rng.random_range(1..365);
    let day = as_of - Duration::days(days);
    let (year_only, month_only) = match age {
        ..=17 => (0.0, 0.0),
        18..=39 => (0.03, 0.02),
        40..=59 => (0.12, 0.05),
        _ => (0.3, 0.08),
    };
    let r: f64 = rng.random();
    let text = if r < year_only {
        format!("{:04}", day.year())
    } else if r < year_only + month_only {
        format!("{:04}-{:02}", day.year(), day.month())
    } else {
        return BirthDate::exact(day);
    };
    BirthDate::parse(&text).unwrap_or(BirthDate::exact(day))
}

/// A given name: Christian (French or English) or Kinyarwanda; Kinyarwanda given names are
/// more common among the young.
pub(crate) fn given_name<R: Rng>(rng: &mut R, reference: &Reference, sex: Sex, age: i32) -> String {
    let kinyarwanda = if age < 25 { 0.4 } else { 0.15 };
    let names = &reference.names;
    if rng.random_bool(kinyarwanda) {
        names.kinyarwanda(sex).pick(rng).to_string()
    } else {
        names.christian(sex).pick(rng).to_string()
    }
}

/// A Rwandan mobile number: MTN (078, 079) or Airtel (072, 073).
pub(crate) fn phone<R: Rng>(rng: &mut R) -> PhoneNumber {
    let prefix = match rng.random_range(0..100) {
        0..=49 => "078",
        50..=69 => "079",
        70..=89 => "072",
        _ => "073",
    };
    let text = format!("{prefix}{:07}", rng.random_range(0..10_000_000u32));
    // Always valid: a known prefix and nine digits after the 0.
    PhoneNumber::parse(&text).unwrap_or_else(|e| panic!("generated phone: {e}"))
}

/// Whether an adult has a phone: most heads do, more of the better-off.
pub(crate) fn has_phone<R: Rng>(rng: &mut R, role: MemberRole, age: i32, wealth: f64) -> bool {
    if age < 16 {
        return false;
    }
    let base = match role {
        MemberRole::Head => 0.75,
        MemberRole::Spouse => 0.2,
        _ if age >= 18 => -0.1,
        _ => -0.8,
    };
    probit(rng, base + 0.5 * wealth)
}

/// A household's address: Kigali's street addresses, elsewhere the village.
pub(crate) fn address<R: Rng>(rng: &mut R, village: &Village) -> Option<String> {
    if village.urban {
        let street = match &village.code[..2] {
            "11" => "KN",
            "12" => "KG",
            _ => "KK",
        };
        let kind = ["St", "Ave", "Rd"][rng.random_range(0..3)];
        Some(format!(
            "{street} {} {kind}, house {}",
            rng.random_range(1..=700),
            rng.random_range(1..=120)
        ))
    } else if rng.random_bool(0.7) {
        Some(format!("Umudugudu wa {}", village.name))
    } else {
        None
    }
}

/// A GPS position near the village, for the households that were geolocated.
pub(crate) fn gps<R: Rng>(rng: &mut R, village: &Village) -> Option<(f64, f64)> {
    if !rng.random_bool(0.6) {
        return None;
    }
    let (lat, lon) = village.centre;
    let lat = (lat + 0.004 * normal(rng)).clamp(-2.85, -1.05);
    let lon = (lon + 0.004 * normal(rng)).clamp(28.86, 30.9);
    Some((lat, lon))
}
