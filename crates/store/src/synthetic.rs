//! A synthetic registry written straight in SQL, for benchmarks of whole-registry passes at
//! national size (3.2 million households take an hour through `inkingi import`; this takes
//! minutes). Households spread over one village of each of the 30 districts, with 1 to 8
//! members of every age and questionnaire answers varied across the form's choices, so scores
//! and rules see realistic variety; one in ten households is enrolled in `vup_ds`.
//! Refuses a database that already holds households.

use std::time::Instant;

use crate::{BackendKind, Store, StoreError, StoreResult};

/// One village of each district, 8 digits each.
const VILLAGES: &str = "110101021201010113010101210101012201010123010101240101012501010126010101\
270101012801010131010101320101013301010134010101350101013601010137010101410101014201010143010101\
440101014501010151010101520101015301010154010101550101015601010157010101";

/// Choice lists of the household section (the shipped form's keys and choices).
const CHOICES: [(&str, &[&str], u64); 8] = [
    (
        "tenure",
        &["homeless", "free_lodging", "rented", "owner", "owner"],
        7,
    ),
    (
        "wall",
        &[
            "grass_or_leaves",
            "mud_and_wood",
            "mud_bricks",
            "sun_dried_bricks_cement",
            "burnt_bricks",
            "cement_blocks",
        ],
        11,
    ),
    (
        "roof",
        &[
            "grass_or_leaves",
            "tins_or_plastic",
            "local_tiles",
            "iron_sheets",
            "industrial_tiles",
            "concrete",
        ],
        13,
    ),
    (
        "floor",
        &["earth", "earth", "wood_planks", "cement", "tiles"],
        17,
    ),
    (
        "water_source",
        &[
            "surface_water",
            "unprotected_spring",
            "protected_spring",
            "public_tap",
            "piped_in_yard",
            "piped_in_dwelling",
        ],
        19,
    ),
    (
        "toilet",
        &[
            "none",
            "pit_latrine_no_slab",
            "pit_latrine_slab",
            "improved_ventilated",
            "flush",
        ],
        23,
    ),
    (
        "lighting",
        &[
            "none",
            "firewood",
            "candle",
            "lantern_or_kerosene",
            "torch_or_battery",
            "solar",
            "grid_electricity",
        ],
        29,
    ),
    (
        "cooking_fuel",
        &[
            "crop_residue",
            "firewood",
            "firewood",
            "charcoal",
            "gas",
            "electricity",
        ],
        31,
    ),
];

const ASSETS: [&str; 8] = [
    "radio",
    "mobile_phone",
    "bicycle",
    "television",
    "sofa_set",
    "motorcycle",
    "refrigerator",
    "computer",
];

fn pick(kind: BackendKind, list: &[&str], expr: &str) -> String {
    let n = list.len();
    match kind {
        BackendKind::Sqlite => {
            let items: Vec<String> = list.iter().map(|s| format!("\"{s}\"")).collect();
            format!(
                "json_extract('[{}]', '$[' || (({expr}) % {n}) || ']')",
                items.join(",")
            )
        }
        BackendKind::Postgres => {
            let items: Vec<String> = list.iter().map(|s| format!("'{s}'")).collect();
            format!("(ARRAY[{}])[1 + (({expr}) % {n})::int]", items.join(","))
        }
    }
}

fn answers_sql(kind: BackendKind) -> String {
    let (object, array) = match kind {
        BackendKind::Sqlite => ("json_object", "json_array"),
        BackendKind::Postgres => ("jsonb_build_object", "jsonb_build_array"),
    };
    let mut parts: Vec<String> = CHOICES
        .iter()
        .map(|(key, list, m)| format!("'{key}', {}", pick(kind, list, &format!("g * {m} / 3"))))
        .collect();
    parts.push(format!(
        "'assets', {array}({}, {})",
        pick(kind, &ASSETS[..3], "g * 37"),
        pick(kind, &ASSETS, "g * 41 / 5")
    ));
    parts.push(format!(
        "'income_sources', {array}({})",
        pick(
            kind,
            &[
                "farming",
                "casual_farm_labour",
                "livestock",
                "remittances",
                "none"
            ],
            "g * 43"
        )
    ));
    parts.push("'rooms', 1 + (g * 3) % 5".into());
    parts.push("'meals_per_day', 1 + (g * 5 / 7) % 3".into());
    parts.push("'hungry_months', (g * 47) % 5".into());
    parts.push("'monthly_income_rwf', (g * 7919) % 90000".into());
    format!("{object}({})", parts.join(", "))
}

