#![allow(clippy::unwrap_used)]
//! The engine end to end on generated people with known duplicates.

use inkingi_linkage::blocking::Blocker;
use inkingi_linkage::cluster::PairStatus;
use inkingi_linkage::evaluate::{dense_ids, Evaluation};
use inkingi_linkage::index::LinkIndex;
use inkingi_linkage::{run, Dataset, LinkageConfig, Silent, TrainedModel};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CONFIG: &str = r#"
[[field]]
name = "id"
kind = "exact"
compare = false
[[field]]
name = "national_id"
kind = "national_id"
[[field]]
name = "given_name"
kind = "name"
[[field]]
name = "family_name"
kind = "name"
[[field]]
name = "dob"
kind = "date"
[[field]]
name = "sex"
kind = "sex"
[[field]]
name = "village"
kind = "area"
[[field]]
name = "mother"
kind = "name"
minors_only = { date_field = "dob", reference_year = 2025 }

[[blocking]]
on = ["family_name:variant", "dob:year"]
[[blocking]]
on = ["given_name", "village:prefix4"]
[[blocking]]
on = ["national_id"]

[model]
seed = 7
u_sample_pairs = 200000
deterministic = [{ on = ["national_id"] }, { on = ["given_name", "family_name", "dob"] }]
deterministic_recall = 0.6

[clustering]
auto_link = 0.95
review = 0.3

[constraints]
twins = { mother = "mother", date_of_birth = "dob", given_name = "given_name" }
"#;

const GIVEN: &[&str] = &[
    "Jean",
    "Marie",
    "Claudine",
    "Eric",
    "Aline",
    "Patrick",
    "Divine",
    "Emmanuel",
    "Grace",
    "Olivier",
    "Josiane",
    "Theogene",
    "Alice",
    "Innocent",
    "Solange",
    "Fabrice",
    "Yvonne",
    "Samuel",
    "Esperance",
    "Didier",
];
const FAMILY: &[&str] = &[
    "Uwimana",
    "Mukamana",
    "Habimana",
    "Niyonzima",
    "Uwase",
    "Nshimiyimana",
    "Mukeshimana",
    "Hakizimana",
    "Ndayisaba",
    "Uwamahoro",
    "Habyarimana",
    "Nsengiyumva",
    "Iradukunda",
    "Ishimwe",
    "Niyonsaba",
    "Tuyisenge",
    "Mugisha",
    "Byiringiro",
    "Kayitesi",
    "Umutoni",
    "Bizimana",
    "Ntakirutimana",
    "Nyirahabimana",
    "Munyaneza",
];

fn typo(rng: &mut StdRng, s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    let i = rng.random_range(1..c.len());
    match rng.random_range(0..3) {
        0 => c[i] = (b'a' + rng.random_range(0..26u8)) as char,
        1 => {
            c.remove(i);
        }
        _ => c.swap(i - 1, i),
    }
    c.into_iter().collect()
}

/// People, some with one or two altered copies; returns rows and each row's entity.
fn people(n: usize, seed: u64) -> (Vec<Vec<String>>, Vec<String>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut rows, mut truth) = (Vec::new(), Vec::new());
    for p in 0..n {
        let given = GIVEN[rng.random_range(0..GIVEN.len())].to_string();
        let family = FAMILY[rng.random_range(0..FAMILY.len())].to_string();
        let y = rng.random_range(1950..2024);
        let dob = format!(
            "{y}-{:02}-{:02}",
            rng.random_range(1..13),
            rng.random_range(1..29)
        );
        let nid = if y < 2007 {
            format!("1{y}8{:011}", rng.random_range(0..100_000_000_000u64))
        } else {
            String::new()
        };
        let village = format!(
            "{:02}{:02}{:02}{:02}",
            rng.random_range(11..58),
            rng.random_range(1..10),
            rng.random_range(1..6),
            rng.random_range(1..8)
        );
        let mother = format!(
            "{} {}",
            GIVEN[rng.random_range(0..GIVEN.len())],
            FAMILY[rng.random_range(0..FAMILY.len())]
        );
        let sex = if rng.random_bool(0.5) { "F" } else { "M" };
        let base = vec![
            String::new(),
            nid,
            given,
            family,
            dob,
            sex.to_string(),
            village,
            mother,
        ];
        let copies = match rng.random_range(0..10) {
            0..=5 => 0,
            6..=8 => 1,
            _ => 2,
        };
        for c in 0..=copies {
            let mut r = base.clone();
            r[0] = format!("p{p}-{c}");
            if c > 0 {
                match rng.random_range(0..4) {
                    0 => r[2] = typo(&mut rng, &r[2]),
                    1 => r[3] = typo(&mut rng, &r[3]).replace('r', "l"),
                    2 => r[4] = r[4][..4].to_string(),
                    _ => r[1] = String::new(),
                }
                if rng.random_bool(0.3) {
                    r[6] = format!("{}{:02}", &r[6][..6], rng.random_range(1..8));
                }
            }
            rows.push(r);
            truth.push(format!("p{p}"));
        }
    }
    (rows, truth)
}

