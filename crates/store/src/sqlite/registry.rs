//! The registry's SQL primitives on SQLite; the rules live in `crate::registry::logic`.

use chrono::{DateTime, Utc};
use inkingi_domain::identity::AreaScope;
use inkingi_domain::registry::form::FormSchema;
use inkingi_domain::registry::history::RegistryEvent;
use inkingi_domain::registry::{Household, Membership};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteRow;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use super::ts::{parse_ts, ts};
use super::SqliteAdapter;
use crate::registry::names::{push_candidates, NameCandidate, NameKey};
use crate::registry::query::{push_filter, push_order};
use crate::registry::{
    event_row_decode, name_conflict, name_skeletons, push_scope, split_phones, FormRecord,
    HouseholdFilter, HouseholdRow, PeopleFilter, PeoplePage, PeopleQuery, PersonFilter,
    PersonRecord, PersonRow, RegistryBackend, RegistryConn, MERGED_OUT,
};
use crate::{Adapter, StoreError, StoreResult, UnitOfWork};

const HH_COLS: &str = "id, registry_number, village_code, address, gps_lat, gps_lon, form_id, \
                       form_version, answers, status, source_key, version, created_at, updated_at";

const P_COLS: &str = "id, household_id, village_code, role, member_since, given_name, \
                      family_name, given_skel, family_skel, sex, birth_date, national_id, \
                      birth_registration, refugee_id, passport, phone, other_phones, mother_id, \
                      father_id, guardian_id, answers, died_on, source_key, version, created_at, \
                      updated_at";

/// Members of one household: head first, then spouse, then by birth date.
const MEMBER_ORDER: &str =
    " ORDER BY CASE role WHEN 'head' THEN 0 WHEN 'spouse' THEN 1 ELSE 2 END, birth_date, id";

fn json_col(row: &SqliteRow, col: &str) -> StoreResult<Value> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Invalid(format!("{col}: {e}")))
}

fn household_from(row: &SqliteRow) -> StoreResult<Household> {
    HouseholdRow {
        id: row.try_get("id")?,
        registry_number: row.try_get("registry_number")?,
        village_code: row.try_get("village_code")?,
        address: row.try_get("address")?,
        gps_lat: row.try_get("gps_lat")?,
        gps_lon: row.try_get("gps_lon")?,
        form_id: row.try_get("form_id")?,
        form_version: row.try_get("form_version")?,
        answers: json_col(row, "answers")?,
        status: row.try_get("status")?,
        source_key: row.try_get("source_key")?,
        version: row.try_get("version")?,
        created_at: parse_ts(row.try_get("created_at")?)?,
        updated_at: parse_ts(row.try_get("updated_at")?)?,
    }
    .decode()
}

fn person_from(row: &SqliteRow) -> StoreResult<PersonRecord> {
    PersonRow {
        id: row.try_get("id")?,
        household_id: row.try_get("household_id")?,
        village_code: row.try_get("village_code")?,
        role: row.try_get("role")?,
        member_since: row.try_get("member_since")?,
        given_name: row.try_get("given_name")?,
        family_name: row.try_get("family_name")?,
        sex: row.try_get("sex")?,
        birth_date: row.try_get("birth_date")?,
        national_id: row.try_get("national_id")?,
        birth_registration: row.try_get("birth_registration")?,
        refugee_id: row.try_get("refugee_id")?,
        passport: row.try_get("passport")?,
        phone: row.try_get("phone")?,
        other_phones: row.try_get("other_phones")?,
        mother_id: row.try_get("mother_id")?,
        father_id: row.try_get("father_id")?,
        guardian_id: row.try_get("guardian_id")?,
        answers: json_col(row, "answers")?,
        died_on: row.try_get("died_on")?,
        source_key: row.try_get("source_key")?,
        version: row.try_get("version")?,
        created_at: parse_ts(row.try_get("created_at")?)?,
        updated_at: parse_ts(row.try_get("updated_at")?)?,
    }
    .decode()
}

fn answers_text(m: &serde_json::Map<String, Value>) -> String {
    Value::Object(m.clone()).to_string()
}

