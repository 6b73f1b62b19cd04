//! The generated files: deterministic per seed, every row valid for the domain types and the
//! default form, and plausible as a picture of Rwanda's households.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::path::Path;

use inkingi_domain::areas::{parse_area_data, AreaCode, AreaLevel};
use inkingi_domain::registry::form::{FormSchema, Section};
use inkingi_domain::registry::model::{check_one_head, person_consistency, Gps, PersonInput};
use inkingi_domain::registry::{
    BirthDate, MemberRole, Name, NationalId, PhoneNumber, RegistryNumber, Sex,
};
use inkingi_synth::{generate, output_paths, Error, GenerateConfig};
use serde_json::{Map, Value};

const AREAS: &str = include_str!("../../../data/areas/rwanda-areas.csv");

type Row = HashMap<String, String>;

fn read(path: &Path) -> (Vec<String>, Vec<Row>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect()
        })
        .collect();
    (headers, rows)
}

struct Data {
    households: Vec<Row>,
    members: Vec<Row>,
    truth: Vec<Row>,
    household_headers: Vec<String>,
    member_headers: Vec<String>,
}

fn run(config: &GenerateConfig, dir: &Path) -> Data {
    let reported = std::sync::atomic::AtomicU64::new(0);
    let summary = generate(config, dir, &|done| {
        reported.fetch_max(done, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(
        reported.into_inner(),
        config.households,
        "progress reaches the end"
    );
    let [h, m, t] = output_paths(dir);
    let (household_headers, households) = read(&h);
    let (member_headers, members) = read(&m);
    let (_, truth) = read(&t);
    assert_eq!(summary.households, households.len() as u64);
    assert_eq!(summary.people, members.len() as u64);
    Data {
        households,
        members,
        truth,
        household_headers,
        member_headers,
    }
}

fn sample() -> (GenerateConfig, Data) {
    let config = GenerateConfig::new(3000, 11);
    let dir = tempfile::tempdir().unwrap();
    let data = run(&config, dir.path());
    (config, data)
}

fn answers(form: &FormSchema, section: Section, row: &Row, what: &str) -> Map<String, Value> {
    let mut out = Map::new();
    for q in form.questions(section) {
        let cell = &row[&format!("q_{}", q.key)];
        match FormSchema::parse_text(q, cell) {
            Ok(Some(v)) => {
                out.insert(q.key.clone(), v);
            }
            Ok(None) => {}
            Err(e) => panic!("{what}: q_{}: {e}", q.key),
        }
    }
    out
}

fn opt(row: &Row, col: &str) -> Option<String> {
    Some(row[col].clone()).filter(|s| !s.is_empty())
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let config = GenerateConfig::new(2500, 5);
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    generate(&config, a.path(), &|_| {}).unwrap();
    generate(&config, b.path(), &|_| {}).unwrap();
    let other = GenerateConfig { seed: 6, ..config };
    generate(&other, c.path(), &|_| {}).unwrap();
    for ((pa, pb), pc) in output_paths(a.path())
        .iter()
        .zip(output_paths(b.path()).iter())
        .zip(output_paths(c.path()).iter())
    {
        let (x, y, z) = (
            std::fs::read(pa).unwrap(),
            std::fs::read(pb).unwrap(),
            std::fs::read(pc).unwrap(),
        );
        assert!(x.len() > 1000);
        assert_eq!(x, y, "{} differs between runs", pa.display());
        assert_ne!(x, z, "{} is the same for another seed", pa.display());
    }
}

#[test]
fn every_row_is_valid() {
    let (config, data) = sample();
    let form = FormSchema::default_form();
    let villages: HashSet<String> = parse_area_data(AREAS)
        .unwrap()
        .into_iter()
        .filter(|a| a.level == AreaLevel::Village)
        .map(|a| a.code.as_str().to_string())
        .collect();
    let mut expected: Vec<String> = inkingi_synth::HOUSEHOLD_FIXED_COLUMNS
        .iter()
        .map(|s| s.to_string())
        .collect();
    expected.extend(form.household.iter().map(|q| format!("q_{}", q.key)));
    assert_eq!(data.household_headers, expected);
    assert_eq!(
        data.member_headers.len(),
        inkingi_synth::MEMBER_FIXED_COLUMNS.len() + form.member.len()
    );

    let mut registry = HashSet::new();
    for (i, h) in data.households.iter().enumerate() {
        let what = format!("households.csv row {}", i + 2);
        let n = RegistryNumber::parse(&h["registry_number"]).unwrap();
        assert!(registry.insert(n), "{what}: registry number repeated");
        let code = AreaCode::parse(&h["village_code"]).unwrap();
        assert!(villages.contains(code.as_str()), "{what}: unknown village");
        if let (Some(lat), Some(lon)) = (opt(h, "gps_lat"), opt(h, "gps_lon")) {
            Gps::new(lat.parse().unwrap(), lon.parse().unwrap()).unwrap();
        }
        let a = answers(&form, Section::Household, h, &what);
        assert_eq!(form.validate(Section::Household, &a), vec![], "{what}");
    }

    let keys: HashMap<&str, &Row> = data
        .members
        .iter()
        .map(|m| (m["member_key"].as_str(), m))
        .collect();
    assert_eq!(keys.len(), data.members.len(), "member keys are unique");
    let mut roles: HashMap<&str, Vec<MemberRole>> = HashMap::new();
    for (i, m) in data.members.iter().enumerate() {
        let what = format!("members.csv row {}", i + 2);
        let role: MemberRole = m["role"].parse().unwrap();
        roles
            .entry(m["household_key"].as_str())
            .or_default()
            .push(role);
        let birth = BirthDate::parse_on(&m["birth_date"], config.as_of).unwrap();
        let person = PersonInput {
            given_name: Name::parse(&m["given_name"]).unwrap(),
            family_name: Name::parse(&m["family_name"]).unwrap(),
            sex: m["sex"].parse().unwrap(),
            birth_date: Some(birth),
            national_id: opt(m, "national_id").map(|s| NationalId::parse(&s).unwrap()),
            birth_registration: opt(m, "birth_registration"),
            refugee_id: opt(m, "refugee_id"),
            passport: opt(m, "passport"),
            phones: m["phones"]
                .split(';')
                .filter(|s| !s.is_empty())
                .map(|s| PhoneNumber::parse(s).unwrap())
                .collect(),
            answers: answers(&form, Section::Member, m, &what),
        };
        assert_eq!(person_consistency(&person, config.as_of), vec![], "{what}");
        if let Some(id) = &person.national_id {
            id.check_against(person.sex, person.birth_date.as_ref())
                .unwrap();
        }
        if person.birth_registration.is_some() {
            assert!(
                birth.age_on(config.as_of) < 16,
                "{what}: birth registration of an adult"
            );
        }
        assert_eq!(
            form.validate(Section::Member, &person.answers),
            vec![],
            "{what}"
        );
        for (col, sex) in [
            ("mother_key", Some(Sex::Female)),
            ("father_key", Some(Sex::Male)),
            ("guardian_key", None),
        ] {
            if let Some(k) = opt(m, col) {
                let parent = keys
                    .get(k.as_str())
                    .unwrap_or_else(|| panic!("{what}: {col} {k} unknown"));
                if let Some(sex) = sex {
                    assert_eq!(parent["sex"].parse::<Sex>().unwrap(), sex, "{what}: {col}");
                    let older = BirthDate::parse(&parent["birth_date"]).unwrap().year() + 12;
                    assert!(
                        older <= birth.year(),
                        "{what}: {col} too young to be a parent"
                    );
                }
            }
        }
    }
    assert_eq!(
        roles.len(),
        data.households.len(),
        "every household has members"
    );
    for (key, r) in &roles {
        check_one_head(r).unwrap_or_else(|e| panic!("household {key}: {e}"));
    }
}

#[test]
fn the_population_looks_like_rwanda() {
    let (config, data) = sample();
    let duplicate: HashSet<&str> = data
        .truth
        .iter()
        .filter(|t| !t["duplicate_of"].is_empty())
        .map(|t| t["member_key"].as_str())
        .collect();
    let originals: Vec<&Row> = data
        .members
        .iter()
        .filter(|m| !duplicate.contains(m["member_key"].as_str()))
        .collect();
    let age = |m: &Row| {
        BirthDate::parse(&m["birth_date"])
            .unwrap()
            .age_on(config.as_of)
    };
    let share = |pred: &dyn Fn(&&Row) -> bool, of: &[&Row]| {
        of.iter().filter(|m| pred(m)).count() as f64 / of.len() as f64
    };
    let mean_size = originals.len() as f64 / config.households as f64;
    assert!(
        (3.9..=4.7).contains(&mean_size),
        "mean household size {mean_size}"
    );
    let under15 = share(&|m| age(m) < 15, &originals);
    let under6 = share(&|m| age(m) < 6, &originals);
    assert!((0.34..=0.46).contains(&under15), "under 15: {under15}");
    assert!((0.13..=0.21).contains(&under6), "under 6: {under6}");
    let disabled = share(
        &|m| !["", "none"].contains(&m["q_disability"].as_str()),
        &originals,
    );
    assert!((0.03..=0.07).contains(&disabled), "disability: {disabled}");
    let women = share(&|m| m["sex"] == "F", &originals);
    assert!((0.46..=0.56).contains(&women), "women: {women}");

    let young: Vec<&Row> = originals.iter().copied().filter(|m| age(m) < 6).collect();
    let with_mother = share(&|m| !m["mother_key"].is_empty(), &young);
    assert!(
        with_mother > 0.75,
        "under-6 linked to a mother: {with_mother}"
    );
    let with_father = share(&|m| !m["father_key"].is_empty(), &young);
    assert!(
        (0.2..0.8).contains(&with_father),
        "under-6 linked to a father: {with_father}"
    );

    let adults: Vec<&Row> = originals.iter().copied().filter(|m| age(m) >= 18).collect();
    let with_id = share(&|m| !m["national_id"].is_empty(), &adults);
    assert!(with_id > 0.9, "adults with an ID: {with_id}");
    let with_phone = share(&|m| !m["phones"].is_empty(), &adults);
    assert!(
        (0.35..0.9).contains(&with_phone),
        "adults with a phone: {with_phone}"
    );
    let children: Vec<&Row> = originals.iter().copied().filter(|m| age(m) < 16).collect();
    let with_br = share(&|m| !m["birth_registration"].is_empty(), &children);
    assert!(
        (0.25..0.35).contains(&with_br),
        "children with a birth registration: {with_br}"
    );

    // Family names are the child's own: most children do not carry their father's.
    let by_key: HashMap<&str, &Row> = originals
        .iter()
        .map(|m| (m["member_key"].as_str(), *m))
        .collect();
    let with_father: Vec<(&Row, &Row)> = originals
        .iter()
        .filter_map(|m| by_key.get(m["father_key"].as_str()).map(|f| (*m, *f)))
        .collect();
    let same = with_father
        .iter()
        .filter(|(c, f)| c["family_name"] == f["family_name"])
        .count();
    assert!(
        (same as f64) < 0.3 * with_father.len() as f64,
        "{same} of {}",
        with_father.len()
    );

    // National IDs of distinct people are distinct.
    let mut ids = HashSet::new();
    for m in &originals {
        if !m["national_id"].is_empty() {
            assert!(
                ids.insert(m["national_id"].clone()),
                "ID {} repeated",
                m["national_id"]
            );
        }
    }
}

#[test]
fn answers_follow_one_wealth_score() {
    let (_, data) = sample();
    let assets = |h: &Row| h["q_assets"].split(';').filter(|s| !s.is_empty()).count() as f64;
    let mean = |rows: Vec<&Row>| rows.iter().map(|h| assets(h)).sum::<f64>() / rows.len() as f64;
    let (grid, other): (Vec<&Row>, Vec<&Row>) = data
        .households
        .iter()
        .partition(|h| h["q_lighting"] == "grid_electricity");
    let (g, o) = (mean(grid), mean(other));
    assert!(g > o + 0.3, "assets with grid electricity {g}, without {o}");
    let cement: Vec<&Row> = data
        .households
        .iter()
        .filter(|h| h["q_floor"] != "earth")
        .collect();
    let social = |rows: &[&Row]| {
        rows.iter()
            .filter(|h| h["q_income_sources"].contains("social_transfer"))
            .count() as f64
            / rows.len() as f64
    };
    let earth: Vec<&Row> = data
        .households
        .iter()
        .filter(|h| h["q_floor"] == "earth")
        .collect();
    assert!(
        social(&earth) > 1.5 * social(&cement),
        "transfers go to the poorer"
    );
}

#[test]
fn duplicates_are_recorded_in_the_truth_file() {
    let (config, data) = sample();
    let members: HashMap<&str, &Row> = data
        .members
        .iter()
        .map(|m| (m["member_key"].as_str(), m))
        .collect();
    let households: HashMap<&str, &Row> = data
        .households
        .iter()
        .map(|h| (h["household_key"].as_str(), h))
        .collect();
    assert_eq!(data.truth.len(), data.members.len());
    let truth: HashMap<&str, &Row> = data
        .truth
        .iter()
        .map(|t| (t["member_key"].as_str(), t))
        .collect();
    assert_eq!(truth.len(), data.truth.len(), "every member once");
    let kinds = [
        "typo",
        "phonetic",
        "swapped_names",
        "missing_id",
        "year_only",
        "moved",
    ];
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    for t in &data.truth {
        let m = members[t["member_key"].as_str()];
        if t["duplicate_of"].is_empty() {
            assert!(t["errors"].is_empty());
            continue;
        }
        duplicates += 1;
        let original_truth = truth[t["duplicate_of"].as_str()];
        assert_eq!(original_truth["entity_id"], t["entity_id"]);
        assert!(
            original_truth["duplicate_of"].is_empty(),
            "duplicates are of originals"
        );
        let original = members[t["duplicate_of"].as_str()];
        assert_eq!(m["sex"], original["sex"]);
        for kind in t["errors"].split(';').filter(|k| !k.is_empty()) {
            assert!(kinds.contains(&kind), "unknown error kind {kind}");
            seen.insert(kind);
        }
        let errors: Vec<&str> = t["errors"].split(';').collect();
        if !m["national_id"].is_empty() {
            assert_eq!(
                m["national_id"], original["national_id"],
                "a kept ID is the original's"
            );
        }
        if errors.contains(&"missing_id") {
            assert!(m["national_id"].is_empty() && !original["national_id"].is_empty());
        }
        let village = |r: &Row| households[r["household_key"].as_str()]["village_code"].clone();
        let (here, there) = (village(m), village(original));
        if errors.contains(&"moved") {
            assert_ne!(here, there);
            assert_eq!(here[..4], there[..4], "moved within the sector");
        }
        let names = |r: &Row| format!("{} {}", r["given_name"], r["family_name"]);
        if errors
            .iter()
            .all(|e| ["missing_id", "moved", ""].contains(e))
        {
            assert_eq!(names(m), names(original));
        }
    }
    let rate = duplicates as f64 / (data.members.len() - duplicates) as f64;
    assert!(
        (config.duplicate_share * 0.6..=config.duplicate_share * 1.4).contains(&rate),
        "duplicate rate {rate}"
    );
    assert_eq!(seen.len(), kinds.len(), "every error kind occurs: {seen:?}");
}

#[test]
fn no_duplicates_when_the_share_is_zero() {
    let config = GenerateConfig {
        duplicate_share: 0.0,
        ..GenerateConfig::new(500, 3)
    };
    let dir = tempfile::tempdir().unwrap();
    let data = run(&config, dir.path());
    assert!(data.truth.iter().all(|t| t["duplicate_of"].is_empty()));
    assert_eq!(data.households.len(), 500);
}

#[test]
fn bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for config in [
        GenerateConfig::new(0, 1),
        GenerateConfig {
            duplicate_share: 0.9,
            ..GenerateConfig::new(10, 1)
        },
        GenerateConfig {
            child_id_share: -0.1,
            ..GenerateConfig::new(10, 1)
        },
    ] {
        let err = generate(&config, dir.path(), &|_| {}).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
    }
}
