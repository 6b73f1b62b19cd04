//! `inkingi match …` on generated FEBRL-like files, as an analyst runs it.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod common;

use common::{inkingi, run};

const GIVEN: &[&str] = &[
    "jean", "marie", "eric", "aline", "patrick", "divine", "grace", "olivier", "alice", "samuel",
    "yvonne", "didier",
];
const SURNAME: &[&str] = &[
    "uwimana",
    "mukamana",
    "habimana",
    "niyonzima",
    "uwase",
    "hakizimana",
    "ndayisaba",
    "mugisha",
    "kayitesi",
    "bizimana",
];
const SUBURB: &[&str] = &[
    "kacyiru",
    "remera",
    "nyamirambo",
    "kimironko",
    "gikondo",
    "kicukiro",
];

fn typo(rng: &mut StdRng, s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    let i = rng.random_range(1..c.len());
    c[i] = (b'a' + rng.random_range(0..26u8)) as char;
    c.into_iter().collect()
}

/// FEBRL-shaped rows: originals `rec-N-org` and some duplicates `rec-N-dup-0` with one typo.
fn febrl_like(n: usize) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let mut rng = StdRng::seed_from_u64(11);
    let (mut orgs, mut dups) = (Vec::new(), Vec::new());
    for i in 0..n {
        let pick = |rng: &mut StdRng, l: &[&str]| l[rng.random_range(0..l.len())].to_string();
        let row = vec![
            format!("rec-{i}-org"),
            pick(&mut rng, GIVEN),
            pick(&mut rng, SURNAME),
            rng.random_range(1..300).to_string(),
            format!("{} street", pick(&mut rng, SURNAME)),
            String::new(),
            pick(&mut rng, SUBURB),
            rng.random_range(2000..2100).to_string(),
            "kgl".into(),
            format!(
                "{}{:02}{:02}",
                rng.random_range(1940..2010),
                rng.random_range(1..13),
                rng.random_range(1..29)
            ),
            rng.random_range(1_000_000..9_999_999).to_string(),
        ];
        if rng.random_bool(0.5) {
            let mut d = row.clone();
            d[0] = format!("rec-{i}-dup-0");
            let f = [1, 2, 4, 9, 10][rng.random_range(0..5)];
            d[f] = typo(&mut rng, &d[f]);
            dups.push(d);
        }
        orgs.push(row);
    }
    (orgs, dups)
}

fn write_csv(path: &Path, rows: &[Vec<String>]) {
    // FEBRL's own files put a space after each comma in the header; so does this one.
    let mut text = "rec_id, given_name, surname, street_number, address_1, address_2, suburb, postcode, state, date_of_birth, soc_sec_id\n".to_string();
    for r in rows {
        text.push_str(&r.join(","));
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

fn setup() -> (tempfile::TempDir, Vec<Vec<String>>, Vec<Vec<String>>) {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/linkage/febrl.toml"),
    )
    .unwrap();
    // A smaller u sample keeps the debug-build test quick; everything else is the shipped file.
    let config = shipped.replace("u_sample_pairs = 1000000", "u_sample_pairs = 100000");
    assert_ne!(config, shipped);
    std::fs::write(dir.path().join("febrl.toml"), config).unwrap();
    let (orgs, dups) = febrl_like(600);
    (dir, orgs, dups)
}

fn f1_of(stdout: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("all "))
        .unwrap_or_else(|| panic!("{stdout}"));
    line.split_whitespace().nth(4).unwrap().parse().unwrap()
}