fn statements(kind: BackendKind) -> [String; 3] {
    let answers = answers_sql(kind);
    // PostgreSQL has no substr(text, bigint, integer): the series is bigint there.
    let village = "substr('{VILLAGES}', CAST(1 + (g % 30) * 8 AS INTEGER), 8)"
        .replace("{VILLAGES}", VILLAGES);
    match kind {
        BackendKind::Sqlite => {
            let series = "WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < $1)";
            let t = "'2026-01-01T00:00:00Z'";
            [
                format!(
                    "{series} INSERT INTO registry_households (id, registry_number, village_code, \
                     form_id, form_version, answers, status, version, created_at, updated_at) \
                     SELECT unhex(printf('%032x', g)), 'HH-S' || g, {village}, 'rw-socioeconomic', \
                     1, {answers}, 'active', 1, {t}, {t} FROM s"
                ),
                format!(
                    "{series}, k(k) AS (VALUES (1), (2), (3), (4), (5), (6), (7), (8)) \
                     INSERT INTO registry_people (id, household_id, village_code, role, given_name, \
                     family_name, given_skel, family_skel, sex, birth_date, answers, version, \
                     created_at, updated_at) \
                     SELECT unhex(printf('%016x%016x', g, k)), unhex(printf('%032x', g)), {village}, \
                     CASE WHEN k = 1 THEN 'head' WHEN k = 2 THEN 'spouse' ELSE 'child' END, \
                     'Given' || k, 'Family' || g, 'g', 'f', CASE WHEN (g + k) % 2 = 0 THEN 'F' ELSE 'M' END, \
                     CASE WHEN k <= 2 THEN printf('%04d-%02d-15', 1946 + (g * 7 + k) % 60, 1 + (g + k) % 12) \
                     ELSE printf('%04d-%02d-15', 2008 + (g * 13 + k * 5) % 18, 1 + (g * k) % 12) END, \
                     CASE WHEN (g * k) % 9 = 0 THEN json_object('can_work', json('false'), 'chronic_illness', json('true')) \
                     ELSE '{{}}' END, 1, {t}, {t} FROM s JOIN k ON k.k <= 1 + (s.g * 7) % 8"
                ),
                format!(
                    "{series} INSERT INTO programme_enrolments (id, programme_code, household_id, \
                     subject_id, village_code, status, score, amount, decision, enrolled_since, \
                     version, created_at, updated_at) SELECT unhex(printf('e%031x', g)), 'vup_ds', \
                     unhex(printf('%032x', g)), unhex(printf('%032x', g)), {village}, 'enrolled', 30, \
                     0, 'synthetic', {t}, 1, {t}, {t} FROM s WHERE g % 10 = 0"
                ),
            ]
        }
        BackendKind::Postgres => [
            format!(
                "INSERT INTO registry_households (id, registry_number, village_code, form_id, \
                 form_version, answers, status, version, created_at, updated_at) \
                 SELECT md5('h' || g)::uuid, 'HH-S' || g, {village}, 'rw-socioeconomic', 1, \
                 {answers}, 'active', 1, now(), now() FROM generate_series(1, $1) g"
            ),
            format!(
                "INSERT INTO registry_people (id, household_id, village_code, role, given_name, \
                 family_name, given_skel, family_skel, sex, birth_date, answers, version, \
                 created_at, updated_at) \
                 SELECT md5('p' || g || '-' || k)::uuid, md5('h' || g)::uuid, {village}, \
                 CASE WHEN k = 1 THEN 'head' WHEN k = 2 THEN 'spouse' ELSE 'child' END, \
                 'Given' || k, 'Family' || g, 'g', 'f', CASE WHEN (g + k) % 2 = 0 THEN 'F' ELSE 'M' END, \
                 CASE WHEN k <= 2 THEN format('%s-%s-15', 1946 + (g * 7 + k) % 60, lpad((1 + (g + k) % 12)::text, 2, '0')) \
                 ELSE format('%s-%s-15', 2008 + (g * 13 + k * 5) % 18, lpad((1 + (g * k) % 12)::text, 2, '0')) END, \
                 CASE WHEN (g * k) % 9 = 0 THEN jsonb_build_object('can_work', false, 'chronic_illness', true) \
                 ELSE '{{}}'::jsonb END, 1, now(), now() \
                 FROM generate_series(1, $1) g, generate_series(1, 8) k WHERE k <= 1 + (g * 7) % 8"
            ),
            format!(
                "INSERT INTO programme_enrolments (id, programme_code, household_id, subject_id, \
                 village_code, status, score, amount, decision, enrolled_since, version, \
                 created_at, updated_at) SELECT md5('e' || g)::uuid, 'vup_ds', md5('h' || g)::uuid, \
                 md5('h' || g)::uuid, {village}, 'enrolled', 30, 0, 'synthetic', now(), 1, now(), \
                 now() FROM generate_series(1, $1) g WHERE g % 10 = 0"
            ),
        ],
    }
}

/// Writes `households` synthetic households (and their members and enrolments) in SQL; the
/// programme `vup_ds` must exist. Returns the seconds taken.
pub async fn seed(store: &Store, households: i64) -> StoreResult<f64> {
    let started = Instant::now();
    let kind = store.kind();
    let mut uow = store.begin().await?;
    let existing: i64 = crate::shared_sql::on_uow!(uow, |c| {
        sqlx::query_scalar("SELECT count(*) FROM registry_households")
            .fetch_one(&mut *c)
            .await?
    });
    if existing > 0 {
        return Err(StoreError::Invalid(format!(
            "the registry already holds {existing} households: seed an empty database"
        )));
    }
    for sql in statements(kind) {
        crate::shared_sql::on_uow!(uow, |c| {
            sqlx::query(&sql).bind(households).execute(&mut *c).await?;
        });
    }
    // Written without registry events: the facts blocks must be rebuilt from the tables.
    crate::targeting_facts::invalidate(&mut uow).await?;
    uow.commit().await?;
    Ok(started.elapsed().as_secs_f64())
}
