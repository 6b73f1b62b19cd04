//! Materialised services due and indicator inputs (schema `0030_child_services_status`), and
//! the DHIS2 aggregate push log. The statuses are written by whoever ran the pure evaluator
//! (the server's `children.services` job and `inkingi children recompute`); this module only
//! stores and counts them. The SQL is the same on both backends.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use inkingi_domain::children::indicators::{Cohort, IndicatorCode};
use inkingi_domain::children::schedule::{Status, Window};
use inkingi_domain::identity::AreaScope;
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::QueryBuilder;
use uuid::Uuid;

use crate::child_packed;
use crate::children::{ChildFacts, ContactFact, PregnancyFact};
use crate::registry::{area_range, push_scope};
use crate::shared_sql::{on_read, on_uow, Pools};
use crate::{BackendKind, Store, StoreError, StoreResult, UnitOfWork};

/// One occurrence of a service for one person, as evaluated on `evaluated_on`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusRow {
    pub person_id: Uuid,
    pub schedule: String,
    pub service: String,
    pub occurrence: u32,
    pub schedule_version: String,
    pub village_code: Option<String>,
    pub status: Status,
    pub window: Window,
    pub completed_on: Option<NaiveDate>,
    pub evaluated_on: NaiveDate,
}

/// What the indicators count about one child under six.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndicatorBase {
    pub person_id: Uuid,
    pub village_code: Option<String>,
    pub birth_date: NaiveDate,
    /// Fully immunised by the first birthday; `None` while younger.
    pub fic12: Option<bool>,
    pub fic24: Option<bool>,
    /// The latest visit with a length or height, and its grades (0, 2 moderate, 3 severe).
    pub growth_on: Option<NaiveDate>,
    pub stunting: Option<i16>,
    pub wasting: Option<i16>,
    pub birth_registered: bool,
    pub enrolled: bool,
    pub evaluated_on: NaiveDate,
}

/// Everything evaluated for one person: replaces what was stored for them.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    pub person_id: Uuid,
    pub rows: Vec<StatusRow>,
    /// `None` for a person who is not a child under six (a mother).
    pub base: Option<IndicatorBase>,
}

/// A registry person under six, as the batch recompute reads them.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ChildRow {
    pub id: Uuid,
    pub village_code: Option<String>,
    pub sex: String,
    pub birth_date: Option<String>,
    pub birth_registration: Option<String>,
}

/// One indicator in one area.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AreaCount {
    pub area: String,
    pub denominator: i64,
    pub numerator: i64,
    /// Prevalence only: moderate and severe cases (they add up to the numerator).
    pub moderate: i64,
    pub severe: i64,
}

/// A child an indicator's drill-down lists.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ListedChild {
    pub person_id: Uuid,
    pub given_name: String,
    pub family_name: String,
    pub village_code: Option<String>,
    pub birth_date: NaiveDate,
    pub household_id: Option<Uuid>,
    pub growth_on: Option<NaiveDate>,
    pub stunting: Option<i32>,
    pub wasting: Option<i32>,
}

/// An overdue candidate: an open occurrence past its recommended window on the day asked,
/// with the child it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenRow {
    pub row: StatusRow,
    pub given_name: String,
    pub family_name: String,
    pub birth_date: Option<String>,
    pub household_id: Option<Uuid>,
}

/// A DHIS2 import summary as stored for one sector and month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PushRecord {
    pub sector_code: String,
    pub period: String,
    pub org_unit: String,
    pub status: String,
    pub imported: i64,
    pub updated: i64,
    pub ignored: i64,
    pub deleted: i64,
    /// `[{"object": …, "value": …}]` as DHIS2 answered them.
    pub conflicts: Value,
    pub values_sent: i64,
    pub pushed_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct DbStatus {
    person_id: Uuid,
    schedule: String,
    service: String,
    occurrence: i32,
    schedule_version: String,
    village_code: Option<String>,
    status: String,
    opens: NaiveDate,
    due_by: NaiveDate,
    closes: Option<NaiveDate>,
    completed_on: Option<NaiveDate>,
    evaluated_on: NaiveDate,
}

impl TryFrom<DbStatus> for StatusRow {
    type Error = StoreError;
    fn try_from(r: DbStatus) -> StoreResult<StatusRow> {
        Ok(StatusRow {
            status: Status::parse(&r.status).ok_or_else(|| {
                StoreError::Invalid(format!("child_services_status.status '{}'", r.status))
            })?,
            person_id: r.person_id,
            schedule: r.schedule,
            service: r.service,
            occurrence: u32::try_from(r.occurrence).unwrap_or(0),
            schedule_version: r.schedule_version,
            village_code: r.village_code,
            window: Window {
                opens: r.opens,
                due_by: r.due_by,
                closes: r.closes,
            },
            completed_on: r.completed_on,
            evaluated_on: r.evaluated_on,
        })
    }
}