fn config() -> LinkageConfig {
    let c: LinkageConfig = toml::from_str(CONFIG).unwrap();
    c.validate().unwrap();
    c
}

fn dataset(config: &LinkageConfig, rows: &[Vec<String>]) -> Dataset {
    let mut d = Dataset::new(config);
    d.push_rows(config, rows, 0).unwrap();
    d
}

#[test]
fn deduplicates_generated_people_accurately() {
    let config = config();
    let (rows, truth) = people(3000, 1);
    let data = dataset(&config, &rows);
    let out = run(&config, &data, None, &Silent).unwrap();
    let entity = dense_ids(truth.iter().map(|s| Some(s.as_str())));
    let eval = Evaluation {
        entity: &entity,
        cluster: &out.clustering.cluster,
        left: None,
    };
    let m = eval.metrics(None, Some(&|a, b| out.blocker.would_generate(a, b)));
    assert!(m.f1 > 0.95, "{m:?}");
    assert!(m.pair_completeness.unwrap() > 0.97, "{m:?}");
    assert!(out.model.training.em_iterations > 1);
    // The same seed trains the same model.
    let again = run(&config, &data, None, &Silent).unwrap();
    assert_eq!(again.model.to_json(), out.model.to_json());
    // A saved model scores the same pairs without training.
    let saved = TrainedModel::from_json(&out.model.to_json(), &out.scorer.comparisons).unwrap();
    let reused = run(&config, &data, Some(saved), &Silent).unwrap();
    assert_eq!(reused.clustering.cluster, out.clustering.cluster);
}

#[test]
fn em_sessions_per_blocking_rule_train_an_accurate_model() {
    let mut config = config();
    config.model.em_sessions = true;
    let (rows, truth) = people(3000, 1);
    let data = dataset(&config, &rows);
    let out = run(&config, &data, None, &Silent).unwrap();
    let entity = dense_ids(truth.iter().map(|s| Some(s.as_str())));
    let eval = Evaluation {
        entity: &entity,
        cluster: &out.clustering.cluster,
        left: None,
    };
    let m = eval.metrics(None, None);
    let sessions = &out.model.training.sessions;
    assert!(m.f1 > 0.95, "{m:?} {sessions:?}");
    assert_eq!(sessions.len(), 3, "one session per blocking rule");
    assert!(sessions.iter().all(|s| s.used), "{sessions:?}");
    // Each session leaves out the fields its rule makes agree.
    assert_eq!(sessions[0].left_out, ["family_name", "dob"]);
    assert_eq!(sessions[2].left_out, ["national_id"]);
    // The ID session's pairs nearly all match: its match class takes nearly all of them.
    assert!(sessions[2].lambda > 0.9, "{sessions:?}");
    let again = run(&config, &data, None, &Silent).unwrap();
    assert_eq!(again.model.to_json(), out.model.to_json());
}

#[test]
fn explanations_add_up_to_the_weight() {
    let config = config();
    let (rows, _) = people(500, 2);
    let data = dataset(&config, &rows);
    let out = run(&config, &data, None, &Silent).unwrap();
    for p in out.pairs.iter().take(50) {
        let parts: f64 = out
            .scorer
            .explain(&data, p.a as usize, p.b as usize)
            .iter()
            .map(|c| c.weight)
            .sum();
        assert!((parts + out.scorer.prior() - f64::from(p.weight)).abs() < 1e-3);
    }
}

