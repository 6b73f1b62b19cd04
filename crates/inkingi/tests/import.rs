//! `inkingi import` / `inkingi export` as an operator runs them, on both backends: bad input,
//! idempotent re-runs, a kill -9 mid-import, and the export → import round trip.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use inkingi_testkit::TestDb;

mod common;

fn inkingi(db: &TestDb) -> Command {
    let mut c = common::command();
    c.env("INKINGI_DATABASE_URL", &db.url);
    c
}

/// Exit code and everything the command printed.
fn run(c: &mut Command) -> (i32, String) {
    let (code, out, err) = common::run(c);
    (code, format!("{out}{err}"))
}

fn generate(dir: &Path, households: u32) -> PathBuf {
    let out = dir.join("gen");
    let status = Command::new(common::BIN)
        .args([
            "generate",
            "--households",
            &households.to_string(),
            "--seed",
            "7",
        ])
        .args(["--duplicates", "0", "--out"])
        .arg(&out)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    out
}

fn import(db: &TestDb, dir: &Path, errors: &Path, extra: &[&str]) -> (i32, String) {
    run(inkingi(db)
        .arg("import")
        .arg("--households")
        .arg(dir.join("households.csv"))
        .arg("--members")
        .arg(dir.join("members.csv"))
        .arg("--errors")
        .arg(errors)
        .arg("--quiet")
        .args(extra))
}

fn export(db: &TestDb, out: &Path) -> (String, String) {
    let (code, text) = run(inkingi(db)
        .args(["export", "--area", "national", "--out"])
        .arg(out));
    assert_eq!(code, 0, "{text}");
    (
        std::fs::read_to_string(out.join("households.csv")).unwrap(),
        std::fs::read_to_string(out.join("members.csv")).unwrap(),
    )
}

fn read_csv(path: &Path) -> (csv::ByteRecord, Vec<csv::ByteRecord>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.byte_headers().unwrap().clone();
    (header, r.byte_records().map(Result::unwrap).collect())
}

fn write_csv(path: &Path, header: &csv::ByteRecord, rows: &[csv::ByteRecord]) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_byte_record(header).unwrap();
    for r in rows {
        w.write_byte_record(r).unwrap();
    }
    w.flush().unwrap();
}

fn col(header: &csv::ByteRecord, name: &str) -> usize {
    header.iter().position(|c| c == name.as_bytes()).unwrap()
}

fn set(row: &mut csv::ByteRecord, i: usize, value: &[u8]) {
    let mut cells: Vec<Vec<u8>> = row.iter().map(<[u8]>::to_vec).collect();
    cells[i] = value.to_vec();
    *row = csv::ByteRecord::from(cells);
}

/// Each kind of bad input from the issue is reported against its row and column, its household
/// is not stored at all, and the rest of the file is imported.
#[tokio::test]
async fn bad_rows_are_reported_and_their_households_left_out() {
    for db in inkingi_testkit::databases().await {
        let dir = tempfile::tempdir().unwrap();
        let gen = generate(dir.path(), 12);
        let (hh_header, mut hh) = read_csv(&gen.join("households.csv"));
        let (m_header, mut members) = read_csv(&gen.join("members.csv"));
        let key_of = |r: &csv::ByteRecord| String::from_utf8(r[0].to_vec()).unwrap();
        // Index of the first member row of household i, and of the head.
        let first_member = |members: &[csv::ByteRecord], hh: &[csv::ByteRecord], i: usize| {
            members.iter().position(|m| m[0] == hh[i][0]).unwrap()
        };
        let mut expected: Vec<(&str, usize, &str)> = Vec::new();
        // 1: an impossible date.
        let m = first_member(&members, &hh, 1);
        set(&mut members[m], col(&m_header, "birth_date"), b"1990-13-01");
        expected.push(("members.csv", m + 2, "birth_date"));
        // 2: an unknown village.
        set(&mut hh[2], col(&hh_header, "village_code"), b"99999999");
        expected.push(("households.csv", 4, "village_code"));
        // 3: two heads.
        let m = first_member(&members, &hh, 3);
        let role = col(&m_header, "role");
        let second = m + 1;
        assert_eq!(members[second][0], hh[3][0], "household 3 has two members");
        set(&mut members[second], role, b"head");
        expected.push(("members.csv", m + 2, "role"));
        // 4: a malformed national ID.
        let m = first_member(&members, &hh, 4);
        set(&mut members[m], col(&m_header, "national_id"), b"12345");
        expected.push(("members.csv", m + 2, "national_id"));
        // 5: an oversized name.
        let m = first_member(&members, &hh, 5);
        set(
            &mut members[m],
            col(&m_header, "given_name"),
            "A".repeat(150).as_bytes(),
        );
        expected.push(("members.csv", m + 2, "given_name"));
        // 6: born in the future.
        let m = first_member(&members, &hh, 6);
        set(&mut members[m], col(&m_header, "birth_date"), b"2090");
        expected.push(("members.csv", m + 2, "birth_date"));
        // 7: a name in Windows-1252 is transcoded and accepted.
        let m = first_member(&members, &hh, 7);
        set(
            &mut members[m],
            col(&m_header, "given_name"),
            b"Ang\xe9lique",
        );
        let bad_keys: Vec<String> = (1..=6).map(|i| key_of(&hh[i])).collect();
        let input = dir.path().join("input");
        std::fs::create_dir_all(&input).unwrap();
        write_csv(&input.join("households.csv"), &hh_header, &hh);
        write_csv(&input.join("members.csv"), &m_header, &members);

        let errors = dir.path().join("errors.csv");
        let (code, text) = import(&db, &input, &errors, &[]);
        assert_eq!(code, 0, "{db:?}: {text}");
        assert!(text.contains("6 households rejected"), "{db:?}: {text}");
        assert!(text.contains("Windows-1252"), "{db:?}: {text}");
        let (_, report) = read_csv(&errors);
        for (file, line, column) in &expected {
            assert!(
                report.iter().any(|r| &r[0] == file.as_bytes()
                    && r[1] == *line.to_string().as_bytes()
                    && &r[2] == column.as_bytes()
                    && !r[4].is_empty()),
                "{db:?}: no report for {file} line {line} column {column}"
            );
        }
        let (households, people) = export(&db, &dir.path().join("out"));
        for key in &bad_keys {
            assert!(
                !households.contains(key.as_str()),
                "{db:?}: {key} was stored"
            );
            assert!(
                !people.contains(key.as_str()),
                "{db:?}: members of {key} were stored"
            );
        }
        assert!(households.contains(&key_of(&hh[0])));
        assert!(people.contains("Angélique"), "{db:?}");
        assert_eq!(households.lines().count(), 1 + hh.len() - 6);
    }
}