#[derive(sqlx::FromRow)]
struct DbOpen {
    #[sqlx(flatten)]
    s: DbStatus,
    given_name: String,
    family_name: String,
    birth_date: Option<String>,
    household_id: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct DbCount {
    area: String,
    denominator: i64,
    numerator: i64,
    moderate: i64,
    severe: i64,
}

#[derive(sqlx::FromRow)]
struct DbPush {
    sector_code: String,
    period: String,
    org_unit: String,
    status: String,
    imported: i32,
    updated: i32,
    ignored: i32,
    deleted: i32,
    conflicts: Json<Value>,
    values_sent: i32,
    pushed_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct DbPregnancy {
    person_id: Uuid,
    lmp: Option<NaiveDate>,
    edd: Option<NaiveDate>,
    outcome: Option<String>,
    outcome_on: Option<NaiveDate>,
}

/// A person and their facts of one table packed in one value (`child_packed`).
type DbPacked = (Uuid, String);

/// An encounter or an enrolment: a kind and a day.
#[derive(sqlx::FromRow)]
struct DbDated {
    person_id: Uuid,
    kind: String,
    occurred_on: NaiveDate,
}

/// The facts the evaluator reads, of the registry people with ids in `first..=last`, each
/// table scanned once along its `(person_id, date)` index; ordered as `facts_of_people`
/// orders them (by date, then id) so both paths evaluate the same sequence.
const PREGNANCIES_IN_RANGE: &str = "SELECT person_id, lmp, edd, outcome, outcome_on \
    FROM child_pregnancies WHERE person_id >= $1 AND person_id <= $2 \
    ORDER BY person_id, received_at, id";
const CONTACTS_IN_RANGE: &str = "SELECT person_id, kind, occurred_on \
    FROM child_encounters WHERE person_id >= $1 AND person_id <= $2 \
    ORDER BY person_id, occurred_on, id";
const ENROLMENTS_IN_RANGE: &str = "SELECT person_id, kind, occurred_on \
    FROM child_feed_facts WHERE person_id >= $1 AND person_id <= $2 \
    AND kind = 'preprimary_enrolment' ORDER BY person_id, occurred_on, id";

const STATUS_COLS: &str = "s.person_id, s.schedule, s.service, s.occurrence, \
    s.schedule_version, s.village_code, s.status, s.opens, s.due_by, s.closes, s.completed_on, \
    s.evaluated_on";

/// Rows per multi-row INSERT: 12 binds each stays under SQLite's 32,766.
const INSERT_ROWS: usize = 1000;

/// The materialised statuses, reached through [`Store::child_status`].
pub struct ChildStatus<'a> {
    pub(crate) store: &'a Store,
}

/// How an indicator's numerator and denominator read the base table `b`.
struct Rule {
    /// Extra condition of the denominator.
    among: &'static str,
    /// The numerator (a condition).
    counts: &'static str,
}

fn rule(code: IndicatorCode) -> Rule {
    const GROWTH_IN_MONTH: &str = "EXISTS (SELECT 1 FROM child_measurements m \
        WHERE m.person_id = b.person_id AND m.measured_on >= $mstart AND m.measured_on <= $mend)";
    match code {
        IndicatorCode::Fic12 => Rule {
            among: "TRUE",
            counts: "b.fic12 = 1",
        },
        IndicatorCode::Fic24 => Rule {
            among: "TRUE",
            counts: "b.fic24 = 1",
        },
        IndicatorCode::Stunting => Rule {
            among: "b.stunting IS NOT NULL AND b.growth_on >= $mfrom AND b.growth_on <= $mend",
            counts: "b.stunting >= 2",
        },
        IndicatorCode::Wasting => Rule {
            among: "b.wasting IS NOT NULL AND b.growth_on >= $mfrom AND b.growth_on <= $mend",
            counts: "b.wasting >= 2",
        },
        IndicatorCode::GrowthMonitoring => Rule {
            among: "TRUE",
            counts: GROWTH_IN_MONTH,
        },
        IndicatorCode::BirthRegistration => Rule {
            among: "TRUE",
            counts: "b.birth_registered = 1",
        },
        IndicatorCode::PreprimaryEnrolment => Rule {
            among: "TRUE",
            counts: "b.enrolled = 1",
        },
    }
}

/// Writes `sql` into `qb`, binding the cohort's dates where `$mstart`, `$mend` and `$mfrom`
/// stand (placeholders are positional, so each use is one bind).
fn push_rule<'a, DB>(qb: &mut QueryBuilder<'a, DB>, sql: &str, c: &Cohort)
where
    DB: sqlx::Database,
    NaiveDate: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut rest = sql;
    while let Some(i) = rest.find('$') {
        qb.push(&rest[..i]);
        let tail = &rest[i..];
        let (date, len) = if tail.starts_with("$mstart") {
            (c.month_start, 7)
        } else if tail.starts_with("$mend") {
            (c.month_end, 5)
        } else {
            (c.measured_from.unwrap_or(c.month_start), 6)
        };
        qb.push_bind(date);
        rest = &tail[len..];
    }
    qb.push(rest);
}