#[test]
fn pairs_found_by_several_rules_come_once() {
    let config = config();
    let (rows, _) = people(400, 3);
    let data = dataset(&config, &rows);
    let blocker = Blocker::new(&data, &config.blocking, u64::MAX).unwrap();
    let mut brute = 0u64;
    for a in 0..data.len() {
        for b in a + 1..data.len() {
            brute += u64::from(blocker.would_generate(a, b));
        }
    }
    assert_eq!(blocker.count_distinct(), brute);
    assert!(
        blocker.planned_pairs() > brute,
        "the rules overlap in this data"
    );
}

#[test]
fn oversized_blocks_are_counted_and_skipped() {
    let config = config();
    let mut rows = Vec::new();
    for i in 0..3000 {
        rows.push(vec![
            format!("r{i}"),
            String::new(),
            format!("Name{}", i % 7),
            "Uwimana".into(),
            "1990".into(),
            "F".into(),
            "11010101".into(),
            String::new(),
        ]);
    }
    let data = dataset(&config, &rows);
    let blocker = Blocker::new(&data, &config.blocking, 10_000).unwrap();
    let over = &blocker.report.oversized;
    assert!(
        over.iter()
            .any(|o| o.records == 3000 && o.pairs == 3000 * 2999 / 2),
        "{over:?}"
    );
    assert!(over.iter().any(|o| o.example.contains("uwimana")));
    assert_eq!(blocker.count_distinct(), 0);
}

#[test]
fn different_national_ids_and_twins_never_cluster() {
    let config = config();
    let row = |id: &str, nid: &str, given: &str| {
        vec![
            id.to_string(),
            nid.to_string(),
            given.to_string(),
            "Habimana".into(),
            "2021-05-04".into(),
            "F".into(),
            "11010101".into(),
            "Mukamana Alice".into(),
        ]
    };
    let mut rows = vec![
        row("a", "1199080012345678", "Aline"),
        row("b", "1199080087654321", "Aline"),
        row("c", "", "Uwase"),
        row("d", "", "Keza"),
    ];
    // Background people so that u and EM have something to learn from.
    rows.extend(people(800, 4).0);
    let data = dataset(&config, &rows);
    let out = run(&config, &data, None, &Silent).unwrap();
    let c = &out.clustering.cluster;
    assert_ne!(c[0], c[1], "two national IDs");
    assert_ne!(c[2], c[3], "twins");
    let refused = out
        .pairs
        .iter()
        .zip(&out.clustering.status)
        .any(|(p, s)| (p.a, p.b) == (0, 1) && *s == PairStatus::Refused);
    assert!(refused, "the ID clash is kept for review");
}

#[test]
fn a_lookup_finds_the_person_in_the_index() {
    let config = config();
    let (rows, _) = people(2000, 5);
    let data = dataset(&config, &rows);
    let out = run(&config, &data, None, &Silent).unwrap();
    let mut index = LinkIndex::build(&config, data, &out.model, 5000).unwrap();
    let mut probe = rows[10].clone();
    probe[0] = "new".into();
    probe[2] = format!("{}e", probe[2]);
    let entity = |r: u32| rows[r as usize][0].split('-').next().unwrap().to_string();
    let found = index.lookup(probe.clone()).unwrap();
    assert!(found.iter().any(|c| c.record == 10), "{found:?}");
    assert!(
        found
            .iter()
            .all(|c| c.probability > 0.9 && entity(c.record) == entity(10)),
        "{found:?}"
    );
    assert_eq!(
        index.len(),
        rows.len(),
        "a lookup leaves the index as it was"
    );
    let new = index.insert(probe.clone()).unwrap();
    let found = index.lookup(probe).unwrap();
    assert_eq!(found.first().map(|c| c.record), Some(new));
}

