//! Answers to the default questionnaire (data/forms/rw-socioeconomic.json), drawn from one
//! latent wealth score per household so that dwelling, assets, land, livestock, income and
//! food security agree with each other the way they do in household surveys. The form lists
//! choices from the poorest to the richest; the shares below follow that order and are rough
//! national figures (EICV and census orders of magnitude), not an exact reproduction.

use rand::Rng;
use serde_json::{json, Map, Value};

use crate::household::Sketch;
use crate::stats::{normal, ordinal, probit};
use inkingi_domain::registry::{MemberRole, Sex};

const WALL: (&[&str], &[f64]) = (
    &[
        "grass_or_leaves",
        "mud_and_wood",
        "mud_bricks",
        "sun_dried_bricks_cement",
        "burnt_bricks",
        "cement_blocks",
    ],
    &[0.01, 0.30, 0.38, 0.13, 0.12, 0.06],
);
const ROOF: (&[&str], &[f64]) = (
    &[
        "grass_or_leaves",
        "tins_or_plastic",
        "local_tiles",
        "iron_sheets",
        "industrial_tiles",
        "concrete",
    ],
    &[0.01, 0.01, 0.12, 0.78, 0.06, 0.02],
);
const FLOOR: (&[&str], &[f64]) = (
    &["earth", "wood_planks", "cement", "tiles"],
    &[0.68, 0.01, 0.27, 0.04],
);
const WATER: (&[&str], &[f64]) = (
    &[
        "surface_water",
        "unprotected_spring",
        "protected_spring",
        "public_tap",
        "piped_in_yard",
        "piped_in_dwelling",
    ],
    &[0.08, 0.10, 0.15, 0.45, 0.15, 0.07],
);
const TOILET: (&[&str], &[f64]) = (
    &[
        "none",
        "pit_latrine_no_slab",
        "pit_latrine_slab",
        "improved_ventilated",
        "flush",
    ],
    &[0.02, 0.25, 0.55, 0.10, 0.08],
);
const LIGHTING: (&[&str], &[f64]) = (
    &[
        "none",
        "firewood",
        "candle",
        "lantern_or_kerosene",
        "torch_or_battery",
        "solar",
        "grid_electricity",
    ],
    &[0.01, 0.03, 0.02, 0.05, 0.12, 0.25, 0.52],
);
const COOKING: (&[&str], &[f64]) = (
    &["crop_residue", "firewood", "charcoal", "gas", "electricity"],
    &[0.04, 0.78, 0.15, 0.02, 0.01],
);
/// Asset and its probit intercept (sets how common it is; wealth raises the chance).
const ASSETS: [(&str, f64); 9] = [
    ("radio", 0.1),
    ("mobile_phone", 0.6),
    ("bicycle", -1.0),
    ("television", -1.3),
    ("sofa_set", -1.1),
    ("motorcycle", -2.0),
    ("refrigerator", -2.0),
    ("computer", -2.0),
    ("car", -2.4),
];

const NOTES: [&str; 5] = [
    "Head was away; the spouse answered.",
    "Household moved here last year, from another sector.",
    "House damaged by heavy rain, repairs planned.",
    "Elderly head, answers given by a neighbour, to be confirmed.",
    "Family asked to be visited again, \"after the harvest\".",
];

fn pick<R: Rng>(rng: &mut R, wealth: f64, rho: f64, (choices, shares): (&[&str], &[f64])) -> Value {
    json!(choices[ordinal(rng, wealth, rho, shares)])
}

/// What the household answers depend on besides wealth.
pub(crate) struct HouseholdFacts {
    pub urban: bool,
    pub size: usize,
    pub head_age: i32,
    pub has_phone: bool,
}