/// The children of the cohort in `area` (and scope) from the base table `b`.
fn push_cohort<'a, DB>(qb: &mut QueryBuilder<'a, DB>, area: &str, c: &Cohort, scope: &AreaScope)
where
    DB: sqlx::Database,
    NaiveDate: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let (lo, hi) = area_range(area);
    qb.push(" WHERE b.village_code >= ")
        .push_bind(lo)
        .push(" AND b.village_code < ")
        .push_bind(hi)
        .push(" AND b.birth_date >= ")
        .push_bind(c.born_from)
        .push(" AND b.birth_date <= ")
        .push_bind(c.born_to);
    push_scope(qb, "b.village_code", scope);
}

/// What [`ChildStatus::sync_range`] wrote and removed (rows of both tables).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Synced {
    pub written: u64,
    pub removed: u64,
}

#[derive(sqlx::FromRow)]
struct DbBase {
    person_id: Uuid,
    village_code: Option<String>,
    birth_date: NaiveDate,
    fic12: Option<i32>,
    fic24: Option<i32>,
    growth_on: Option<NaiveDate>,
    stunting: Option<i32>,
    wasting: Option<i32>,
    birth_registered: i32,
    enrolled: i32,
    evaluated_on: NaiveDate,
}

impl From<DbBase> for IndicatorBase {
    fn from(r: DbBase) -> IndicatorBase {
        let grade = |g: Option<i32>| g.and_then(|g| i16::try_from(g).ok());
        IndicatorBase {
            person_id: r.person_id,
            village_code: r.village_code,
            birth_date: r.birth_date,
            fic12: r.fic12.map(|v| v == 1),
            fic24: r.fic24.map(|v| v == 1),
            growth_on: r.growth_on,
            stunting: grade(r.stunting),
            wasting: grade(r.wasting),
            birth_registered: r.birth_registered == 1,
            enrolled: r.enrolled == 1,
            evaluated_on: r.evaluated_on,
        }
    }
}

/// What a sync writes and removes.
struct Plan<'a> {
    rows: Vec<&'a StatusRow>,
    bases: Vec<&'a IndicatorBase>,
    gone_rows: Vec<&'a StatusRow>,
    gone_bases: Vec<Uuid>,
}

/// Compares what was evaluated with what is stored, ignoring `evaluated_on`. Rows of people
/// evaluated but no longer produced go, and so do those of people of the range not evaluated
/// at all, unless kept.
fn diff<'a>(
    all: &'a [Evaluated],
    old_rows: &'a [StatusRow],
    old_bases: &'a [IndicatorBase],
    evaluated: &HashSet<Uuid>,
    keep: &HashSet<Uuid>,
) -> Plan<'a> {
    let goes = |id: &Uuid| evaluated.contains(id) || !keep.contains(id);
    let (rows, gone_rows) = diff_rows(all, old_rows, goes);
    let (bases, gone_bases) = diff_bases(all, old_bases, goes);
    Plan {
        rows,
        bases,
        gone_rows,
        gone_bases,
    }
}

type RowKey<'k> = (Uuid, &'k str, &'k str, u32);

fn row_key(r: &StatusRow) -> RowKey<'_> {
    (
        r.person_id,
        r.schedule.as_str(),
        r.service.as_str(),
        r.occurrence,
    )
}

/// Occurrences new or changed, and those stored but no longer evaluated (of people `goes`).
fn diff_rows<'a>(
    all: &'a [Evaluated],
    old: &'a [StatusRow],
    goes: impl Fn(&Uuid) -> bool,
) -> (Vec<&'a StatusRow>, Vec<&'a StatusRow>) {
    let stored: HashMap<RowKey<'a>, &StatusRow> = old.iter().map(|r| (row_key(r), r)).collect();
    let fresh: HashSet<RowKey<'a>> = all.iter().flat_map(|e| &e.rows).map(row_key).collect();
    let changed = all
        .iter()
        .flat_map(|e| &e.rows)
        .filter(|r| stored.get(&row_key(r)).is_none_or(|o| !same_row(o, r)))
        .collect();
    let gone = old
        .iter()
        .filter(|r| !fresh.contains(&row_key(r)) && goes(&r.person_id))
        .collect();
    (changed, gone)
}

