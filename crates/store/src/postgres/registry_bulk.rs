//! Bulk registry loads and exports on PostgreSQL. A batch is one transaction: one query per
//! key kind for the conflict checks, then one `COPY … FROM STDIN` (text format) per table,
//! the fastest way into PostgreSQL short of writing its files.

use std::collections::HashSet;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::PgAdapter;
use crate::registry::{name_skeletons, EventMeta, NewHousehold};
use crate::registry_bulk::{
    answers_text, plan_batch, registered_after, split_phones, BatchKeys, BatchOutcome, BulkLoad,
    ExistingKeys, ExportHousehold, ExportMember, RegistryBulk, REGISTRY_INDEXES,
};
use crate::StoreResult;

async fn existing(
    conn: &mut PgConnection,
    table: &str,
    col: &str,
    values: &[String],
) -> StoreResult<HashSet<String>> {
    if values.is_empty() {
        return Ok(HashSet::new());
    }
    let sql = format!("SELECT {col} FROM {table} WHERE {col} = ANY($1)");
    let rows: Vec<(String,)> = sqlx::query_as(&sql)
        .bind(values)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(|(v,)| v).collect())
}

async fn existing_keys(
    conn: &mut PgConnection,
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

/// Rows in COPY's text format: tab-separated columns, `\N` for NULL, backslash escapes.
struct CopyText {
    buf: String,
    /// No column written yet on the current row.
    fresh_row: bool,
}

impl CopyText {
    fn new() -> CopyText {
        CopyText {
            buf: String::with_capacity(1 << 20),
            fresh_row: true,
        }
    }

    fn sep(&mut self) {
        if self.fresh_row {
            self.fresh_row = false;
        } else {
            self.buf.push('\t');
        }
    }

    fn text(&mut self, s: &str) -> &mut Self {
        self.sep();
        for c in s.chars() {
            match c {
                '\\' => self.buf.push_str("\\\\"),
                '\t' => self.buf.push_str("\\t"),
                '\n' => self.buf.push_str("\\n"),
                '\r' => self.buf.push_str("\\r"),
                c => self.buf.push(c),
            }
        }
        self
    }

    fn opt(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.text(s),
            None => {
                self.sep();
                self.buf.push_str("\\N");
                self
            }
        }
    }

    /// A value whose text form needs no escaping (numbers, UUIDs, dates).
    fn plain(&mut self, v: impl std::fmt::Display) -> &mut Self {
        self.sep();
        let _ = write!(self.buf, "{v}");
        self
    }

    fn plain_opt(&mut self, v: Option<impl std::fmt::Display>) -> &mut Self {
        match v {
            Some(v) => self.plain(v),
            None => self.opt(None),
        }
    }

    fn end_row(&mut self) {
        self.buf.push('\n');
        self.fresh_row = true;
    }
}

/// `COPY table (cols) FROM STDIN` with `data` (whole rows).
async fn copy_in(
    conn: &mut PgConnection,
    table: &str,
    cols: &str,
    data: CopyText,
) -> StoreResult<()> {
    if data.buf.is_empty() {
        return Ok(());
    }
    let mut copy = conn
        .copy_in_raw(&format!("COPY {table} ({cols}) FROM STDIN"))
        .await?;
    // CopyData messages of at most 1 MiB, cut at row ends.
    let bytes = data.buf.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let mut end = (start + (1 << 20)).min(bytes.len());
        while end < bytes.len() && bytes[end - 1] != b'\n' {
            end += 1;
        }
        copy.send(&bytes[start..end]).await?;
        start = end;
    }
    copy.finish().await?;
    Ok(())
}

/// Timestamps with microseconds (PostgreSQL's precision, truncated as the binary encoding of
/// a bound parameter is).
fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

async fn insert_households(
    conn: &mut PgConnection,
    rows: &[&NewHousehold],
    now: &str,
) -> StoreResult<()> {
    let mut c = CopyText::new();
    for h in rows {
        let answers = answers_text(&h.input.answers);
        c.plain(h.id.hyphenated())
            .text(h.registry_number.as_str())
            .text(h.input.village.as_str())
            .opt(h.input.address.as_deref())
            .plain_opt(h.input.gps.map(|g| g.lat))
            .plain_opt(h.input.gps.map(|g| g.lon))
            .text(&h.form_id)
            .plain(h.form_version)
            .text(&answers)
            .text("active")
            .opt(h.source_key.as_deref())
            .plain(1)
            .text(now)
            .text(now)
            .end_row();
    }
    copy_in(
        conn,
        "registry_households",
        "id, registry_number, village_code, address, gps_lat, gps_lon, form_id, form_version, \
         answers, status, source_key, version, created_at, updated_at",
        c,
    )
    .await
}

