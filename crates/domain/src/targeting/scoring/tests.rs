use super::*;
use crate::areas::AreaCode;
use crate::registry::person::{BirthDate, MemberRole, Sex};
use crate::targeting::facts::MemberRecord;
use chrono::NaiveDate;
use serde_json::{json, Map};

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A household of `adults` adults born 1985 (the first female head) and `children` born 2020.
fn facts(area: &str, answers: Value, adults: usize, children: usize) -> HouseholdFacts {
    let none = Map::new();
    let mut members = Vec::new();
    for i in 0..adults + children {
        let (born, role) = match i {
            0 => ("1985", MemberRole::Head),
            i if i < adults => ("1985", MemberRole::Spouse),
            _ => ("2020", MemberRole::Child),
        };
        members.push(MemberRecord {
            sex: if i == 0 { Sex::Female } else { Sex::Male },
            birth_date: Some(BirthDate::parse(born).expect("date")),
            role,
            answers: &none,
            died_on: None,
        });
    }
    let on = NaiveDate::from_ymd_opt(2026, 6, 1).expect("date");
    HouseholdFacts::build(
        &AreaCode::parse(area).expect("area"),
        &obj(answers),
        &members,
        on,
    )
}

fn poor() -> Value {
    json!({
        "tenure": "free_lodging", "wall": "mud_and_wood", "roof": "grass_or_leaves", "floor": "earth",
        "rooms": 1, "water_source": "unprotected_spring", "toilet": "pit_latrine_no_slab",
        "lighting": "firewood", "cooking_fuel": "firewood", "assets": [], "owns_land": false,
        "owns_livestock": false, "income_sources": ["casual_farm_labour"], "monthly_income_rwf": 8000,
        "meals_per_day": 1, "hungry_months": 6
    })
}

fn middle() -> Value {
    json!({
        "tenure": "owner", "wall": "mud_bricks", "roof": "iron_sheets", "floor": "earth", "rooms": 2,
        "water_source": "public_tap", "toilet": "pit_latrine_slab", "lighting": "solar",
        "cooking_fuel": "firewood", "assets": ["radio", "mobile_phone"], "owns_land": true,
        "land_area_ha": 0.5, "owns_livestock": true, "cattle": 1, "goats": 2,
        "income_sources": ["farming"], "monthly_income_rwf": 30000, "meals_per_day": 2, "hungry_months": 2
    })
}

fn rich() -> Value {
    json!({
        "tenure": "owner", "wall": "cement_blocks", "roof": "industrial_tiles", "floor": "tiles", "rooms": 4,
        "water_source": "piped_in_dwelling", "toilet": "flush", "lighting": "grid_electricity",
        "cooking_fuel": "gas", "assets": ["mobile_phone", "television", "refrigerator", "car", "computer"],
        "owns_land": true, "land_area_ha": 2.0, "owns_livestock": false, "income_sources": ["salaried"],
        "monthly_income_rwf": 900000, "meals_per_day": 3, "hungry_months": 0
    })
}

fn sum_matches(s: &Score) {
    let total = s.intercept + s.contributions.iter().map(|c| c.contribution).sum::<f64>();
    assert!((total - s.raw).abs() < 1e-9, "{total} != {}", s.raw);
}

#[test]
fn shipped_model_loads_and_fits_the_shipped_form() {
    let m = ScoringModel::default_model();
    assert!(m.illustrative);
    m.check_against_form(&FormSchema::default_form())
        .expect("fits the form");
}

#[test]
fn default_model_orders_households_sensibly() {
    let m = ScoringModel::default_model();
    let p = m.score(&facts("41010101", poor(), 2, 4));
    let mid = m.score(&facts("41010101", middle(), 2, 3));
    let r = m.score(&facts("41010101", rich(), 2, 2));
    for s in [&p, &mid, &r] {
        sum_matches(s);
    }
    assert!(
        p.value < 40.0 && ["1", "2"].contains(&p.category.as_str()),
        "poor: {p:?}"
    );
    assert!(
        mid.value >= 40.0 && mid.value < 70.0,
        "middle: {}",
        mid.value
    );
    assert!(r.value >= 70.0 && r.category == "4", "rich: {}", r.value);
    assert!(p.value < mid.value && mid.value < r.value);
    // More dependants make the same dwelling poorer.
    let crowded = m.score(&facts("41010101", middle(), 2, 7));
    assert!(crowded.value < mid.value);
}

#[test]
fn contributions_name_their_factors() {
    let m = ScoringModel::default_model();
    let s = m.score(&facts("41010101", middle(), 2, 3));
    let find = |f: &str| {
        s.contributions
            .iter()
            .find(|c| c.factor == f)
            .map(|c| c.contribution)
    };
    assert_eq!(find("roof = iron_sheets"), Some(4.0));
    assert_eq!(find("assets includes radio"), Some(1.0));
    assert_eq!(find("size 5"), Some(-7.5));
    let tlu = find("tlu 0.9").expect("tlu term");
    assert!((tlu - 5.0 * 0.9f64.ln_1p()).abs() < 1e-9);
    assert_eq!((s.model_id.as_str(), s.model_version), ("pmt-default", 1));
}