/// Binds every person column after `id`, in [`P_COLS`] order.
fn push_person_values(qb: &mut QueryBuilder<'_, Sqlite>, p: &PersonRecord) {
    let d = &p.person.data;
    let (given_skel, family_skel) = name_skeletons(d);
    let (phone, other_phones) = split_phones(&d.phones);
    let mut s = qb.separated(", ");
    s.push_bind(p.person.id)
        .push_bind(p.person.household_id)
        .push_bind(p.person.village.as_ref().map(|v| v.as_str().to_string()))
        .push_bind(p.role.map(|r| r.as_str()))
        .push_bind(p.member_since)
        .push_bind(d.given_name.as_str().to_string())
        .push_bind(d.family_name.as_str().to_string())
        .push_bind(given_skel)
        .push_bind(family_skel)
        .push_bind(d.sex.as_str())
        .push_bind(d.birth_date.map(|b| b.to_string()))
        .push_bind(d.national_id.as_ref().map(|n| n.as_str().to_string()))
        .push_bind(d.birth_registration.clone())
        .push_bind(d.refugee_id.clone())
        .push_bind(d.passport.clone())
        .push_bind(phone)
        .push_bind(other_phones)
        .push_bind(p.mother_id)
        .push_bind(p.father_id)
        .push_bind(p.guardian_id)
        .push_bind(answers_text(&d.answers))
        .push_bind(p.person.died_on)
        .push_bind(p.source_key.clone())
        .push_bind(p.person.version)
        .push_bind(ts(p.person.created_at))
        .push_bind(ts(p.person.updated_at));
}

fn form_from(row: &SqliteRow) -> StoreResult<FormRecord> {
    let text: String = row.try_get("schema")?;
    Ok(FormRecord {
        schema: FormSchema::from_json(&text)
            .map_err(|e| StoreError::Invalid(format!("stored form: {e}")))?,
        published_at: parse_ts(row.try_get("published_at")?)?,
        published_by: row.try_get("published_by")?,
    })
}

