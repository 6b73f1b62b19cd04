//! Bulk registry loads and exports on PostgreSQL: one `INSERT … SELECT FROM UNNEST(arrays)`
//! per table and batch, so a batch of thousands of rows is three round trips and three
//! statement plans that never change.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::PgAdapter;
use crate::registry::{name_skeletons, EventMeta, NewHousehold};
use crate::registry_bulk::{
    plan_batch, registered_after, split_phones, BatchKeys, BatchOutcome, ExistingKeys,
    ExportHousehold, ExportMember, RegistryBulk, SECONDARY_INDEXES,
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

async fn existing_keys(conn: &mut PgConnection, keys: &BatchKeys) -> StoreResult<ExistingKeys> {
    Ok(ExistingKeys {
        household_sources: existing(
            conn,
            "registry_households",
            "source_key",
            &keys.household_sources,
        )
        .await?,
        registry_numbers: existing(
            conn,
            "registry_households",
            "registry_number",
            &keys.registry_numbers,
        )
        .await?,
        national_ids: existing(conn, "registry_people", "national_id", &keys.national_ids).await?,
        member_sources: existing(conn, "registry_people", "source_key", &keys.member_sources)
            .await?,
    })
}

async fn insert_households(
    conn: &mut PgConnection,
    rows: &[&NewHousehold],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let n = rows.len();
    let mut id = Vec::with_capacity(n);
    let mut number = Vec::with_capacity(n);
    let mut village = Vec::with_capacity(n);
    let mut address = Vec::with_capacity(n);
    let mut lat = Vec::with_capacity(n);
    let mut lon = Vec::with_capacity(n);
    let mut form_id = Vec::with_capacity(n);
    let mut form_version = Vec::with_capacity(n);
    let mut answers = Vec::with_capacity(n);
    let mut source = Vec::with_capacity(n);
    for h in rows {
        id.push(h.id);
        number.push(h.registry_number.as_str().to_string());
        village.push(h.input.village.as_str().to_string());
        address.push(h.input.address.clone());
        lat.push(h.input.gps.map(|g| g.lat));
        lon.push(h.input.gps.map(|g| g.lon));
        form_id.push(h.form_id.clone());
        form_version.push(h.form_version as i32);
        answers.push(serde_json::Value::Object(h.input.answers.clone()).to_string());
        source.push(h.source_key.clone());
    }
    sqlx::query(
        "INSERT INTO registry_households (id, registry_number, village_code, address, gps_lat, \
         gps_lon, form_id, form_version, answers, status, source_key, version, created_at, \
         updated_at) \
         SELECT id, num, vil, addr, lat, lon, fid, fver, ans::jsonb, 'active', src, 1, $11, $11 \
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[], \
                     $7::text[], $8::int4[], $9::text[], $10::text[]) \
              AS t(id, num, vil, addr, lat, lon, fid, fver, ans, src)",
    )
    .bind(id)
    .bind(number)
    .bind(village)
    .bind(address)
    .bind(lat)
    .bind(lon)
    .bind(form_id)
    .bind(form_version)
    .bind(answers)
    .bind(source)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Column arrays of the people of a batch.
#[derive(Default)]
struct PeopleColumns {
    id: Vec<Uuid>,
    household: Vec<Uuid>,
    village: Vec<String>,
    role: Vec<String>,
    since: Vec<NaiveDate>,
    given: Vec<String>,
    family: Vec<String>,
    given_skel: Vec<String>,
    family_skel: Vec<String>,
    sex: Vec<String>,
    birth: Vec<Option<String>>,
    national_id: Vec<Option<String>>,
    birth_registration: Vec<Option<String>>,
    refugee_id: Vec<Option<String>>,
    passport: Vec<Option<String>>,
    phone: Vec<Option<String>>,
    other_phones: Vec<Option<String>>,
    mother: Vec<Option<Uuid>>,
    father: Vec<Option<Uuid>>,
    guardian: Vec<Option<Uuid>>,
    answers: Vec<String>,
    source: Vec<Option<String>>,
}

impl PeopleColumns {
    fn of(rows: &[&NewHousehold]) -> PeopleColumns {
        let mut c = PeopleColumns::default();
        for h in rows {
            for m in &h.members {
                let p = &m.person;
                let (gs, fs) = name_skeletons(p);
                let (phone, others) = split_phones(m);
                c.id.push(m.id);
                c.household.push(h.id);
                c.village.push(h.input.village.as_str().to_string());
                c.role.push(m.role.as_str().to_string());
                c.since.push(m.since);
                c.given.push(p.given_name.as_str().to_string());
                c.family.push(p.family_name.as_str().to_string());
                c.given_skel.push(gs);
                c.family_skel.push(fs);
                c.sex.push(p.sex.as_str().to_string());
                c.birth.push(p.birth_date.map(|b| b.to_string()));
                c.national_id
                    .push(p.national_id.as_ref().map(|i| i.as_str().to_string()));
                c.birth_registration.push(p.birth_registration.clone());
                c.refugee_id.push(p.refugee_id.clone());
                c.passport.push(p.passport.clone());
                c.phone.push(phone);
                c.other_phones.push(others);
                c.mother.push(m.mother_id);
                c.father.push(m.father_id);
                c.guardian.push(m.guardian_id);
                c.answers
                    .push(serde_json::Value::Object(p.answers.clone()).to_string());
                c.source.push(m.source_key.clone());
            }
        }
        c
    }
}

async fn insert_people(
    conn: &mut PgConnection,
    rows: &[&NewHousehold],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let c = PeopleColumns::of(rows);
    sqlx::query(
        "INSERT INTO registry_people (id, household_id, village_code, role, member_since, \
         given_name, family_name, given_skel, family_skel, sex, birth_date, national_id, \
         birth_registration, refugee_id, passport, phone, other_phones, mother_id, father_id, \
         guardian_id, answers, source_key, version, created_at, updated_at) \
         SELECT id, hh, vil, role, since, gn, fn, gs, fs, sex, bd, nid, brn, rid, pp, ph, oph, \
                mo, fa, gu, ans::jsonb, src, 1, $23, $23 \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::date[], $6::text[], \
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
                     $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], \
                     $18::uuid[], $19::uuid[], $20::uuid[], $21::text[], $22::text[]) \
              AS t(id, hh, vil, role, since, gn, fn, gs, fs, sex, bd, nid, brn, rid, pp, ph, \
                   oph, mo, fa, gu, ans, src)",
    )
    .bind(c.id)
    .bind(c.household)
    .bind(c.village)
    .bind(c.role)
    .bind(c.since)
    .bind(c.given)
    .bind(c.family)
    .bind(c.given_skel)
    .bind(c.family_skel)
    .bind(c.sex)
    .bind(c.birth)
    .bind(c.national_id)
    .bind(c.birth_registration)
    .bind(c.refugee_id)
    .bind(c.passport)
    .bind(c.phone)
    .bind(c.other_phones)
    .bind(c.mother)
    .bind(c.father)
    .bind(c.guardian)
    .bind(c.answers)
    .bind(c.source)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_events(
    conn: &mut PgConnection,
    rows: &[&NewHousehold],
    meta: &EventMeta,
) -> StoreResult<()> {
    let ids: Vec<Uuid> = rows.iter().map(|_| Uuid::now_v7()).collect();
    let households: Vec<Uuid> = rows.iter().map(|h| h.id).collect();
    let after: Vec<String> = rows.iter().map(|h| registered_after(h)).collect();
    sqlx::query(
        "INSERT INTO registry_events (id, household_id, entity, entity_id, kind, at, actor, \
         channel, reason, change_request_id, after) \
         SELECT id, hh, 'household', hh, 'household.registered', $4, $5, $6, $7, $8, a::jsonb \
         FROM UNNEST($1::uuid[], $2::uuid[], $3::text[]) AS t(id, hh, a)",
    )
    .bind(ids)
    .bind(households)
    .bind(after)
    .bind(meta.at)
    .bind(meta.actor.as_str())
    .bind(meta.channel.as_str())
    .bind(meta.reason.as_deref())
    .bind(meta.change_request_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
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
    ) -> StoreResult<BatchOutcome> {
        let keys = BatchKeys::of(batch);
        let mut tx = self.pool.begin().await?;
        let found = existing_keys(&mut tx, &keys).await?;
        let (write, outcome) = plan_batch(batch, &found);
        let rows: Vec<&NewHousehold> = write.iter().map(|&i| &batch[i]).collect();
        if !rows.is_empty() {
            let now = Utc::now();
            insert_households(&mut tx, &rows, now).await?;
            insert_people(&mut tx, &rows, now).await?;
            insert_events(&mut tx, &rows, meta).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    async fn begin_bulk_load(&self) -> StoreResult<bool> {
        let any: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM registry_households LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        if any.is_some() {
            self.ensure_indexes().await?;
            return Ok(false);
        }
        for (name, _) in SECONDARY_INDEXES {
            sqlx::query(&format!("DROP INDEX IF EXISTS {name}"))
                .execute(&self.pool)
                .await?;
        }
        Ok(true)
    }

    async fn ensure_indexes(&self) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        // Index builds sort in memory up to this much per build, then spill to disk.
        sqlx::query("SET maintenance_work_mem = '256MB'")
            .execute(&mut *conn)
            .await?;
        for (name, on) in SECONDARY_INDEXES {
            sqlx::query(&format!("CREATE INDEX IF NOT EXISTS {name} ON {on}"))
                .execute(&mut *conn)
                .await?;
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
