//! Synthetic children under six with health facts, written straight in SQL (as
//! [`crate::synthetic`] does for households), for benchmarks of the services-due recompute and
//! the indicators at national size. Two children per household, spread over every village of
//! the loaded areas (round robin), born uniformly over the six years before today; each
//! immunisation of the EPI given on its due date unless a seeded one in ten is missed; the last
//! three monthly growth visits (weight and length or height), a seeded share of children
//! short for their age. Refuses a database that already holds people.

use std::time::Instant;

use crate::shared_sql::on_uow;
use crate::{BackendKind, Store, StoreError, StoreResult};

/// The EPI doses given: vaccine, dose, age in days.
const DOSES: &str = "('BCG', 1, 0), ('OPV', 0, 0), ('OPV', 1, 42), ('OPV', 2, 70), \
    ('OPV', 3, 98), ('PENTA', 1, 42), ('PENTA', 2, 70), ('PENTA', 3, 98), ('PCV', 1, 42), \
    ('PCV', 2, 70), ('PCV', 3, 98), ('ROTA', 1, 42), ('ROTA', 2, 70), ('ROTA', 3, 98), \
    ('IPV', 1, 98), ('MR', 1, 274), ('MR', 2, 457)";

/// Growth visits: days before today.
const VISITS: &str = "(10), (40), (70)";

fn statements(kind: BackendKind) -> Vec<String> {
    match kind {
        BackendKind::Sqlite => {
            let series =
                "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < $1)";
            let t = "'2026-01-01T00:00:00Z'";
            let village = "(SELECT code FROM syn_villages WHERE rn = g % (SELECT count(*) FROM syn_villages))";
            let birth = "date('now', '-' || ((g * 7919) % 2190) || ' days')";
            vec![
                "CREATE TEMP TABLE syn_villages (rn INTEGER PRIMARY KEY, code TEXT NOT NULL)".into(),
                "INSERT INTO syn_villages (rn, code) SELECT ROW_NUMBER() OVER (ORDER BY code) - 1, \
                 code FROM areas WHERE level = 'village'"
                    .into(),
                format!(
                    "{series} INSERT INTO registry_households (id, registry_number, village_code, \
                     form_id, form_version, answers, status, version, created_at, updated_at) \
                     SELECT unhex(printf('d%031x', g)), 'HH-C' || g, {village}, \
                     'rw-socioeconomic', 1, '{{}}', 'active', 1, {t}, {t} FROM s WHERE g % 2 = 1"
                ),
                format!(
                    "{series} INSERT INTO registry_people (id, household_id, village_code, role, \
                     given_name, family_name, given_skel, family_skel, sex, birth_date, \
                     birth_registration, answers, version, created_at, updated_at) \
                     SELECT unhex(printf('c%031x', g)), unhex(printf('d%031x', g - 1 + g % 2)), \
                     {village}, 'child', 'Child' || g, 'Family' || g, 'c', 'f', \
                     CASE WHEN g % 2 = 0 THEN 'F' ELSE 'M' END, {birth}, \
                     CASE WHEN g % 5 = 0 THEN NULL ELSE 'BR-' || g END, '{{}}', 1, {t}, {t} FROM s"
                ),
                format!(
                    "{series}, d(vaccine, dose, age) AS (VALUES {DOSES}) \
                     INSERT INTO child_immunizations (id, person_id, source_system, source_id, \
                     vaccine_system, vaccine_code, vaccine, needs_mapping, dose_number, \
                     occurred_on, received_at, received_by) \
                     SELECT randomblob(16), unhex(printf('c%031x', g)), 'synthetic', \
                     g || '/' || d.vaccine || d.dose, 'http://hl7.org/fhir/sid/cvx', '0', \
                     d.vaccine, 0, d.dose, date({birth}, '+' || d.age || ' days'), {t}, 'seed' \
                     FROM s JOIN d ON date({birth}, '+' || d.age || ' days') <= date('now') \
                     WHERE (g * 31 + d.age * 17 + d.dose) % 10 <> 0"
                ),
                format!(
                    "{series}, v(ago) AS (VALUES {VISITS}), k(kind) AS (VALUES ('weight'), ('len')) \
                     INSERT INTO child_measurements (id, person_id, source_system, source_id, \
                     kind, loinc, value, unit, measured_on, zscores, received_at, received_by) \
                     SELECT randomblob(16), unhex(printf('c%031x', g)), 'synthetic', \
                     g || '/' || v.ago || k.kind, \
                     CASE WHEN k.kind = 'weight' THEN 'weight' \
                          WHEN ((g * 7919) % 2190) - v.ago < 730 THEN 'length' ELSE 'height' END, \
                     CASE WHEN k.kind = 'weight' THEN '29463-7' \
                          WHEN ((g * 7919) % 2190) - v.ago < 730 THEN '8306-3' ELSE '8302-2' END, \
                     round((CASE WHEN k.kind = 'weight' \
                       THEN 3.3 + min(((g * 7919) % 2190) - v.ago, 365) * 0.018 \
                            + max(((g * 7919) % 2190) - v.ago - 365, 0) * 0.0055 \
                       ELSE 50 + min(((g * 7919) % 2190) - v.ago, 365) * 0.068 \
                            + max(((g * 7919) % 2190) - v.ago - 365, 0) * 0.022 END) \
                       * (0.86 + (g % 23) * 0.012), 1), \
                     CASE WHEN k.kind = 'weight' THEN 'kg' ELSE 'cm' END, \
                     date('now', '-' || v.ago || ' days'), '{{}}', {t}, 'seed' \
                     FROM s JOIN v ON ((g * 7919) % 2190) > v.ago JOIN k"
                ),
            ]
        }
        BackendKind::Postgres => {
            let series = "generate_series(1, $1) g";
            let village = "(SELECT code FROM syn_villages WHERE rn = g % (SELECT count(*) FROM syn_villages))";
            let age = "((g::bigint * 7919) % 2190)::int";
            let birth = format!("(current_date - {age})");
            vec![
                "CREATE TEMP TABLE syn_villages (rn BIGINT PRIMARY KEY, code TEXT NOT NULL) \
                 ON COMMIT DROP"
                    .into(),
                "INSERT INTO syn_villages (rn, code) SELECT ROW_NUMBER() OVER (ORDER BY code) - 1, \
                 code FROM areas WHERE level = 'village'"
                    .into(),
                format!(
                    "INSERT INTO registry_households (id, registry_number, village_code, form_id, \
                     form_version, answers, status, version, created_at, updated_at) \
                     SELECT md5('d' || g)::uuid, 'HH-C' || g, {village}, 'rw-socioeconomic', 1, \
                     '{{}}'::jsonb, 'active', 1, now(), now() FROM {series} WHERE g % 2 = 1"
                ),
                format!(
                    "INSERT INTO registry_people (id, household_id, village_code, role, \
                     given_name, family_name, given_skel, family_skel, sex, birth_date, \
                     birth_registration, answers, version, created_at, updated_at) \
                     SELECT md5('c' || g)::uuid, md5('d' || (g - 1 + g % 2))::uuid, {village}, \
                     'child', 'Child' || g, 'Family' || g, 'c', 'f', \
                     CASE WHEN g % 2 = 0 THEN 'F' ELSE 'M' END, {birth}::text, \
                     CASE WHEN g % 5 = 0 THEN NULL ELSE 'BR-' || g END, '{{}}'::jsonb, 1, now(), \
                     now() FROM {series}"
                ),
                format!(
                    "INSERT INTO child_immunizations (id, person_id, source_system, source_id, \
                     vaccine_system, vaccine_code, vaccine, needs_mapping, dose_number, \
                     occurred_on, received_at, received_by) \
                     SELECT gen_random_uuid(), md5('c' || g)::uuid, 'synthetic', \
                     g || '/' || d.vaccine || d.dose, 'http://hl7.org/fhir/sid/cvx', '0', \
                     d.vaccine, false, d.dose, {birth} + d.age, now(), 'seed' \
                     FROM {series} JOIN (VALUES {DOSES}) AS d(vaccine, dose, age) \
                     ON {birth} + d.age <= current_date \
                     WHERE (g::bigint * 31 + d.age * 17 + d.dose) % 10 <> 0"
                ),
                format!(
                    "INSERT INTO child_measurements (id, person_id, source_system, source_id, \
                     kind, loinc, value, unit, measured_on, zscores, received_at, received_by) \
                     SELECT gen_random_uuid(), md5('c' || g)::uuid, 'synthetic', \
                     g || '/' || v.ago || k.kind, \
                     CASE WHEN k.kind = 'weight' THEN 'weight' \
                          WHEN {age} - v.ago < 730 THEN 'length' ELSE 'height' END, \
                     CASE WHEN k.kind = 'weight' THEN '29463-7' \
                          WHEN {age} - v.ago < 730 THEN '8306-3' ELSE '8302-2' END, \
                     round(((CASE WHEN k.kind = 'weight' \
                       THEN 3.3 + least({age} - v.ago, 365) * 0.018 \
                            + greatest({age} - v.ago - 365, 0) * 0.0055 \
                       ELSE 50 + least({age} - v.ago, 365) * 0.068 \
                            + greatest({age} - v.ago - 365, 0) * 0.022 END) \
                       * (0.86 + (g % 23) * 0.012))::numeric, 1)::float8, \
                     CASE WHEN k.kind = 'weight' THEN 'kg' ELSE 'cm' END, \
                     current_date - v.ago, '{{}}'::jsonb, now(), 'seed' \
                     FROM {series} JOIN (VALUES {VISITS}) AS v(ago) ON {age} > v.ago \
                     CROSS JOIN (VALUES ('weight'), ('len')) AS k(kind)"
                ),
            ]
        }
    }
}