#[tokio::test]
async fn a_wrong_header_names_the_columns() {
    let db = inkingi_testkit::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    let gen = generate(dir.path(), 2);
    let text = std::fs::read_to_string(gen.join("members.csv")).unwrap();
    // A byte-order mark is fine; a misspelt column is not.
    let text = format!("\u{feff}{}", text.replacen("given_name", "first_name", 1));
    std::fs::write(gen.join("members.csv"), text).unwrap();
    let (code, out) = import(&db, &gen, &dir.path().join("e.csv"), &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("missing columns: given_name"), "{out}");
    assert!(out.contains("unknown columns: first_name"), "{out}");
}

/// Importing twice changes nothing; an export imported into a fresh database exports the same.
#[tokio::test]
async fn re_import_is_idempotent_and_export_round_trips() {
    for db in inkingi_testkit::databases().await {
        let dir = tempfile::tempdir().unwrap();
        let gen = generate(dir.path(), 150);
        let errors = dir.path().join("e.csv");
        let (code, first) = import(&db, &gen, &errors, &["--batch", "40"]);
        assert_eq!(code, 0, "{first}");
        assert!(first.contains("0 households rejected"), "{db:?}: {first}");
        let before = export(&db, &dir.path().join("a"));
        let (code, again) = import(&db, &gen, &errors, &[]);
        assert_eq!(code, 0, "{again}");
        assert!(
            again.contains("imported 0 households and 0 people"),
            "{again}"
        );
        let households = before.0.lines().count() - 1;
        assert!(
            again.contains(&format!("{households} already present")),
            "{again}"
        );
        assert_eq!(export(&db, &dir.path().join("b")), before);

        let fresh = match db.kind {
            inkingi_store::BackendKind::Sqlite => inkingi_testkit::sqlite().await,
            inkingi_store::BackendKind::Postgres => {
                let admin = std::env::var(inkingi_testkit::PG_ENV).unwrap();
                inkingi_testkit::postgres(&admin).await
            }
        };
        let (code, text) = import(&fresh, &dir.path().join("a"), &errors, &[]);
        assert_eq!(code, 0, "{text}");
        assert_eq!(export(&fresh, &dir.path().join("c")), before, "{db:?}");
    }
}