#[test]
fn dedupe_writes_pairs_clusters_and_a_model_and_evaluates() {
    let (dir, orgs, dups) = setup();
    let mut all = orgs.clone();
    all.extend(dups.clone());
    write_csv(&dir.path().join("people.csv"), &all);
    let args = [
        "match",
        "dedupe",
        "--input",
        "people.csv",
        "--id-column",
        "rec_id",
        "--config",
        "febrl.toml",
        "--out",
        "out",
        "--truth-column",
        "rec_id",
        "--truth-format",
        "febrl",
    ];
    let (code, out, err) = run(inkingi(dir.path()).args(args));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(f1_of(&out) > 0.95, "{out}");
    assert!(out.contains(&format!("{} records", all.len())), "{out}");
    let clusters = std::fs::read_to_string(dir.path().join("out/clusters.csv")).unwrap();
    assert_eq!(clusters.lines().next(), Some("record_id,cluster_id"));
    assert_eq!(clusters.lines().count(), all.len() + 1);
    let pairs = std::fs::read_to_string(dir.path().join("out/pairs.csv")).unwrap();
    assert!(pairs
        .lines()
        .next()
        .unwrap()
        .contains("given_name_level,given_name_weight"));
    assert!(pairs.lines().count() > dups.len() / 2);
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/model.json")).unwrap())
            .unwrap();
    assert_eq!(model["format_version"], 1);

    // The saved model reproduces the clusters; `evaluate` agrees with the inline evaluation.
    let mut again = args.to_vec();
    again.extend(["--model", "out/model.json"]);
    again[9] = "out2";
    let (code, out2, err) = run(inkingi(dir.path()).args(&again));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out2/clusters.csv")).unwrap(),
        clusters
    );
    let (code, eval, err) = run(inkingi(dir.path()).args([
        "match",
        "evaluate",
        "--truth",
        "people.csv",
        "--id-column",
        "rec_id",
        "--truth-format",
        "febrl",
        "--clusters",
        "out/clusters.csv",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(f1_of(&eval), f1_of(&out));
    assert_eq!(f1_of(&out2), f1_of(&out));
}

#[test]
fn link_connects_two_files() {
    let (dir, orgs, dups) = setup();
    write_csv(&dir.path().join("a.csv"), &orgs);
    write_csv(&dir.path().join("b.csv"), &dups);
    let (code, out, err) = run(inkingi(dir.path()).args([
        "match",
        "link",
        "--left",
        "a.csv",
        "--right",
        "b.csv",
        "--id-column",
        "rec_id",
        "--config",
        "febrl.toml",
        "--out",
        "out",
        "--truth-column",
        "rec_id",
        "--truth-format",
        "febrl",
    ]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(f1_of(&out) > 0.95, "{out}");
    let clusters = std::fs::read_to_string(dir.path().join("out/clusters.csv")).unwrap();
    assert_eq!(clusters.lines().next(), Some("source,record_id,cluster_id"));
    assert_eq!(
        clusters.lines().filter(|l| l.starts_with("right,")).count(),
        dups.len()
    );
}

#[test]
fn bad_input_is_named() {
    let (dir, orgs, _) = setup();
    write_csv(&dir.path().join("people.csv"), &orgs);
    let base = [
        "match",
        "dedupe",
        "--input",
        "people.csv",
        "--config",
        "febrl.toml",
        "--out",
        "out",
    ];
    // The default id column does not exist in FEBRL files.
    let (code, _, err) = run(inkingi(dir.path()).args(base));
    assert_ne!(code, 0);
    assert!(
        err.contains("no column \"id\"") && err.contains("rec_id"),
        "{err}"
    );
    // No configuration.
    let (code, _, err) =
        run(inkingi(dir.path()).args(["match", "dedupe", "--input", "people.csv", "--out", "out"]));
    assert_ne!(code, 0);
    assert!(err.contains("--config"), "{err}");
    // A row with a missing value and a broken date: warnings, not a failure.
    let mut rows = orgs.clone();
    rows[3][9] = "19991345".into();
    write_csv(&dir.path().join("bad.csv"), &rows);
    let (code, _, err) = run(inkingi(dir.path()).args([
        "match",
        "dedupe",
        "--input",
        "bad.csv",
        "--id-column",
        "rec_id",
        "--config",
        "febrl.toml",
        "--out",
        "out",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("date_of_birth: impossible date") && err.contains("data row 4"),
        "{err}"
    );
}
