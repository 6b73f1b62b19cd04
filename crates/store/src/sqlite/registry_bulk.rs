//! Bulk registry loads and exports on SQLite: multi-row INSERTs through cached prepared
//! statements on the single writer connection, one transaction per batch.

use std::collections::HashSet;
use std::sync::OnceLock;

use chrono::Utc;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use super::ts::ts;
use super::SqliteAdapter;
use crate::registry::{name_skeletons, EventMeta, NewHousehold};
use crate::registry_bulk::{
    answers_text, plan_batch, registered_after, split_phones, BatchKeys, BatchOutcome, BulkLoad,
    ExistingKeys, ExportHousehold, ExportMember, RegistryBulk, REGISTRY_INDEXES,
};
use crate::StoreResult;

/// Rows per INSERT statement. 25 values per person row × 400 = 10,000 bound values, well under
/// SQLite's 32,766; larger statements gain nothing measurable.
const ROWS_PER_STATEMENT: usize = 400;

const HOUSEHOLD_COLS: &str = "id, registry_number, village_code, address, gps_lat, gps_lon, \
    form_id, form_version, answers, status, source_key, version, created_at, updated_at";
const HOUSEHOLD_ROW: &str = "(?,?,?,?,?,?,?,?,?,'active',?,1,?,?)";

const PEOPLE_COLS: &str = "id, household_id, village_code, role, member_since, given_name, \
    family_name, given_skel, family_skel, sex, birth_date, national_id, birth_registration, \
    refugee_id, passport, phone, other_phones, mother_id, father_id, guardian_id, answers, \
    source_key, version, created_at, updated_at";
const PEOPLE_ROW: &str = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1,?,?)";

const EVENT_COLS: &str =
    "id, household_id, entity, entity_id, kind, at, actor, channel, reason, change_request_id, after";
const EVENT_ROW: &str = "(?,?,'household',?,'household.registered',?,?,?,?,?,?)";

/// `INSERT INTO table (cols) VALUES row, row, …` with `rows` rows.
fn insert_sql(table: &str, cols: &str, row: &str, rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({cols}) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(row);
    }
    sql
}

/// The full-size statement text is built once; the statement cache then reuses its plan.
fn full_sql(cell: &'static OnceLock<String>, table: &str, cols: &str, row: &str) -> &'static str {
    cell.get_or_init(|| insert_sql(table, cols, row, ROWS_PER_STATEMENT))
}

fn sql_for(
    cell: &'static OnceLock<String>,
    table: &str,
    cols: &str,
    row: &str,
    n: usize,
) -> String {
    if n == ROWS_PER_STATEMENT {
        full_sql(cell, table, cols, row).to_string()
    } else {
        insert_sql(table, cols, row, n)
    }
}

/// Which of `values` are stored in `table.col`: one statement per kind, the list passed as a
/// JSON array so the statement text (and its cached plan) does not depend on the batch size.
async fn existing(
    conn: &mut SqliteConnection,
    table: &str,
    col: &str,
    values: &[String],
) -> StoreResult<HashSet<String>> {
    if values.is_empty() {
        return Ok(HashSet::new());
    }
    let list =
        serde_json::to_string(values).map_err(|e| crate::StoreError::Invalid(e.to_string()))?;
    let sql = format!(
        "SELECT {col} FROM {table} WHERE {col} IS NOT NULL AND {col} IN (SELECT value FROM json_each(?))"
    );
    let rows: Vec<(String,)> = sqlx::query_as(&sql)
        .bind(list)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(|(v,)| v).collect())
}

async fn existing_keys(
    conn: &mut SqliteConnection,
    keys: &BatchKeys,
    load: &BulkLoad,
) -> StoreResult<ExistingKeys> {
    let (registry_numbers, national_ids) = match load.stored_keys(keys) {
        Some(found) => found,
        None => (
            existing(
                conn,
                "registry_households",
                "registry_number",
                &keys.registry_numbers,
            )
            .await?,
            existing(conn, "registry_people", "national_id", &keys.national_ids).await?,
        ),
    };
    Ok(ExistingKeys {
        household_sources: existing(
            conn,
            "registry_households",
            "source_key",
            &keys.household_sources,
        )
        .await?,
        registry_numbers,
        national_ids,
        member_sources: existing(conn, "registry_people", "source_key", &keys.member_sources)
            .await?,
    })
}