fn small_model(intercept: f64) -> String {
    json!({
        "id": "t", "version": 3, "intercept": intercept,
        "answers": {"roof": {"type": "choice", "weights": {"concrete": 30}}},
        "indicators": {"size": {"weight": -10, "cap": 5}},
        "overrides": [
            {"area_prefix": "1", "intercept": 0},
            {"area_prefix": "11", "indicators": {"size": {"weight": -1}}}
        ],
        "categories": [
            {"name": "A", "below": 10}, {"name": "B", "below": 25}, {"name": "C", "below": 40},
            {"name": "D", "below": 70}, {"name": "E"}
        ]
    })
    .to_string()
}

#[test]
fn output_is_clamped_but_raw_is_kept() {
    let m = ScoringModel::from_json(&small_model(95.0)).expect("model");
    let high = m.score(&facts("41010101", json!({"roof": "concrete"}), 1, 0));
    assert_eq!(
        (high.raw, high.value, high.category.as_str()),
        (115.0, 100.0, "E")
    );
    let low = m.score(&facts("41010101", json!({}), 8, 0));
    assert_eq!(
        (low.raw, low.value, low.category.as_str()),
        (45.0, 45.0, "D"),
        "size capped at 5"
    );
    let m = ScoringModel::from_json(&small_model(5.0)).expect("model");
    let neg = m.score(&facts("41010101", json!({}), 3, 0));
    assert_eq!(
        (neg.raw, neg.value, neg.category.as_str()),
        (-25.0, 0.0, "A")
    );
    sum_matches(&neg);
}

#[test]
fn most_specific_area_override_wins() {
    let m = ScoringModel::from_json(&small_model(50.0)).expect("model");
    let answers = json!({"roof": "concrete"});
    let elsewhere = m.score(&facts("41010101", answers.clone(), 2, 0));
    let kigali = m.score(&facts("12010101", answers.clone(), 2, 0));
    let nyarugenge = m.score(&facts("11010101", answers, 2, 0));
    assert_eq!(elsewhere.value, 50.0 + 30.0 - 20.0);
    assert_eq!(kigali.value, 30.0 - 20.0);
    // The "11" override replaces the size weight; the intercept comes from "1".
    assert_eq!((nyarugenge.intercept, nyarugenge.value), (0.0, 30.0 - 2.0));
    sum_matches(&nyarugenge);
}

#[test]
fn category_bands() {
    let m = ScoringModel::from_json(&small_model(0.0)).expect("model");
    let got: Vec<&str> = [0.0, 9.99, 10.0, 24.0, 39.9, 40.0, 69.0, 70.0, 100.0]
        .iter()
        .map(|v| m.category_of(*v))
        .collect();
    assert_eq!(got, ["A", "A", "B", "B", "C", "D", "D", "E", "E"]);
}

#[test]
fn bad_models_are_refused_naming_the_field() {
    let mut v: Value = serde_json::from_str(&small_model(0.0)).expect("json");
    v["answers"]["roof"]["wieghts"] = json!({});
    let e = ScoringModel::from_json(&v.to_string()).expect_err("unknown field");
    assert!(e.field.starts_with("answers.roof"), "{e}");
    assert!(e.reason.contains("wieghts"), "{e}");

    let mut v: Value = serde_json::from_str(&small_model(0.0)).expect("json");
    v["colour"] = json!("red");
    let e = ScoringModel::from_json(&v.to_string()).expect_err("unknown top-level field");
    assert!(e.reason.contains("colour"), "{e}");

    let mut v: Value = serde_json::from_str(&small_model(0.0)).expect("json");
    v["categories"][2]["below"] = json!(20);
    let e = ScoringModel::from_json(&v.to_string()).expect_err("bands out of order");
    assert_eq!(e.field, "categories[2].below");

    let mut v: Value = serde_json::from_str(&small_model(0.0)).expect("json");
    v["indicators"]["wealth"] = json!({"weight": 1});
    let e = ScoringModel::from_json(&v.to_string()).expect_err("unknown indicator");
    assert!(e.field.starts_with("indicators"), "{e}");

    let mut v: Value = serde_json::from_str(&small_model(0.0)).expect("json");
    v["overrides"][1]["area_prefix"] = json!("1");
    let e = ScoringModel::from_json(&v.to_string()).expect_err("duplicate prefix");
    assert_eq!(e.field, "overrides[1].area_prefix");

    let mut v: Value = serde_json::from_str(&small_model(0.0)).expect("json");
    v["answers"]["roof"]["weights"]["marble"] = json!(3);
    let m = ScoringModel::from_json(&v.to_string()).expect("valid on its own");
    let e = m
        .check_against_form(&FormSchema::default_form())
        .expect_err("not a choice");
    assert_eq!(e.field, "answers.roof.weights.marble");
}

#[test]
fn models_load_from_toml() {
    let text = r#"
        id = "toml-model"
        version = 2
        intercept = 10.0
        [answers.owns_land]
        type = "boolean"
        if_true = 5.0
        [indicators.tlu]
        weight = 2.0
        transform = "log1p"
        [[categories]]
        name = "low"
        below = 40.0
        [[categories]]
        name = "high"
    "#;
    let m = ScoringModel::from_toml(text).expect("toml model");
    let s = m.score(&facts("51010101", json!({"owns_land": true}), 1, 0));
    assert_eq!((s.value, s.category.as_str()), (15.0, "low"));
    let e = ScoringModel::from_toml("id = \"x\"\nversion = 0\nintercept = 1.0\ncategories = []")
        .expect_err("bad");
    assert_eq!(e.field, "version");
}