/// kill -9 in the middle of an import, then the same command again: the end state equals that
/// of an uninterrupted import into another database.
#[tokio::test]
async fn an_import_killed_mid_way_resumes_to_the_same_state() {
    for db in inkingi_testkit::databases().await {
        let dir = tempfile::tempdir().unwrap();
        let gen = generate(dir.path(), 3000);
        let errors = dir.path().join("e.csv");
        let store = db.store().await;
        let mut child = inkingi(&db)
            .arg("import")
            .arg("--households")
            .arg(gen.join("households.csv"))
            .arg("--members")
            .arg(gen.join("members.csv"))
            .arg("--errors")
            .arg(&errors)
            .args(["--quiet", "--batch", "50"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill once some batches are committed.
        let started = Instant::now();
        let mut killed_mid_way = false;
        while started.elapsed() < Duration::from_secs(120) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            let n = count_households(&store).await;
            if n > 0 {
                child.kill().unwrap();
                killed_mid_way = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child.wait().unwrap();
        assert!(
            killed_mid_way,
            "{db:?}: the import ended before it could be killed"
        );
        let partial = count_households(&store).await;
        let (code, text) = import(&db, &gen, &errors, &["--batch", "50"]);
        assert_eq!(code, 0, "{text}");
        let resumed = export(&db, &dir.path().join("a"));
        assert!(
            text.contains(&format!("{partial} already present")),
            "{db:?}: {text}"
        );

        let clean_db = inkingi_testkit::sqlite().await;
        let (code, text) = import(&clean_db, &gen, &errors, &[]);
        assert_eq!(code, 0, "{text}");
        assert_eq!(resumed, export(&clean_db, &dir.path().join("b")), "{db:?}");
    }
}

async fn count_households(store: &inkingi_store::Store) -> u64 {
    let mut n = 0;
    let mut after = None;
    // Through the port, so the test reads what export would.
    loop {
        let Ok(page) = store
            .registry_bulk()
            .export_households("", after.clone(), 5000)
            .await
        else {
            return 0;
        };
        let Some(last) = page.last() else { break };
        after = Some((last.village_code.clone(), last.id));
        n += page.len() as u64;
    }
    n
}

/// `match run` on an imported registry finds the generator's injected duplicates that the
/// import let in (those without a clashing national ID), named by their member keys so that
/// `match evaluate` can score them against the generator's truth.
#[tokio::test]
async fn match_run_finds_the_duplicates_of_an_imported_registry() {
    for db in inkingi_testkit::databases().await {
        let dir = tempfile::tempdir().unwrap();
        let gen = dir.path().join("gen");
        let out = Command::new(common::BIN)
            .args(["generate", "--households", "600", "--seed", "11", "--out"])
            .arg(&gen)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let (code, text) = import(&db, &gen, &dir.path().join("e.csv"), &[]);
        assert_eq!(code, 0, "{text}");
        let (code, text) = run(inkingi(&db)
            .args(["match", "run", "--id", "source-key", "--out"])
            .arg(dir.path().join("m")));
        assert_eq!(code, 0, "{text}");
        let clusters = std::fs::read_to_string(dir.path().join("m/clusters.csv")).unwrap();
        let people = clusters.lines().count() - 1;
        assert!(text.contains(&format!("{people} records")), "{text}");
        review_queue_is_filled_once(&db, &dir.path().join("m"), &text).await;
        let (code, eval) = run(inkingi(&db)
            .args(["match", "evaluate", "--truth"])
            .arg(gen.join("truth.csv"))
            .args(["--id-column", "member_key", "--entity-column", "entity_id"])
            .arg("--clusters")
            .arg(dir.path().join("m/clusters.csv")));
        assert_eq!(code, 0, "{eval}");
        // The `all` row: subgroup, true pairs, precision, recall, F1, …. The duplicates the
        // import lets in are the hard ones (no ID or a mistyped one), and 600 households give
        // EM little to learn from: what must hold is that what is linked is right and that a
        // good share is found.
        let all: Vec<f64> = eval
            .lines()
            .find(|l| l.starts_with("all "))
            .map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .filter_map(|v| v.parse().ok())
                    .collect()
            })
            .unwrap_or_else(|| panic!("no metrics in {eval}"));
        let (true_pairs, precision, recall) = (all[0], all[1], all[2]);
        assert!(true_pairs >= 10.0, "{db:?}: {eval}");
        assert!(precision >= 0.95 && recall >= 0.3, "{db:?}: {eval}");

        // A configuration naming a column the registry does not have is refused by name.
        let bad = dir.path().join("bad.toml");
        let good = include_str!("../../../config/linkage/registry.toml");
        let wrong = good.replace(
            "name = \"given_name\"\n",
            "name = \"given_name\"\ncolumn = \"surname\"\n",
        );
        assert_ne!(wrong, good);
        std::fs::write(&bad, wrong).unwrap();
        let (code, text) = run(inkingi(&db)
            .arg("--config")
            .arg(&bad)
            .args(["match", "run", "--out"])
            .arg(dir.path().join("m2")));
        assert_ne!(code, 0);
        assert!(text.contains("no column \"surname\""), "{text}");
    }
}

/// Every pair `match run` wrote is in the review queue once; a second run adds nothing and
/// leaves a dismissed review dismissed.
async fn review_queue_is_filled_once(db: &TestDb, out: &Path, first_run: &str) {
    use inkingi_domain::identity::AreaScope;
    use inkingi_store::linkage::{ReviewDecision, ReviewQuery, REGISTRY_DUPLICATE};
    let pairs = std::fs::read_to_string(out.join("pairs.csv")).unwrap();
    let written = (pairs.lines().count() - 1) as u64;
    let store = db.store().await;
    let q = |status: Option<&str>| ReviewQuery {
        status: status.map(str::to_string),
        kind: Some(REGISTRY_DUPLICATE.into()),
        limit: 5,
        ..Default::default()
    };
    let (some, total) = store
        .linkage()
        .reviews(&AreaScope::national(), &q(None))
        .await
        .unwrap();
    assert!(
        written > 0 && total == written,
        "{total} queued, {written} written"
    );
    // Pairs above the auto-link threshold are queued like the others, marked, not merged.
    let linked = pairs
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(4) == Some("linked"))
        .count();
    assert!(
        first_run.contains(&format!(
            "review queue: {written} pairs queued ({linked} above the auto-link threshold)"
        )),
        "{first_run}"
    );
    assert!(some
        .iter()
        .all(|r| r.review.status == "open" && r.review.weight.is_some()));
    assert!(
        some[0].review.explanation["fields"]
            .as_array()
            .unwrap()
            .len()
            >= 5
    );
    let dismissed = some[0].review.id;
    let mut uow = store.begin().await.unwrap();
    let decision = ReviewDecision {
        status: "dismissed",
        by: "test",
        at: chrono::Utc::now(),
        reason: Some("not the same person"),
        change_request_id: None,
    };
    assert!(store
        .linkage()
        .decide_review(&mut uow, dismissed, &decision)
        .await
        .unwrap());
    uow.commit().await.unwrap();
    store.close().await;

    let (code, text) = run(inkingi(db)
        .args(["match", "run", "--out"])
        .arg(out.with_extension("again")));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("review queue: 0 pairs queued (0 above the auto-link threshold), {written} already there")),
        "{text}"
    );
    let store = db.store().await;
    let (_, total) = store
        .linkage()
        .reviews(&AreaScope::national(), &q(None))
        .await
        .unwrap();
    let (_, open) = store
        .linkage()
        .reviews(&AreaScope::national(), &q(Some("open")))
        .await
        .unwrap();
    let still = store
        .linkage()
        .review(&AreaScope::national(), dismissed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (total, open, still.review.status.as_str()),
        (written, written - 1, "dismissed")
    );
    store.close().await;
}