/// Runs each statement on `conn`.
async fn run_all(conn: &mut SqliteConnection, sqls: &[&str]) -> StoreResult<()> {
    for sql in sqls {
        sqlx::query(sql).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_households(
    conn: &mut SqliteConnection,
    rows: &[&NewHousehold],
    now: &str,
) -> StoreResult<()> {
    static FULL: OnceLock<String> = OnceLock::new();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = sql_for(
            &FULL,
            "registry_households",
            HOUSEHOLD_COLS,
            HOUSEHOLD_ROW,
            chunk.len(),
        );
        let mut q = sqlx::query(&sql);
        for h in chunk {
            let answers = answers_text(&h.input.answers);
            q = q
                .bind(h.id)
                .bind(h.registry_number.as_str())
                .bind(h.input.village.as_str())
                .bind(h.input.address.as_deref())
                .bind(h.input.gps.map(|g| g.lat))
                .bind(h.input.gps.map(|g| g.lon))
                .bind(h.form_id.as_str())
                .bind(h.form_version as i64)
                .bind(answers)
                .bind(h.source_key.as_deref())
                .bind(now)
                .bind(now);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_people(
    conn: &mut SqliteConnection,
    rows: &[&NewHousehold],
    now: &str,
) -> StoreResult<()> {
    static FULL: OnceLock<String> = OnceLock::new();
    let members: Vec<(&NewHousehold, &crate::registry::NewMember)> = rows
        .iter()
        .flat_map(|h| h.members.iter().map(move |m| (*h, m)))
        .collect();
    for chunk in members.chunks(ROWS_PER_STATEMENT) {
        let sql = sql_for(
            &FULL,
            "registry_people",
            PEOPLE_COLS,
            PEOPLE_ROW,
            chunk.len(),
        );
        let mut q = sqlx::query(&sql);
        for (h, m) in chunk {
            let p = &m.person;
            let (given_skel, family_skel) = name_skeletons(p);
            let (phone, other_phones) = split_phones(m);
            let answers = answers_text(&p.answers);
            q = q
                .bind(m.id)
                .bind(h.id)
                .bind(h.input.village.as_str())
                .bind(m.role.as_str())
                .bind(m.since.to_string())
                .bind(p.given_name.as_str())
                .bind(p.family_name.as_str())
                .bind(given_skel)
                .bind(family_skel)
                .bind(p.sex.as_str())
                .bind(p.birth_date.map(|b| b.to_string()))
                .bind(p.national_id.as_ref().map(|i| i.as_str()))
                .bind(p.birth_registration.as_deref())
                .bind(p.refugee_id.as_deref())
                .bind(p.passport.as_deref())
                .bind(phone)
                .bind(other_phones)
                .bind(m.mother_id)
                .bind(m.father_id)
                .bind(m.guardian_id)
                .bind(answers)
                .bind(m.source_key.as_deref())
                .bind(now)
                .bind(now);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_events(
    conn: &mut SqliteConnection,
    rows: &[&NewHousehold],
    meta: &EventMeta,
) -> StoreResult<()> {
    static FULL: OnceLock<String> = OnceLock::new();
    let at = ts(meta.at);
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = sql_for(&FULL, "registry_events", EVENT_COLS, EVENT_ROW, chunk.len());
        let mut q = sqlx::query(&sql);
        for h in chunk {
            q = q
                .bind(Uuid::now_v7())
                .bind(h.id)
                .bind(h.id)
                .bind(at.as_str())
                .bind(meta.actor.as_str())
                .bind(meta.channel.as_str())
                .bind(meta.reason.as_deref())
                .bind(meta.change_request_id)
                .bind(registered_after(h));
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

fn export_household(r: SqliteRow) -> StoreResult<ExportHousehold> {
    Ok(ExportHousehold {
        id: r.try_get("id")?,
        registry_number: r.try_get("registry_number")?,
        village_code: r.try_get("village_code")?,
        address: r.try_get("address")?,
        gps_lat: r.try_get("gps_lat")?,
        gps_lon: r.try_get("gps_lon")?,
        answers: r.try_get("answers")?,
        source_key: r.try_get("source_key")?,
    })
}

fn export_member(r: SqliteRow) -> StoreResult<ExportMember> {
    Ok(ExportMember {
        id: r.try_get("id")?,
        household_id: r.try_get("household_id")?,
        role: r.try_get("role")?,
        given_name: r.try_get("given_name")?,
        family_name: r.try_get("family_name")?,
        sex: r.try_get("sex")?,
        birth_date: r.try_get("birth_date")?,
        national_id: r.try_get("national_id")?,
        birth_registration: r.try_get("birth_registration")?,
        refugee_id: r.try_get("refugee_id")?,
        passport: r.try_get("passport")?,
        phone: r.try_get("phone")?,
        other_phones: r.try_get("other_phones")?,
        mother_id: r.try_get("mother_id")?,
        father_id: r.try_get("father_id")?,
        guardian_id: r.try_get("guardian_id")?,
        answers: r.try_get("answers")?,
        source_key: r.try_get("source_key")?,
    })
}

fn uuid_list(ids: &[Uuid]) -> String {
    let hex: Vec<String> = ids.iter().map(|i| i.simple().to_string()).collect();
    serde_json::Value::from(hex).to_string()
}

#[async_trait::async_trait]
impl RegistryBulk for SqliteAdapter {
    async fn import_batch(
        &self,
        batch: &[NewHousehold],
        meta: &EventMeta,
        load: &mut BulkLoad,
    ) -> StoreResult<BatchOutcome> {
        let keys = BatchKeys::of(batch);
        let mut tx = self.write.begin().await?;
        let found = existing_keys(&mut tx, &keys, load).await?;
        let (write, outcome) = plan_batch(batch, &found);
        let rows: Vec<&NewHousehold> = write.iter().map(|&i| &batch[i]).collect();
        let now = ts(Utc::now());
        insert_households(&mut tx, &rows, &now).await?;
        insert_people(&mut tx, &rows, &now).await?;
        insert_events(&mut tx, &rows, meta).await?;
        tx.commit().await?;
        load.committed(batch, &write);
        Ok(outcome)
    }

    async fn begin_bulk_load(&self, defer_indexes: bool) -> StoreResult<BulkLoad> {
        let mut conn = self.write.acquire().await?;
        let any: Option<(i64,)> = sqlx::query_as("SELECT 1 FROM registry_households LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
        // Checkpoint every 64 MiB of WAL instead of 4 MiB: pages written by consecutive
        // batches (the right edges of the tables and indexes) are copied back once, not per
        // batch. A bigger page cache: an incremental load probes the unique indexes at random.
        run_all(
            &mut conn,
            &[
                "PRAGMA wal_autocheckpoint = 16384",
                "PRAGMA cache_size = -262144",
            ],
        )
        .await?;
        if any.is_some() || !defer_indexes {
            drop(conn);
            self.ensure_indexes().await?;
            return Ok(BulkLoad::incremental());
        }
        for ix in REGISTRY_INDEXES.iter().filter(|ix| ix.deferred) {
            sqlx::query(&format!("DROP INDEX IF EXISTS {}", ix.name))
                .execute(&mut *conn)
                .await?;
        }
        Ok(BulkLoad::fresh())
    }

    async fn finish_bulk_load(&self, _load: BulkLoad) -> StoreResult<()> {
        let mut conn = self.write.acquire().await?;
        // Index builds sort through temporary files, not memory (the connection's default
        // temp_store), with a bounded cache, so building an index over 14 M rows stays within
        // a few hundred MiB; two sorter threads use both cores.
        run_all(
            &mut conn,
            &[
                "PRAGMA temp_store = FILE",
                "PRAGMA cache_size = -131072",
                "PRAGMA threads = 2",
            ],
        )
        .await?;
        drop(conn);
        let built = self.ensure_indexes().await;
        let mut conn = self.write.acquire().await?;
        run_all(
            &mut conn,
            &[
                "PRAGMA threads = 0",
                "PRAGMA temp_store = MEMORY",
                "PRAGMA cache_size = -65536",
                "PRAGMA wal_autocheckpoint = 1000",
            ],
        )
        .await?;
        built
    }

    async fn ensure_indexes(&self) -> StoreResult<()> {
        let mut conn = self.write.acquire().await?;
        for ix in REGISTRY_INDEXES {
            sqlx::query(&ix.create_sql()).execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn export_households(
        &self,
        area: &str,
        after: Option<(String, Uuid)>,
        limit: u32,
    ) -> StoreResult<Vec<ExportHousehold>> {
        let (lo, hi) = crate::registry::area_range(area);
        let (after_code, after_id) = after.unwrap_or((String::new(), Uuid::nil()));
        let rows = sqlx::query(
            "SELECT id, registry_number, village_code, address, gps_lat, gps_lon, answers, \
             source_key FROM registry_households \
             WHERE village_code >= ?1 AND village_code < ?2 AND status = 'active' \
               AND (village_code, id) > (?3, ?4) \
             ORDER BY village_code, id LIMIT ?5",
        )
        .bind(lo)
        .bind(hi)
        .bind(after_code)
        .bind(after_id)
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await?;
        rows.into_iter().map(export_household).collect()
    }

    async fn export_members(&self, households: &[Uuid]) -> StoreResult<Vec<ExportMember>> {
        if households.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT id, household_id, role, given_name, family_name, sex, birth_date, national_id, \
             birth_registration, refugee_id, passport, phone, other_phones, mother_id, father_id, \
             guardian_id, answers, source_key FROM registry_people \
             WHERE household_id IN (SELECT unhex(value) FROM json_each(?1)) \
             ORDER BY household_id, id",
        )
        .bind(uuid_list(households))
        .fetch_all(&self.read)
        .await?;
        rows.into_iter().map(export_member).collect()
    }

    async fn people_source_keys(&self, ids: &[Uuid]) -> StoreResult<Vec<(Uuid, Option<String>)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(Uuid, Option<String>)> = sqlx::query_as(
            "SELECT id, source_key FROM registry_people \
             WHERE id IN (SELECT unhex(value) FROM json_each(?1))",
        )
        .bind(uuid_list(ids))
        .fetch_all(&self.read)
        .await?;
        Ok(rows)
    }
}