#[test]
fn bad_rows_and_configs_say_where() {
    let config = config();
    let mut data = Dataset::new(&config);
    let err = data
        .push_rows(&config, &[vec!["x".to_string()]], 41)
        .unwrap_err();
    assert!(err.to_string().contains("row 41"), "{err}");
    let rows = vec![vec![
        "r".to_string(),
        String::new(),
        "!!".into(),
        "A".into(),
        "2021-02-30".into(),
        "?".into(),
        "11x".into(),
        String::new(),
    ]];
    data.push_rows(&config, &rows, 0).unwrap();
    let reasons: Vec<String> = data
        .warnings
        .examples
        .iter()
        .map(|w| format!("{} {}", w.field, w.reason))
        .collect();
    assert_eq!(data.warnings.total(), 5, "{reasons:?}");
    assert!(reasons
        .iter()
        .any(|r| r.starts_with("dob") && r.contains("no such day")));
    assert!(reasons
        .iter()
        .any(|r| r.starts_with("family_name") && r.contains("one-character")));
    let mut bad = config.clone();
    bad.blocking[0].on = vec!["nope".into()];
    let data = dataset(&config, &people(10, 6).0);
    assert!(run(&bad, &data, None, &Silent).is_err());
}

#[test]
fn the_training_sample_is_seeded_and_whole_at_a_share_of_one() {
    let config = config();
    let (rows, _) = people(2_000, 5);
    let data = dataset(&config, &rows);
    let blocker = Blocker::new(&data, &config.blocking, u64::MAX).unwrap();
    let count = |share: f64, seed: u64| {
        blocker.fold_sample(
            share,
            seed,
            || 0u64,
            |n, _, _, _| *n += 1,
            |a, b| a + b,
            &|_| {},
        )
    };
    let all = blocker.count_distinct();
    assert_eq!(count(1.0, 7), all);
    assert_eq!(count(0.3, 7), count(0.3, 7), "same seed, same sample");
    let part = count(0.3, 7);
    assert!(part > 0 && part < all, "{part} of {all}");
    assert_eq!(count(0.0, 7), 0);
}

/// Given and family names written in each other's place: with `swap_with`, the comparison has
/// a level for it and the `unordered` blocking key brings the two records together; without
/// it, the same pair is two different names in both fields and is not even compared.
#[test]
fn swapped_names_meet_and_compare_as_swapped() {
    let row = |id: &str, given: &str, family: &str| -> Vec<String> {
        [id, "", given, family, "2019-04-02", "f", "11010101", ""]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let rows = vec![
        row("a", "Claudine", "Habyarimana"),
        row("b", "Habyalimana", "Claudine"),
        row("c", "Claudine", "Mukamana"),
    ];
    let mut config = config();
    config.blocking = vec![toml::from_str(r#"on = ["given_name:unordered", "dob:year"]"#).unwrap()];
    // The transform needs the partner.
    let data = dataset(&config, &rows);
    let err = Blocker::new(&data, &config.blocking, 1000).unwrap_err();
    assert!(err.to_string().contains("swap_with"), "{err}");

    for (field, partner) in [(2, "family_name"), (3, "given_name")] {
        config.fields[field].swap_with = Some(partner.into());
    }
    config.validate().unwrap();
    let data = dataset(&config, &rows);
    let blocker = Blocker::new(&data, &config.blocking, 1000).unwrap();
    assert!(
        blocker.would_generate(0, 1),
        "a swapped pair shares the unordered key"
    );
    assert!(
        !blocker.would_generate(0, 2),
        "one shared name is not both names"
    );

    let comparisons = inkingi_linkage::compare::Comparison::from_config(&config).unwrap();
    let given = comparisons.iter().find(|c| c.name == "given_name").unwrap();
    let family = comparisons
        .iter()
        .find(|c| c.name == "family_name")
        .unwrap();
    // "Habyalimana" is a spelling variant of "Habyarimana": swapped up to variants.
    assert_eq!(
        given.label(given.level(&data, 0, 1)),
        "swapped with family_name"
    );
    assert_eq!(
        family.label(family.level(&data, 0, 1)),
        "swapped with given_name"
    );
    // Not swapped: the same given name stays exact, the other family name is compared as usual.
    assert_eq!(given.label(given.level(&data, 0, 2)), "exact");
    assert_ne!(
        family.label(family.level(&data, 0, 2)),
        "swapped with given_name"
    );

    let mut bad = config.clone();
    bad.fields[2].swap_with = Some("dob".into());
    assert!(bad.validate().is_err(), "a date is not a name to swap with");
}