#[async_trait::async_trait]
impl RegistryConn for SqliteConnection {
    async fn households(
        &mut self,
        scope: &AreaScope,
        f: HouseholdFilter<'_>,
    ) -> StoreResult<Vec<Household>> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT {HH_COLS} FROM registry_households WHERE TRUE"
        ));
        push_scope(&mut qb, "village_code", scope);
        match f {
            HouseholdFilter::Id(id) => {
                qb.push(" AND id = ").push_bind(id);
            }
            HouseholdFilter::Number(n) => {
                qb.push(" AND registry_number = ").push_bind(n.to_string());
            }
            HouseholdFilter::List(q) => {
                if let Some(area) = &q.area {
                    let (lo, hi) = crate::registry::area_range(area.as_str());
                    qb.push(" AND village_code >= ").push_bind(lo);
                    qb.push(" AND village_code < ").push_bind(hi);
                }
                if let Some(status) = q.status {
                    qb.push(" AND status = ").push_bind(status.as_str());
                }
                if let Some(c) = &q.after {
                    qb.push(" AND (village_code, id) > (")
                        .push_bind(c.village.clone())
                        .push(", ")
                        .push_bind(c.id)
                        .push(")");
                }
                qb.push(" ORDER BY village_code, id LIMIT ")
                    .push_bind(i64::from(q.limit));
            }
        }
        let rows = qb.build().fetch_all(&mut *self).await?;
        rows.iter().map(household_from).collect()
    }

    async fn people(
        &mut self,
        scope: &AreaScope,
        f: PeopleFilter<'_>,
    ) -> StoreResult<Vec<PersonRecord>> {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {P_COLS} FROM registry_people WHERE TRUE"));
        push_scope(&mut qb, "village_code", scope);
        match f {
            PeopleFilter::Id(id) => {
                qb.push(" AND id = ").push_bind(id);
            }
            PeopleFilter::Household(id) => {
                qb.push(" AND household_id = ").push_bind(id);
                qb.push(MEMBER_ORDER);
            }
            PeopleFilter::RegistryNumber(n) => {
                qb.push(
                    " AND household_id = (SELECT id FROM registry_households \
                     WHERE registry_number = ",
                )
                .push_bind(n.to_string())
                .push(")");
                qb.push(MEMBER_ORDER);
            }
            PeopleFilter::NationalId(n) => {
                qb.push(" AND merged_into IS NULL AND national_id = ")
                    .push_bind(n.to_string());
            }
            PeopleFilter::Phone(p) => {
                qb.push(" AND merged_into IS NULL AND (phone = ")
                    .push_bind(p.to_string())
                    .push(" OR id IN (SELECT person_id FROM registry_people_phones WHERE phone = ")
                    .push_bind(p.to_string())
                    .push("))");
            }
            PeopleFilter::Ids([]) => {
                qb.push(" AND FALSE");
            }
            PeopleFilter::Ids(ids) => {
                qb.push(" AND id IN (");
                let mut s = qb.separated(", ");
                for id in ids {
                    s.push_bind(*id);
                }
                qb.push(")");
            }
        }
        let rows = qb.build().fetch_all(&mut *self).await?;
        rows.iter().map(person_from).collect()
    }

    async fn name_candidates(
        &mut self,
        scope: &AreaScope,
        keys: &[NameKey],
        per_key: u32,
    ) -> StoreResult<Vec<NameCandidate>> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("");
        push_candidates(&mut qb, scope, keys, per_key);
        let rows = qb.build().fetch_all(&mut *self).await?;
        rows.iter()
            .map(|r| {
                Ok(NameCandidate {
                    id: r.try_get("id")?,
                    given_name: r.try_get("given_name")?,
                    family_name: r.try_get("family_name")?,
                })
            })
            .collect()
    }

    async fn lock_household(&mut self, _id: Uuid) -> StoreResult<()> {
        Ok(())
    }

    async fn insert_household(&mut self, h: &Household) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO registry_households ({HH_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(h.id)
        .bind(h.registry_number.as_str())
        .bind(h.village.as_str())
        .bind(&h.address)
        .bind(h.gps.map(|g| g.lat))
        .bind(h.gps.map(|g| g.lon))
        .bind(&h.form_id)
        .bind(i64::from(h.form_version))
        .bind(answers_text(&h.answers))
        .bind(h.status.as_str())
        .bind(&h.source_key)
        .bind(h.version)
        .bind(ts(h.created_at))
        .bind(ts(h.updated_at))
        .execute(&mut *self)
        .await
        .map_err(name_conflict)?;
        Ok(())
    }

    async fn update_household(&mut self, h: &Household, expected: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE registry_households SET village_code = $1, address = $2, gps_lat = $3, \
             gps_lon = $4, form_version = $5, answers = $6, status = $7, version = $8, \
             updated_at = $9 WHERE id = $10 AND version = $11",
        )
        .bind(h.village.as_str())
        .bind(&h.address)
        .bind(h.gps.map(|g| g.lat))
        .bind(h.gps.map(|g| g.lon))
        .bind(i64::from(h.form_version))
        .bind(answers_text(&h.answers))
        .bind(h.status.as_str())
        .bind(h.version)
        .bind(ts(h.updated_at))
        .bind(h.id)
        .bind(expected)
        .execute(&mut *self)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_members_village(&mut self, household_id: Uuid, village: &str) -> StoreResult<()> {
        sqlx::query("UPDATE registry_people SET village_code = $1 WHERE household_id = $2")
            .bind(village)
            .bind(household_id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn insert_person(&mut self, p: &PersonRecord) -> StoreResult<()> {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("INSERT INTO registry_people ({P_COLS}) VALUES ("));
        push_person_values(&mut qb, p);
        qb.push(")");
        qb.build()
            .execute(&mut *self)
            .await
            .map_err(name_conflict)?;
        Ok(())
    }

    async fn update_person(&mut self, p: &PersonRecord, expected: i64) -> StoreResult<bool> {
        // Replace the whole row: every column is derived from the record.
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("UPDATE registry_people SET ({P_COLS}) = ("));
        push_person_values(&mut qb, p);
        qb.push(") WHERE id = ")
            .push_bind(p.person.id)
            .push(" AND version = ")
            .push_bind(expected);
        let done = qb
            .build()
            .execute(&mut *self)
            .await
            .map_err(name_conflict)?;
        Ok(done.rows_affected() == 1)
    }

    async fn last_household(&mut self, person_id: Uuid) -> StoreResult<Option<Uuid>> {
        let row: Option<(Uuid,)> = sqlx::query_as(
            "SELECT household_id FROM registry_past_memberships WHERE person_id = $1 \
             ORDER BY end_date DESC LIMIT 1",
        )
        .bind(person_id)
        .fetch_optional(&mut *self)
        .await?;
        Ok(row.map(|(id,)| id))
    }

    async fn insert_past_membership(&mut self, m: &Membership) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO registry_past_memberships \
             (household_id, person_id, role, start_date, end_date, end_reason) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(m.household_id)
        .bind(m.person_id)
        .bind(m.role.as_str())
        .bind(m.start_date)
        .bind(m.end_date)
        .bind(&m.end_reason)
        .execute(&mut *self)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict("end_date: this membership already ended on that date".into())
            }
            other => other,
        })?;
        Ok(())
    }

    async fn insert_event(&mut self, e: &RegistryEvent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO registry_events (id, household_id, entity, entity_id, kind, at, actor, \
             channel, reason, change_request_id, before, after) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(e.id)
        .bind(e.household_id)
        .bind(e.entity.as_str())
        .bind(e.entity_id)
        .bind(&e.kind)
        .bind(ts(e.at))
        .bind(&e.actor)
        .bind(e.channel.as_str())
        .bind(&e.reason)
        .bind(e.change_request_id)
        .bind(e.before.as_ref().map(Json))
        .bind(e.after.as_ref().map(Json))
        .execute(&mut *self)
        .await?;
        // The household's data changed: its score is recomputed by a job committed with it.
        let job = crate::jobs::NewJob::of(&crate::targeting::RescoreJob {
            household_id: e.household_id,
        })?;
        super::jobs::insert(self, job).await?;
        Ok(())
    }

    async fn events(
        &mut self,
        household_id: Uuid,
        after: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<RegistryEvent>> {
        let rows = sqlx::query(
            "SELECT id, household_id, entity, entity_id, kind, at, actor, channel, reason, \
             change_request_id, before, after FROM registry_events \
             WHERE household_id = $1 AND ($2 IS NULL OR at > $2) ORDER BY at, id",
        )
        .bind(household_id)
        .bind(after.map(ts))
        .fetch_all(&mut *self)
        .await?;
        rows.iter()
            .map(|r| {
                let text = |c: &str| -> StoreResult<Option<Value>> {
                    let t: Option<String> = r.try_get(c)?;
                    t.map(|t| {
                        serde_json::from_str(&t).map_err(|e| StoreError::Invalid(e.to_string()))
                    })
                    .transpose()
                };
                event_row_decode(
                    r.try_get("id")?,
                    r.try_get("household_id")?,
                    r.try_get("entity")?,
                    r.try_get("entity_id")?,
                    r.try_get("kind")?,
                    parse_ts(r.try_get("at")?)?,
                    r.try_get("actor")?,
                    r.try_get("channel")?,
                    r.try_get("reason")?,
                    r.try_get("change_request_id")?,
                    text("before")?,
                    text("after")?,
                )
            })
            .collect()
    }

    async fn find_people(
        &mut self,
        scope: &AreaScope,
        q: &PeopleQuery,
    ) -> StoreResult<PeoplePage<PersonRecord>> {
        let total = bounded_count(&mut *self, scope, &q.filter, false, q.max_candidates).await?;
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {P_COLS} FROM registry_people WHERE TRUE"));
        push_scope(&mut qb, "village_code", scope);
        qb.push(MERGED_OUT);
        push_filter(&mut qb, &q.filter);
        push_order(&mut qb, &q.sort);
        qb.push(" LIMIT ")
            .push_bind(i64::from(q.limit))
            .push(" OFFSET ")
            .push_bind(i64::try_from(q.offset).unwrap_or(i64::MAX));
        let rows = qb.build().fetch_all(&mut *self).await?;
        Ok(PeoplePage {
            items: rows.iter().map(person_from).collect::<StoreResult<_>>()?,
            total,
        })
    }

    async fn find_households(
        &mut self,
        scope: &AreaScope,
        filter: &PersonFilter,
        limit: u32,
        offset: u64,
        max_candidates: u64,
    ) -> StoreResult<PeoplePage<Uuid>> {
        // Refused before grouping when the matching people are too many to group.
        bounded_count(&mut *self, scope, filter, true, max_candidates).await?;
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT household_id, COUNT(*) OVER () AS total FROM registry_people \
             WHERE household_id IS NOT NULL",
        );
        push_scope(&mut qb, "village_code", scope);
        qb.push(MERGED_OUT);
        push_filter(&mut qb, filter);
        qb.push(" GROUP BY household_id ORDER BY household_id LIMIT ")
            .push_bind(i64::from(limit))
            .push(" OFFSET ")
            .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
        let rows = qb.build().fetch_all(&mut *self).await?;
        let mut total = 0i64;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push(row.try_get::<Uuid, _>("household_id")?);
            total = row.try_get("total")?;
        }
        if items.is_empty() && offset > 0 {
            // A page past the end has no rows to carry the window count; count separately.
            let mut c: QueryBuilder<Sqlite> = QueryBuilder::new(
                "SELECT COUNT(DISTINCT household_id) FROM registry_people \
                 WHERE household_id IS NOT NULL",
            );
            push_scope(&mut c, "village_code", scope);
            c.push(MERGED_OUT);
            push_filter(&mut c, filter);
            total = c.build_query_scalar().fetch_one(&mut *self).await?;
        }
        Ok(PeoplePage {
            items,
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    async fn locate(&mut self, id: Uuid) -> StoreResult<Option<String>> {
        let v: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT village_code FROM registry_households WHERE id = $1 \
             UNION ALL SELECT village_code FROM registry_people WHERE id = $1 LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *self)
        .await?;
        Ok(v.and_then(|(v,)| v))
    }

    async fn insert_form(&mut self, f: &FormRecord) -> StoreResult<()> {
        let schema = serde_json::to_string(&f.schema)
            .map_err(|e| StoreError::Invalid(format!("form schema: {e}")))?;
        sqlx::query(
            "INSERT INTO registry_forms (form_id, version, schema, published_at, published_by) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&f.schema.id)
        .bind(i64::from(f.schema.version))
        .bind(schema)
        .bind(ts(f.published_at))
        .bind(&f.published_by)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn form(
        &mut self,
        form_id: &str,
        version: Option<u32>,
    ) -> StoreResult<Option<FormRecord>> {
        let row = sqlx::query(
            "SELECT schema, published_at, published_by FROM registry_forms \
             WHERE form_id = $1 AND ($2 IS NULL OR version = $2) ORDER BY version DESC LIMIT 1",
        )
        .bind(form_id)
        .bind(version.map(i64::from))
        .fetch_optional(&mut *self)
        .await?;
        row.as_ref().map(form_from).transpose()
    }
}

#[async_trait::async_trait]
impl RegistryBackend for SqliteAdapter {
    type Conn = SqliteConnection;
    type Pooled = PoolConnection<Sqlite>;

    async fn read_conn(&self) -> StoreResult<PoolConnection<Sqlite>> {
        Ok(self.read.acquire().await?)
    }

    fn tx_conn<'a>(&self, uow: &'a mut UnitOfWork) -> StoreResult<&'a mut SqliteConnection> {
        uow.sqlite()
    }

    async fn begin_write(&self) -> StoreResult<UnitOfWork> {
        Adapter::begin(self).await
    }
}

/// How many people match (within the scope, not merged), counting at most `cap` + 1 of them;
/// a refusal beyond `cap`.
/// `households` restricts to people in a household (as group searches do).
async fn bounded_count(
    c: &mut sqlx::SqliteConnection,
    scope: &AreaScope,
    filter: &PersonFilter,
    households: bool,
    cap: u64,
) -> StoreResult<u64> {
    let mut qb: QueryBuilder<Sqlite> =
        QueryBuilder::new("SELECT COUNT(*) FROM (SELECT 1 FROM registry_people WHERE ");
    qb.push(if households {
        "household_id IS NOT NULL"
    } else {
        "TRUE"
    });
    push_scope(&mut qb, "village_code", scope);
    qb.push(MERGED_OUT);
    push_filter(&mut qb, filter);
    crate::registry::query::push_candidate_limit(&mut qb, cap);
    qb.push(") AS candidates");
    let n: i64 = qb.build_query_scalar().fetch_one(c).await?;
    crate::registry::query::within_cap(n, cap)
}