/// The household section, valid against the default form (skip conditions included).
pub(crate) fn household<R: Rng>(rng: &mut R, w: f64, facts: &HouseholdFacts) -> Map<String, Value> {
    let mut a = Map::new();
    let tenure: (&[&str], &[f64]) = if facts.urban {
        (
            &["homeless", "free_lodging", "rented", "owner"],
            &[0.002, 0.05, 0.55, 0.398],
        )
    } else {
        (
            &["homeless", "free_lodging", "rented", "owner"],
            &[0.003, 0.07, 0.07, 0.857],
        )
    };
    a.insert("tenure".into(), pick(rng, w, 0.2, tenure));
    a.insert("wall".into(), pick(rng, w, 0.75, WALL));
    a.insert("roof".into(), pick(rng, w, 0.6, ROOF));
    a.insert("floor".into(), pick(rng, w, 0.8, FLOOR));
    let rooms = (1.0 + 0.25 * facts.size as f64 + 0.6 * w + 0.5 * normal(rng)).round();
    a.insert("rooms".into(), json!(rooms.clamp(1.0, 30.0) as i64));
    a.insert("water_source".into(), pick(rng, w, 0.6, WATER));
    a.insert("toilet".into(), pick(rng, w, 0.7, TOILET));
    a.insert("lighting".into(), pick(rng, w, 0.75, LIGHTING));
    a.insert("cooking_fuel".into(), pick(rng, w, 0.7, COOKING));
    let assets = assets(rng, w, facts.has_phone);
    if !assets.is_empty() {
        a.insert("assets".into(), json!(assets));
    }
    land_and_livestock(rng, w, facts.urban, &mut a);
    income(rng, w, facts, &mut a);
    let meals = 1 + ordinal(rng, w, 0.7, &[0.1, 0.5, 0.4]) as i64;
    a.insert("meals_per_day".into(), json!(meals));
    if rng.random_bool(0.95) {
        let hungry = (2.5 - 2.0 * w + normal(rng)).round().clamp(0.0, 12.0);
        a.insert("hungry_months".into(), json!(hungry as i64));
    }
    if rng.random_bool(0.01) {
        a.insert(
            "enumerator_note".into(),
            json!(NOTES[rng.random_range(0..NOTES.len())]),
        );
    }
    a
}

fn assets<R: Rng>(rng: &mut R, w: f64, has_phone: bool) -> Vec<&'static str> {
    ASSETS
        .iter()
        .filter(|(name, intercept)| {
            if *name == "mobile_phone" {
                // Someone's phone number is on the form: the household has a phone.
                has_phone || probit(rng, intercept - 1.0 + 0.7 * w)
            } else {
                probit(rng, intercept + 0.7 * w)
            }
        })
        .map(|(name, _)| *name)
        .collect()
}

fn land_and_livestock<R: Rng>(rng: &mut R, w: f64, urban: bool, a: &mut Map<String, Value>) {
    let owns_land = rng.random_bool(if urban { 0.2 } else { 0.85 });
    a.insert("owns_land".into(), json!(owns_land));
    if owns_land {
        let ha = (0.35f64.ln() + 0.5 * w + 0.7 * normal(rng)).exp();
        let ha = ((ha * 100.0).round() / 100.0).clamp(0.01, 500.0);
        a.insert("land_area_ha".into(), json!(ha));
    }
    let owns_livestock = rng.random_bool(if urban { 0.08 } else { 0.65 });
    a.insert("owns_livestock".into(), json!(owns_livestock));
    if owns_livestock {
        let mut count = |p: f64, max: i64| -> i64 {
            if probit(rng, p + 0.4 * w) {
                rng.random_range(1..=max)
            } else {
                0
            }
        };
        let cattle = count(-0.5, 4);
        let goats = count(-0.2, 6);
        let sheep = count(-1.3, 5);
        let pigs = count(-1.0, 4);
        let mut poultry = count(-0.3, 20);
        if cattle + goats + sheep + pigs + poultry == 0 {
            poultry = rng.random_range(1..=8);
        }
        for (k, v) in [
            ("cattle", cattle),
            ("goats", goats),
            ("sheep", sheep),
            ("pigs", pigs),
            ("poultry", poultry),
        ] {
            a.insert(k.into(), json!(v));
        }
    }
}

fn income<R: Rng>(rng: &mut R, w: f64, facts: &HouseholdFacts, a: &mut Map<String, Value>) {
    let urban = if facts.urban { 1.0 } else { 0.0 };
    let farming = a.get("owns_land") == Some(&json!(true));
    let livestock = a.get("owns_livestock") == Some(&json!(true));
    let candidates = [
        ("social_transfer", probit(rng, -1.3 - 0.8 * w)),
        (
            "casual_farm_labour",
            probit(rng, -0.4 - 0.7 * w - 1.2 * urban),
        ),
        ("casual_non_farm_labour", probit(rng, -1.0 + 0.9 * urban)),
        ("farming", farming && rng.random_bool(0.9)),
        ("livestock", livestock && rng.random_bool(0.5)),
        ("remittances", rng.random_bool(0.08)),
        (
            "pension",
            facts.head_age >= 60 && probit(rng, -1.2 + 0.5 * w),
        ),
        ("own_business", probit(rng, -1.2 + 0.6 * w + 0.4 * urban)),
        ("salaried", probit(rng, -1.7 + 0.9 * w + 0.6 * urban)),
    ];
    let mut sources: Vec<&str> = candidates
        .iter()
        .filter(|(_, yes)| *yes)
        .map(|(k, _)| *k)
        .collect();
    if sources.is_empty() {
        sources.push("none");
    }
    if rng.random_bool(0.9) {
        let income = if sources == ["none"] {
            f64::from(rng.random_range(0..=5u32)) * 1000.0
        } else {
            (25_000f64.ln() + 0.9 * w + 0.5 * normal(rng)).exp()
        };
        let income = ((income / 500.0).round() * 500.0).clamp(0.0, 100_000_000.0);
        a.insert("monthly_income_rwf".into(), json!(income as i64));
    }
    a.insert("income_sources".into(), json!(sources));
}