/// Indicator bases new or changed, and the people whose base goes (of people `goes`).
fn diff_bases<'a>(
    all: &'a [Evaluated],
    old: &'a [IndicatorBase],
    goes: impl Fn(&Uuid) -> bool,
) -> (Vec<&'a IndicatorBase>, Vec<Uuid>) {
    let stored: HashMap<Uuid, &IndicatorBase> = old.iter().map(|b| (b.person_id, b)).collect();
    let fresh: Vec<&IndicatorBase> = all.iter().filter_map(|e| e.base.as_ref()).collect();
    let with_base: HashSet<Uuid> = fresh.iter().map(|b| b.person_id).collect();
    let changed = fresh
        .into_iter()
        .filter(|b| stored.get(&b.person_id).is_none_or(|o| !same_base(o, b)))
        .collect();
    let gone = old
        .iter()
        .map(|b| b.person_id)
        .filter(|id| !with_base.contains(id) && goes(id))
        .collect();
    (changed, gone)
}

fn same_row(a: &StatusRow, b: &StatusRow) -> bool {
    (
        &a.schedule_version,
        &a.village_code,
        a.status,
        a.window,
        a.completed_on,
    ) == (
        &b.schedule_version,
        &b.village_code,
        b.status,
        b.window,
        b.completed_on,
    )
}

fn same_base(a: &IndicatorBase, b: &IndicatorBase) -> bool {
    IndicatorBase {
        evaluated_on: a.evaluated_on,
        ..b.clone()
    } == *a
}

/// Rows of `sql` (ending in a condition) whose `column` is in `(after, last]`, read in the
/// unit of work.
async fn existing_in_range<T>(
    uow: &mut UnitOfWork,
    sql: &str,
    column: &str,
    after: Option<Uuid>,
    last: Option<Uuid>,
) -> StoreResult<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
{
    let rows: Vec<T> = on_uow!(uow, |c| {
        let mut qb = QueryBuilder::new(sql);
        if let Some(a) = after {
            qb.push(format!(" AND {column} > ")).push_bind(a);
        }
        if let Some(l) = last {
            qb.push(format!(" AND {column} <= ")).push_bind(l);
        }
        qb.build_query_as().fetch_all(&mut *c).await?
    });
    Ok(rows)
}

/// Deletes the rows of these people from `table`.
async fn delete_people(uow: &mut UnitOfWork, table: &str, ids: &[Uuid]) -> StoreResult<()> {
    for chunk in ids.chunks(INSERT_ROWS) {
        on_uow!(uow, |c| {
            let mut qb = QueryBuilder::new(format!("DELETE FROM {table} WHERE person_id IN ("));
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(*id);
            }
            qb.push(")");
            qb.build().execute(&mut *c).await?;
        });
    }
    Ok(())
}

/// Deletes these occurrences, 1,000 a statement (a row-value list: SQLite and PostgreSQL
/// both take `(a, b) IN (VALUES …)`).
async fn delete_rows(uow: &mut UnitOfWork, rows: &[&StatusRow]) -> StoreResult<()> {
    for chunk in rows.chunks(INSERT_ROWS) {
        on_uow!(uow, |c| {
            let mut qb = QueryBuilder::new(
                "DELETE FROM child_services_status \
                 WHERE (person_id, schedule, service, occurrence) IN (",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.person_id)
                    .push_bind(r.schedule.clone())
                    .push_bind(r.service.clone())
                    .push_bind(i32::try_from(r.occurrence).unwrap_or(i32::MAX));
            });
            qb.push(")");
            qb.build().execute(&mut *c).await?;
        });
    }
    Ok(())
}

const ROW_UPSERT: &str = " ON CONFLICT (person_id, schedule, service, occurrence) DO UPDATE SET \
    schedule_version = excluded.schedule_version, village_code = excluded.village_code, \
    status = excluded.status, opens = excluded.opens, due_by = excluded.due_by, \
    closes = excluded.closes, completed_on = excluded.completed_on, \
    evaluated_on = excluded.evaluated_on";

const BASE_UPSERT: &str = " ON CONFLICT (person_id) DO UPDATE SET \
    village_code = excluded.village_code, birth_date = excluded.birth_date, \
    fic12 = excluded.fic12, fic24 = excluded.fic24, growth_on = excluded.growth_on, \
    stunting = excluded.stunting, wasting = excluded.wasting, \
    birth_registered = excluded.birth_registered, enrolled = excluded.enrolled, \
    evaluated_on = excluded.evaluated_on";