async fn insert_people(
    conn: &mut PgConnection,
    rows: &[&NewHousehold],
    now: &str,
) -> StoreResult<()> {
    let mut c = CopyText::new();
    for h in rows {
        for m in &h.members {
            let p = &m.person;
            let (gs, fs) = name_skeletons(p);
            let (phone, others) = split_phones(m);
            let answers = answers_text(&p.answers);
            c.plain(m.id.hyphenated())
                .plain(h.id.hyphenated())
                .text(h.input.village.as_str())
                .text(m.role.as_str())
                .plain(m.since)
                .text(p.given_name.as_str())
                .text(p.family_name.as_str())
                .text(&gs)
                .text(&fs)
                .text(p.sex.as_str())
                .plain_opt(p.birth_date.as_ref())
                .opt(p.national_id.as_ref().map(|i| i.as_str()))
                .opt(p.birth_registration.as_deref())
                .opt(p.refugee_id.as_deref())
                .opt(p.passport.as_deref())
                .opt(phone.as_deref())
                .opt(others.as_deref())
                .plain_opt(m.mother_id.map(|u| u.hyphenated()))
                .plain_opt(m.father_id.map(|u| u.hyphenated()))
                .plain_opt(m.guardian_id.map(|u| u.hyphenated()))
                .text(&answers)
                .opt(m.source_key.as_deref())
                .plain(1)
                .text(now)
                .text(now)
                .end_row();
        }
    }
    copy_in(
        conn,
        "registry_people",
        "id, household_id, village_code, role, member_since, given_name, family_name, \
         given_skel, family_skel, sex, birth_date, national_id, birth_registration, refugee_id, \
         passport, phone, other_phones, mother_id, father_id, guardian_id, answers, source_key, \
         version, created_at, updated_at",
        c,
    )
    .await
}

async fn insert_events(
    conn: &mut PgConnection,
    rows: &[&NewHousehold],
    meta: &EventMeta,
) -> StoreResult<()> {
    let at = ts(meta.at);
    let mut c = CopyText::new();
    for h in rows {
        c.plain(Uuid::now_v7().hyphenated())
            .plain(h.id.hyphenated())
            .text("household")
            .plain(h.id.hyphenated())
            .text("household.registered")
            .text(&at)
            .text(meta.actor.as_str())
            .text(meta.channel.as_str())
            .opt(meta.reason.as_deref())
            .plain_opt(meta.change_request_id.map(|u| u.hyphenated()))
            .text(&registered_after(h))
            .end_row();
    }
    copy_in(
        conn,
        "registry_events",
        "id, household_id, entity, entity_id, kind, at, actor, channel, reason, \
         change_request_id, after",
        c,
    )
    .await
}

fn export_household(r: PgRow) -> StoreResult<ExportHousehold> {
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

fn export_member(r: PgRow) -> StoreResult<ExportMember> {
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

#[async_trait::async_trait]
impl RegistryBulk for PgAdapter {
    async fn import_batch(
        &self,
        batch: &[NewHousehold],
        meta: &EventMeta,
        load: &mut BulkLoad,
    ) -> StoreResult<BatchOutcome> {
        let keys = BatchKeys::of(batch);
        let mut tx = self.pool.begin().await?;
        // Not waiting for the WAL flush at each commit is safe here: a batch lost to a server
        // crash is simply not there on the next run, which imports it again (source keys).
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        let found = existing_keys(&mut tx, &keys, load).await?;
        let (write, outcome) = plan_batch(batch, &found);
        let rows: Vec<&NewHousehold> = write.iter().map(|&i| &batch[i]).collect();
        if !rows.is_empty() {
            let now = ts(Utc::now());
            insert_households(&mut tx, &rows, &now).await?;
            insert_people(&mut tx, &rows, &now).await?;
            insert_events(&mut tx, &rows, meta).await?;
        }
        tx.commit().await?;
        load.committed(batch, &write);
        Ok(outcome)
    }

    async fn begin_bulk_load(&self, defer_indexes: bool) -> StoreResult<BulkLoad> {
        let any: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM registry_households LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        if any.is_some() || !defer_indexes {
            self.ensure_indexes().await?;
            return Ok(BulkLoad::incremental());
        }
        for ix in REGISTRY_INDEXES.iter().filter(|ix| ix.deferred) {
            sqlx::query(&format!("DROP INDEX IF EXISTS {}", ix.name))
                .execute(&self.pool)
                .await?;
        }
        Ok(BulkLoad::fresh())
    }

    async fn finish_bulk_load(&self, _load: BulkLoad) -> StoreResult<()> {
        self.ensure_indexes().await
    }

    async fn ensure_indexes(&self) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        // Index builds sort in memory up to this much per build, then spill to disk.
        sqlx::query("SET maintenance_work_mem = '256MB'")
            .execute(&mut *conn)
            .await?;
        for ix in REGISTRY_INDEXES {
            sqlx::query(&ix.create_sql()).execute(&mut *conn).await?;
        }
        sqlx::query("RESET maintenance_work_mem")
            .execute(&mut *conn)
            .await?;
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
            "SELECT id, registry_number, village_code, address, gps_lat, gps_lon, \
             answers::text AS answers, source_key FROM registry_households \
             WHERE village_code >= $1 AND village_code < $2 AND status = 'active' \
               AND (village_code, id) > ($3, $4) \
             ORDER BY village_code, id LIMIT $5",
        )
        .bind(lo)
        .bind(hi)
        .bind(after_code)
        .bind(after_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
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
             guardian_id, answers::text AS answers, source_key FROM registry_people \
             WHERE household_id = ANY($1) ORDER BY household_id, id",
        )
        .bind(households)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(export_member).collect()
    }

    async fn people_source_keys(&self, ids: &[Uuid]) -> StoreResult<Vec<(Uuid, Option<String>)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(Uuid, Option<String>)> =
            sqlx::query_as("SELECT id, source_key FROM registry_people WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::CopyText;

    #[test]
    fn copy_text_escapes_and_marks_nulls() {
        let mut c = CopyText::new();
        c.text("a\tb\\c\nd\re")
            .opt(None)
            .plain(7)
            .plain_opt(None::<i32>);
        c.end_row();
        c.text("é").end_row();
        assert_eq!(c.buf, "a\\tb\\\\c\\nd\\re\t\\N\t7\t\\N\né\n");
    }
}