#[tokio::test]
async fn import_school_stores_enrolments_once_and_refuses_a_bad_file_whole() {
    for db in inkingi_testkit::databases().await {
        let dir = tempfile::tempdir().unwrap();
        let born = chrono::Utc::now().date_naive() - chrono::Days::new(4 * 365);
        let enrolled = chrono::Utc::now().date_naive() - chrono::Days::new(20);
        let header = "school_code,school_name,village,given_name,family_name,sex,birth_date,\
                      enrolled_on,school_year,pupil_id";
        let good = |given: &str, pupil: &str| {
            format!("ES-1,Ecole,11010102,{given},Uwase,F,{born},{enrolled},2026,{pupil}")
        };
        let file = dir.path().join("school.csv");
        std::fs::write(
            &file,
            format!(
                "{header}\n{}\n{}\n",
                good("Keza", "P1"),
                good("Mutoni", "P2")
            ),
        )
        .unwrap();
        let school = |path: &Path| {
            run(inkingi(&db)
                .args(["children", "import-school"])
                .arg(path)
                .args(["--source", "sdms"]))
        };
        let (code, out) = school(&file);
        assert_eq!(code, 0, "[{db:?}] {out}");
        assert!(
            out.contains("2 row(s): 2 enrolment(s) stored, 0 already stored"),
            "{out}"
        );
        // The registry is empty: both children wait in the review queue.
        assert!(
            out.contains("0 child(ren) linked to the registry, 2 in the review queue"),
            "{out}"
        );
        let (code, out) = school(&file);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("0 enrolment(s) stored, 2 already stored"),
            "{out}"
        );

        let bad = dir.path().join("bad.csv");
        let late = good("Ineza", "P3").replace(&enrolled.to_string(), "2999-01-01");
        std::fs::write(&bad, format!("{header}\n{}\n{late}\n", good("Gaju", "P4"))).unwrap();
        let (code, out) = school(&bad);
        assert_ne!(code, 0, "{out}");
        assert!(
            out.contains("row[3].enrolled_on") && out.contains("in the future"),
            "{out}"
        );
        // Its good row was not stored: sent alone, it is new.
        std::fs::write(&bad, format!("{header}\n{}\n", good("Gaju", "P4"))).unwrap();
        let (_, out) = school(&bad);
        assert!(
            out.contains("1 enrolment(s) stored, 0 already stored"),
            "{out}"
        );
    }
}