/// Inserts status rows, packed as one JSON value a statement (see `child_packed`), followed
/// by `tail` (an upsert clause or nothing).
async fn write_rows(
    uow: &mut UnitOfWork,
    kind: BackendKind,
    rows: &[&StatusRow],
    tail: &str,
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = child_packed::rows_insert_sql(kind, tail);
    for chunk in rows.chunks(child_packed::ROWS_PER_STATEMENT) {
        let packed = child_packed::pack_rows(chunk);
        on_uow!(uow, |c| {
            sqlx::query(&sql).bind(&packed).execute(&mut *c).await?;
        });
    }
    Ok(())
}

/// Inserts indicator bases, 1,000 a statement, followed by `tail`.
async fn write_bases(
    uow: &mut UnitOfWork,
    bases: &[&IndicatorBase],
    tail: &str,
) -> StoreResult<()> {
    for chunk in bases.chunks(INSERT_ROWS) {
        on_uow!(uow, |c| {
            let mut qb = QueryBuilder::new(
                "INSERT INTO child_indicator_base (person_id, village_code, birth_date, \
                 fic12, fic24, growth_on, stunting, wasting, birth_registered, enrolled, \
                 evaluated_on) ",
            );
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.person_id)
                    .push_bind(r.village_code.clone())
                    .push_bind(r.birth_date)
                    .push_bind(r.fic12.map(i32::from))
                    .push_bind(r.fic24.map(i32::from))
                    .push_bind(r.growth_on)
                    .push_bind(r.stunting.map(i32::from))
                    .push_bind(r.wasting.map(i32::from))
                    .push_bind(i32::from(r.birth_registered))
                    .push_bind(i32::from(r.enrolled))
                    .push_bind(r.evaluated_on);
            });
            qb.push(tail);
            qb.build().execute(&mut *c).await?;
        });
    }
    Ok(())
}