/// Highest level completed: limited by age, raised by wealth and by a later birth cohort.
fn education<R: Rng>(
    rng: &mut R,
    age: i32,
    birth_year: i32,
    w: f64,
    in_school: bool,
) -> &'static str {
    if age <= 6 {
        return if in_school { "pre_primary" } else { "none" };
    }
    if age <= 12 {
        return if rng.random_bool(0.7) {
            "pre_primary"
        } else {
            "none"
        };
    }
    let cohort = match birth_year {
        ..=1959 => -0.9,
        1960..=1979 => -0.4,
        1980..=1994 => 0.0,
        _ => 0.4,
    };
    let e = 0.6 * w + cohort + 0.8 * normal(rng);
    let levels: [(f64, i32, &str); 5] = [
        (-1.0, 13, "primary"),
        (0.3, 16, "lower_secondary"),
        (0.9, 19, "upper_secondary"),
        (1.4, 20, "tvet"),
        (1.7, 22, "university"),
    ];
    let mut level = "none";
    for (threshold, min_age, name) in levels {
        if e >= threshold && age >= min_age {
            level = name;
        }
    }
    level
}

fn in_school<R: Rng>(rng: &mut R, age: i32, w: f64) -> bool {
    match age {
        3..=5 => probit(rng, -0.6 + 0.5 * w),
        6..=12 => rng.random_bool(0.93),
        13..=18 => probit(rng, 0.3 + 0.6 * w),
        19..=24 => probit(rng, -1.0 + 0.6 * w),
        _ => false,
    }
}

fn occupation<R: Rng>(
    rng: &mut R,
    p: &Sketch,
    w: f64,
    studying: bool,
    urban: bool,
) -> &'static str {
    match p.age {
        ..=5 => "child",
        6..=15 => {
            if studying {
                "student"
            } else {
                "child"
            }
        }
        _ if studying => "student",
        65.. if rng.random_bool(0.35) => "retired",
        _ => {
            if p.sex == Sex::Female && p.role == MemberRole::Spouse && rng.random_bool(0.25) {
                return "homemaker";
            }
            let farm = if urban { 0.05 } else { 0.5 };
            let jobs = [
                "unemployed",
                "casual_labourer",
                "farmer",
                "self_employed",
                "salaried",
            ];
            let shares = [0.08, 0.22, farm, 0.12, 0.08];
            jobs[ordinal(rng, w, 0.5, &shares)]
        }
    }
}

const DISABILITIES: [&str; 6] = [
    "seeing",
    "hearing",
    "walking",
    "cognition",
    "self_care",
    "communication",
];

/// The member section, valid against the default form.
pub(crate) fn member<R: Rng>(
    rng: &mut R,
    p: &Sketch,
    birth_year: i32,
    w: f64,
    urban: bool,
) -> Map<String, Value> {
    let mut a = Map::new();
    let studying = in_school(rng, p.age, w);
    if p.age >= 3 {
        a.insert(
            "education".into(),
            json!(education(rng, p.age, birth_year, w, studying)),
        );
        if p.age <= 30 {
            a.insert("in_school".into(), json!(studying));
        }
    }
    a.insert(
        "occupation".into(),
        json!(occupation(rng, p, w, studying, urban)),
    );
    let disabled_p = if p.age >= 60 { 0.18 } else { 0.045 };
    let severe = if p.age >= 2 && rng.random_bool(disabled_p) {
        let kind = DISABILITIES[rng.random_range(0..DISABILITIES.len())];
        let severity =
            ["some", "a_lot", "cannot_do_at_all"][ordinal(rng, 0.0, 0.0, &[0.6, 0.3, 0.1])];
        a.insert("disability".into(), json!(kind));
        a.insert("disability_severity".into(), json!(severity));
        severity != "some"
    } else {
        if p.age >= 2 {
            a.insert("disability".into(), json!("none"));
        }
        false
    };
    if p.age >= 15 {
        let chronic_p = (0.02 + 0.004 * f64::from(p.age - 15)).min(0.4);
        a.insert("chronic_illness".into(), json!(rng.random_bool(chronic_p)));
        let can_work = !severe && (p.age < 75 || rng.random_bool(0.4));
        a.insert("can_work".into(), json!(can_work));
    }
    if p.sex == Sex::Female && (15..=49).contains(&p.age) {
        let pregnant_p = match p.age {
            15..=19 => 0.03,
            20..=34 => 0.1,
            _ => 0.04,
        };
        a.insert("pregnant".into(), json!(rng.random_bool(pregnant_p)));
    }
    a
}