/// Writes `children` synthetic children (and their households and facts) in SQL; the areas
/// must be loaded (`migrate` does it). Returns the seconds taken.
pub async fn seed_children(store: &Store, children: i64) -> StoreResult<f64> {
    let started = Instant::now();
    let mut uow = store.begin().await?;
    let existing: i64 = on_uow!(uow, |c| {
        sqlx::query_scalar("SELECT count(*) FROM registry_people")
            .fetch_one(&mut *c)
            .await?
    });
    if existing > 0 {
        return Err(StoreError::Invalid(format!(
            "the registry already holds {existing} people: seed an empty database"
        )));
    }
    for sql in statements(store.kind()) {
        on_uow!(uow, |c| {
            let q = sqlx::query(&sql);
            let q = if sql.contains("$1") {
                q.bind(children)
            } else {
                q
            };
            q.execute(&mut *c).await?;
        });
    }
    if store.kind() == BackendKind::Sqlite {
        on_uow!(uow, |c| {
            sqlx::query("DROP TABLE syn_villages")
                .execute(&mut *c)
                .await?;
        });
    }
    // Written without registry events: the targeting facts blocks must be rebuilt.
    crate::targeting_facts::invalidate(&mut uow).await?;
    uow.commit().await?;
    Ok(started.elapsed().as_secs_f64())
}
