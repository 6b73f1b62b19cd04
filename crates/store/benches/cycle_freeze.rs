//! Freezing a payment cycle of many beneficiaries (issue 6's goal: 500,000 in ≤ 30 s).
//!
//! Seeds a registry straight in SQL — N active households of 1 to 6 members spread over nine
//! villages, each enrolled in one programme paying `1000 + 500 × size` capped at 3000 — then
//! times `Cycles::take_step(Freeze)`: the set-based `INSERT … SELECT` that counts each
//! household's living members, applies the formula and numbers the payments, plus the totals.
//! The seed bypasses the import path on purpose: the freeze reads only these rows and indexes,
//! and seeding 500,000 households through the API would measure the import instead.
//!
//! `cargo bench -p inkingi-store --bench cycle_freeze` (INKINGI_BENCH_BENEFICIARIES changes N,
//! default 500000; set INKINGI_TEST_DATABASE_URL to include PostgreSQL).
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use inkingi_domain::programmes::cycle::{CycleStep, LinearBenefit, Period};
use inkingi_domain::programmes::{Agency, Catalogue, Programme};
use inkingi_store::BackendKind;
use inkingi_testkit::{databases, TestDb};
use sqlx::Connection;

const PG_SEED: [&str; 3] = [
    "INSERT INTO registry_households (id, registry_number, village_code, form_id, form_version, \
     answers, status, version, created_at, updated_at) \
     SELECT md5('h' || g)::uuid, 'HH-' || g, '1101010' || (1 + g % 9), 'bench', 1, '{}', \
     'active', 1, now(), now() FROM generate_series(1, $1) g",
    "INSERT INTO registry_people (id, household_id, village_code, role, given_name, \
     family_name, given_skel, family_skel, sex, answers, version, created_at, updated_at) \
     SELECT md5('p' || g || '-' || k)::uuid, md5('h' || g)::uuid, '1101010' || (1 + g % 9), \
     CASE WHEN k = 1 THEN 'head' ELSE 'child' END, 'Given' || k, 'Family' || g, 'g', 'f', 'F', \
     '{}', 1, now(), now() FROM generate_series(1, $1) g, generate_series(1, 6) k \
     WHERE k <= 1 + g % 6",
    "INSERT INTO programme_enrolments (id, programme_code, household_id, subject_id, \
     village_code, status, score, amount, decision, enrolled_since, version, created_at, \
     updated_at) SELECT md5('e' || g)::uuid, 'bench', md5('h' || g)::uuid, md5('h' || g)::uuid, \
     '1101010' || (1 + g % 9), 'enrolled', 30, 0, 'bench', now(), 1, now(), now() \
     FROM generate_series(1, $1) g",
];

const SQLITE_SEED: [&str; 3] = [
    "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < $1) \
     INSERT INTO registry_households (id, registry_number, village_code, form_id, form_version, \
     answers, status, version, created_at, updated_at) \
     SELECT unhex(printf('%032x', g)), 'HH-' || g, '1101010' || (1 + g % 9), 'bench', 1, '{}', \
     'active', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM s",
    "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < $1), \
     k(k) AS (VALUES (1), (2), (3), (4), (5), (6)) \
     INSERT INTO registry_people (id, household_id, village_code, role, given_name, \
     family_name, given_skel, family_skel, sex, answers, version, created_at, updated_at) \
     SELECT unhex(printf('%016x%016x', g, k)), unhex(printf('%032x', g)), \
     '1101010' || (1 + g % 9), CASE WHEN k = 1 THEN 'head' ELSE 'child' END, 'Given' || k, \
     'Family' || g, 'g', 'f', 'F', '{}', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' \
     FROM s JOIN k ON k.k <= 1 + s.g % 6",
    "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < $1) \
     INSERT INTO programme_enrolments (id, programme_code, household_id, subject_id, \
     village_code, status, score, amount, decision, enrolled_since, version, created_at, \
     updated_at) SELECT unhex(printf('e%031x', g)), 'bench', unhex(printf('%032x', g)), \
     unhex(printf('%032x', g)), '1101010' || (1 + g % 9), 'enrolled', 30, 0, 'bench', \
     '2026-01-01T00:00:00Z', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM s",
];

async fn seed(db: &TestDb, n: i64) {
    let started = Instant::now();
    match db.kind {
        BackendKind::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            for sql in PG_SEED {
                sqlx::query(sql).bind(n).execute(&mut c).await.unwrap();
            }
            sqlx::query("ANALYZE").execute(&mut c).await.unwrap();
        }
        BackendKind::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            for sql in SQLITE_SEED {
                sqlx::query(sql).bind(n).execute(&mut c).await.unwrap();
            }
            sqlx::query("ANALYZE").execute(&mut c).await.unwrap();
        }
    }
    println!(
        "  seeded {n} households and enrolments in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn programme() -> Programme {
    let mut p = Catalogue::rw_illustrative().unwrap().programmes[0].clone();
    p.code = "bench".into();
    p.capacity = None;
    p.budget = None;
    p.benefit = inkingi_domain::programmes::Benefit::PerMember {
        base: 1000,
        per_member: 500,
        cap: Some(3000),
    };
    p
}

#[tokio::main]
async fn main() {
    let n: i64 = std::env::var("INKINGI_BENCH_BENEFICIARIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    for db in databases().await {
        println!("{db:?}: freeze a cycle of {n} beneficiaries");
        let store = db.store().await;
        let p = programme();
        let agency = Agency {
            code: p.agency.clone(),
            name: "Bench agency".into(),
            description: String::new(),
            illustrative: true,
        };
        store.programmes().put_agency(&agency).await.unwrap();
        store
            .programmes()
            .put_programme(&p, None, "bench")
            .await
            .unwrap();
        seed(&db, n).await;
        let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let period = Period::new(day("2026-01-01"), day("2026-01-31")).unwrap();
        let cycle = store
            .cycles()
            .create("bench", period, "bench")
            .await
            .unwrap();
        let started = Instant::now();
        let frozen = store
            .cycles()
            .take_step(
                cycle.id,
                CycleStep::Freeze,
                "bench",
                LinearBenefit::of(&p.benefit),
                day("2026-01-01"),
            )
            .await
            .unwrap();
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(frozen.beneficiaries, n);
        println!(
            "  froze {} entitlements, {} francs, in {secs:.2} s ({:.0} rows/s)",
            frozen.beneficiaries,
            frozen.total_amount,
            frozen.beneficiaries as f64 / secs
        );
        store.close().await;
    }
}