impl ChildStatus<'_> {
    fn pools(&self) -> Pools {
        self.store.adapter.pools()
    }

    /// Replaces everything stored for these persons by what was just evaluated, in the
    /// caller's unit of work (a reader sees the old rows or the new, never half).
    pub async fn replace(&self, uow: &mut UnitOfWork, all: &[Evaluated]) -> StoreResult<()> {
        if all.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = all.iter().map(|e| e.person_id).collect();
        for table in ["child_services_status", "child_indicator_base"] {
            delete_people(uow, table, &ids).await?;
        }
        let rows: Vec<&StatusRow> = all.iter().flat_map(|e| &e.rows).collect();
        write_rows(uow, self.store.kind(), &rows, "").await?;
        let bases: Vec<&IndicatorBase> = all.iter().filter_map(|e| e.base.as_ref()).collect();
        write_bases(uow, &bases, "").await?;
        Ok(())
    }

    /// Brings the stored rows of the people whose ids are in `(after, last]` (no bound where
    /// `None`) to what was just evaluated of them (`all`, sorted by id, inside the range),
    /// writing only what changed: rows whose content differs or that are new are upserted,
    /// rows no longer evaluated are deleted. People of the range not evaluated (who turned
    /// six, left the registry) lose their rows, except those in `keep` (the mothers, which
    /// the caller evaluates apart). `evaluated_on` is the day a row was last written: an
    /// unchanged row keeps it (no reader depends on it; readers judge the stored window for
    /// their own day). The existing rows are read in the caller's unit of work, so a write
    /// of the same people elsewhere waits for this one (SQLite: one writer) or conflicts.
    pub async fn sync_range(
        &self,
        uow: &mut UnitOfWork,
        after: Option<Uuid>,
        last: Option<Uuid>,
        all: &[Evaluated],
        keep: &HashSet<Uuid>,
    ) -> StoreResult<Synced> {
        let old_rows: Vec<StatusRow> = existing_in_range::<DbStatus>(
            uow,
            &format!("SELECT {STATUS_COLS} FROM child_services_status s WHERE TRUE"),
            "s.person_id",
            after,
            last,
        )
        .await?
        .into_iter()
        .map(StatusRow::try_from)
        .collect::<StoreResult<_>>()?;
        let old_bases: Vec<IndicatorBase> = existing_in_range::<DbBase>(
            uow,
            "SELECT * FROM child_indicator_base b WHERE TRUE",
            "b.person_id",
            after,
            last,
        )
        .await?
        .into_iter()
        .map(IndicatorBase::from)
        .collect();
        let evaluated: HashSet<Uuid> = all.iter().map(|e| e.person_id).collect();
        let plan = diff(all, &old_rows, &old_bases, &evaluated, keep);
        delete_rows(uow, &plan.gone_rows).await?;
        delete_people(uow, "child_indicator_base", &plan.gone_bases).await?;
        write_rows(uow, self.store.kind(), &plan.rows, ROW_UPSERT).await?;
        write_bases(uow, &plan.bases, BASE_UPSERT).await?;
        Ok(Synced {
            written: (plan.rows.len() + plan.bases.len()) as u64,
            removed: (plan.gone_rows.len() + plan.gone_bases.len()) as u64,
        })
    }

    /// The registry people born on or after `born_from` (a birth-date string prefix compare:
    /// imprecise dates are checked by the caller), alive, after `after` in id order.
    pub async fn children_page(
        &self,
        born_from: &str,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<ChildRow>> {
        let rows: Vec<ChildRow> = on_read!(self.pools(), |p| {
            let mut qb = QueryBuilder::new(
                "SELECT id, village_code, sex, birth_date, birth_registration \
                 FROM registry_people WHERE died_on IS NULL AND birth_date >= ",
            );
            qb.push_bind(born_from.to_string());
            if let Some(a) = after {
                qb.push(" AND id > ").push_bind(a);
            }
            qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
            qb.build_query_as().fetch_all(p).await?
        });
        Ok(rows)
    }

    /// The facts the schedules read of every registry person whose id is in `first..=last`
    /// (the batch recompute reads a page of children this way: one range scan per table
    /// rather than a list of ids). People without facts are absent.
    pub async fn facts_between(
        &self,
        first: Uuid,
        last: Uuid,
    ) -> StoreResult<HashMap<Uuid, ChildFacts>> {
        let mut out: HashMap<Uuid, ChildFacts> = Default::default();
        // The two large tables packed one row per person (see `child_packed`).
        let kind = self.store.kind();
        for (id, packed) in self
            .in_range::<DbPacked>(child_packed::doses_sql(kind), first, last)
            .await?
        {
            out.entry(id).or_default().doses = child_packed::unpack_doses(&packed)?;
        }
        for (id, packed) in self
            .in_range::<DbPacked>(child_packed::measures_sql(kind), first, last)
            .await?
        {
            out.entry(id).or_default().measurements = child_packed::unpack_measures(&packed)?;
        }
        for r in self
            .in_range::<DbPregnancy>(PREGNANCIES_IN_RANGE, first, last)
            .await?
        {
            out.entry(r.person_id)
                .or_default()
                .pregnancies
                .push(PregnancyFact {
                    lmp: r.lmp,
                    edd: r.edd,
                    ended: r.outcome.is_some(),
                    outcome_on: r.outcome_on,
                });
        }
        for r in self
            .in_range::<DbDated>(CONTACTS_IN_RANGE, first, last)
            .await?
        {
            out.entry(r.person_id)
                .or_default()
                .contacts
                .push(ContactFact {
                    kind: r.kind,
                    on: r.occurred_on,
                });
        }
        for r in self
            .in_range::<DbDated>(ENROLMENTS_IN_RANGE, first, last)
            .await?
        {
            out.entry(r.person_id)
                .or_default()
                .enrolled_on
                .push(r.occurred_on);
        }
        Ok(out)
    }

    async fn in_range<T>(&self, sql: &str, first: Uuid, last: Uuid) -> StoreResult<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        let rows: Vec<T> = on_read!(self.pools(), |p| {
            sqlx::query_as(sql)
                .bind(first)
                .bind(last)
                .fetch_all(p)
                .await?
        });
        Ok(rows)
    }

    /// Mothers whose services depend on more than their own birth date: a pregnancy received,
    /// or a registry child born on or after `born_from`.
    pub async fn mothers(&self, born_from: &str) -> StoreResult<Vec<Uuid>> {
        let ids: Vec<Uuid> = on_read!(self.pools(), |p| {
            sqlx::query_scalar(
                "SELECT person_id FROM child_pregnancies WHERE person_id IS NOT NULL \
                 UNION SELECT mother_id FROM registry_people WHERE mother_id IS NOT NULL \
                 AND birth_date >= $1",
            )
            .bind(born_from.to_string())
            .fetch_all(p)
            .await?
        });
        Ok(ids)
    }

    /// The stored occurrences of these persons, in order.
    pub async fn rows_of(&self, ids: &[Uuid]) -> StoreResult<Vec<StatusRow>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(INSERT_ROWS) {
            let rows: Vec<DbStatus> = on_read!(self.pools(), |p| {
                let mut qb = QueryBuilder::new(format!(
                    "SELECT {STATUS_COLS} FROM child_services_status s WHERE s.person_id IN ("
                ));
                let mut sep = qb.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                qb.push(") ORDER BY s.person_id, s.schedule, s.service, s.occurrence");
                qb.build_query_as().fetch_all(p).await?
            });
            for r in rows {
                out.push(r.try_into()?);
            }
        }
        Ok(out)
    }

    /// Open occurrences (not completed) of children in `area` whose recommended window ended
    /// before `day`, by village and child; at most `limit` children. The caller decides the
    /// status on `day` with the domain's rule. Returns the rows and whether children were left
    /// out.
    pub async fn open_past_due(
        &self,
        scope: &AreaScope,
        area: &str,
        day: NaiveDate,
        limit: u32,
    ) -> StoreResult<(Vec<OpenRow>, bool)> {
        let (lo, hi) = area_range(area);
        let rows: Vec<DbOpen> = on_read!(self.pools(), |p| {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {STATUS_COLS}, p.given_name, p.family_name, p.birth_date AS birth_date, \
                 p.household_id FROM child_services_status s \
                 JOIN registry_people p ON p.id = s.person_id \
                 JOIN child_indicator_base b ON b.person_id = s.person_id \
                 WHERE s.completed_on IS NULL AND s.village_code >= "
            ));
            qb.push_bind(lo.clone())
                .push(" AND s.village_code < ")
                .push_bind(hi.clone())
                .push(" AND s.due_by < ")
                .push_bind(day)
                .push(" AND (s.closes IS NULL OR s.closes >= ")
                .push_bind(day)
                .push(")");
            push_scope(&mut qb, "s.village_code", scope);
            // The first `limit` children with such occurrences, by village then age.
            qb.push(
                " AND s.person_id IN (SELECT DISTINCT x.person_id FROM child_services_status x \
                 JOIN child_indicator_base y ON y.person_id = x.person_id \
                 WHERE x.completed_on IS NULL AND x.village_code >= ",
            )
            .push_bind(lo)
            .push(" AND x.village_code < ")
            .push_bind(hi)
            .push(" AND x.due_by < ")
            .push_bind(day)
            .push(" AND (x.closes IS NULL OR x.closes >= ")
            .push_bind(day)
            .push(")");
            push_scope(&mut qb, "x.village_code", scope);
            qb.push(" ORDER BY x.person_id LIMIT ")
                .push_bind(i64::from(limit) + 1)
                .push(") ORDER BY s.village_code, b.birth_date, s.person_id, s.schedule, s.due_by");
            qb.build_query_as().fetch_all(p).await?
        });
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            seen.insert(r.s.person_id);
            if seen.len() > limit as usize {
                continue;
            }
            out.push(OpenRow {
                row: r.s.try_into()?,
                given_name: r.given_name,
                family_name: r.family_name,
                birth_date: r.birth_date,
                household_id: r.household_id,
            });
        }
        let truncated = seen.len() > limit as usize;
        Ok((out, truncated))
    }

    /// Children under six of `area` with a materialised record.
    pub async fn children_in(&self, scope: &AreaScope, area: &str) -> StoreResult<i64> {
        let (lo, hi) = area_range(area);
        let n: i64 = on_read!(self.pools(), |p| {
            let mut qb = QueryBuilder::new(
                "SELECT count(*) FROM child_indicator_base b WHERE b.village_code >= ",
            );
            qb.push_bind(lo)
                .push(" AND b.village_code < ")
                .push_bind(hi);
            push_scope(&mut qb, "b.village_code", scope);
            qb.build_query_scalar().fetch_one(p).await?
        });
        Ok(n)
    }

    /// One indicator counted in `area` and each of its sub-areas of code length `sub_len`
    /// (the area itself when it is a village).
    pub async fn counts(
        &self,
        scope: &AreaScope,
        area: &str,
        sub_len: usize,
        code: IndicatorCode,
        cohort: &Cohort,
    ) -> StoreResult<Vec<AreaCount>> {
        let r = rule(code);
        let rows: Vec<DbCount> = on_read!(self.pools(), |p| {
            let mut qb = QueryBuilder::new(format!(
                "SELECT substr(b.village_code, 1, {sub_len}) AS area, \
                 CAST(count(*) AS BIGINT) AS denominator, \
                 CAST(COALESCE(sum(CASE WHEN "
            ));
            push_rule(&mut qb, r.counts, cohort);
            qb.push(" THEN 1 ELSE 0 END), 0) AS BIGINT) AS numerator, ");
            let grade = match code {
                IndicatorCode::Stunting => "b.stunting",
                IndicatorCode::Wasting => "b.wasting",
                _ => "NULL",
            };
            qb.push(format!(
                "CAST(COALESCE(sum(CASE WHEN {grade} = 2 THEN 1 ELSE 0 END), 0) AS BIGINT) \
                 AS moderate, \
                 CAST(COALESCE(sum(CASE WHEN {grade} = 3 THEN 1 ELSE 0 END), 0) AS BIGINT) \
                 AS severe FROM child_indicator_base b"
            ));
            push_cohort(&mut qb, area, cohort, scope);
            qb.push(" AND ");
            push_rule(&mut qb, r.among, cohort);
            qb.push(" GROUP BY substr(b.village_code, 1, ")
                .push(sub_len.to_string())
                .push(") ORDER BY 1");
            qb.build_query_as().fetch_all(p).await?
        });
        Ok(rows
            .into_iter()
            .map(|r| AreaCount {
                area: r.area,
                denominator: r.denominator,
                numerator: r.numerator,
                moderate: r.moderate,
                severe: r.severe,
            })
            .collect())
    }

    /// The drill-down: the children of the indicator's denominator in `area` outside its
    /// numerator (coverage), or inside it (prevalence: the cases), by village and age; at
    /// most `limit`.
    pub async fn listed(
        &self,
        scope: &AreaScope,
        area: &str,
        code: IndicatorCode,
        cohort: &Cohort,
        limit: u32,
    ) -> StoreResult<Vec<ListedChild>> {
        let r = rule(code);
        let rows: Vec<ListedChild> = on_read!(self.pools(), |p| {
            let mut qb = QueryBuilder::new(
                "SELECT b.person_id, p.given_name, p.family_name, b.village_code, b.birth_date, \
                 p.household_id, b.growth_on, b.stunting, b.wasting \
                 FROM child_indicator_base b JOIN registry_people p ON p.id = b.person_id",
            );
            push_cohort(&mut qb, area, cohort, scope);
            qb.push(" AND ");
            push_rule(&mut qb, r.among, cohort);
            // NULL (not judged) counts as "not in the numerator".
            qb.push(" AND (CASE WHEN ");
            push_rule(&mut qb, r.counts, cohort);
            qb.push(if code.is_prevalence() {
                " THEN 1 ELSE 0 END) = 1"
            } else {
                " THEN 0 ELSE 1 END) = 1"
            });
            qb.push(" ORDER BY b.village_code, b.birth_date, b.person_id LIMIT ")
                .push_bind(i64::from(limit));
            qb.build_query_as().fetch_all(p).await?
        });
        Ok(rows)
    }

    /// Records DHIS2's import summary for one sector and month (the latest push wins).
    pub async fn record_push(&self, uow: &mut UnitOfWork, p: &PushRecord) -> StoreResult<()> {
        let n = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
        on_uow!(uow, |c| {
            sqlx::query(
                "INSERT INTO dhis2_aggregate_pushes (sector_code, period, org_unit, status, \
                 imported, updated, ignored, deleted, conflicts, values_sent, pushed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (sector_code, period) DO UPDATE SET org_unit = excluded.org_unit, \
                 status = excluded.status, imported = excluded.imported, \
                 updated = excluded.updated, ignored = excluded.ignored, \
                 deleted = excluded.deleted, conflicts = excluded.conflicts, \
                 values_sent = excluded.values_sent, pushed_at = excluded.pushed_at",
            )
            .bind(&p.sector_code)
            .bind(&p.period)
            .bind(&p.org_unit)
            .bind(&p.status)
            .bind(n(p.imported))
            .bind(n(p.updated))
            .bind(n(p.ignored))
            .bind(n(p.deleted))
            .bind(Json(&p.conflicts))
            .bind(n(p.values_sent))
            .bind(p.pushed_at)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// The pushes of `period` (`YYYYMM`) for sectors in `scope`, by sector.
    pub async fn pushes(&self, scope: &AreaScope, period: &str) -> StoreResult<Vec<PushRecord>> {
        let rows: Vec<DbPush> = on_read!(self.pools(), |p| {
            let mut qb = QueryBuilder::new("SELECT * FROM dhis2_aggregate_pushes WHERE period = ");
            qb.push_bind(period.to_string());
            push_scope(&mut qb, "sector_code", scope);
            qb.push(" ORDER BY sector_code");
            qb.build_query_as().fetch_all(p).await?
        });
        Ok(rows
            .into_iter()
            .map(|r| PushRecord {
                sector_code: r.sector_code,
                period: r.period,
                org_unit: r.org_unit,
                status: r.status,
                imported: r.imported.into(),
                updated: r.updated.into(),
                ignored: r.ignored.into(),
                deleted: r.deleted.into(),
                conflicts: r.conflicts.0,
                values_sent: r.values_sent.into(),
                pushed_at: r.pushed_at,
            })
            .collect())
    }
}
