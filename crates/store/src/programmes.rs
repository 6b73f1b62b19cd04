//! Storage of the `programmes` context (schema `0016_targeting_programmes`): agencies,
//! programmes, enrolments and their transitions.
//!
//! Capacity and budget hold under concurrent enrolment: every write that can take or free a
//! place first locks the programme's row (PostgreSQL `FOR UPDATE`; SQLite has one writer), then
//! counts the places taken, in the same transaction as the write.

use chrono::{DateTime, Utc};
use inkingi_domain::identity::AreaScope;
use inkingi_domain::programmes::{Agency, EnrolmentStatus, Programme, TransitionError};
use serde::Serialize;
use sqlx::types::Json;
use sqlx::QueryBuilder;
use uuid::Uuid;

use crate::notifications::NotifyJob;
use crate::registry::push_scope;
use crate::shared_sql::{on_read, on_uow, Pools};
use crate::{BackendKind, Store, StoreError, StoreResult, UnitOfWork};

/// A programme as stored, with its version (raised by every change).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredProgramme {
    #[serde(flatten)]
    pub programme: Programme,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// One beneficiary's enrolment in one programme.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Enrolment {
    pub id: Uuid,
    pub programme: String,
    pub household_id: Uuid,
    /// The member enrolled, for individual programmes.
    pub person_id: Option<Uuid>,
    pub village: String,
    pub status: EnrolmentStatus,
    /// The household's score when it was found eligible.
    pub score: Option<f64>,
    /// Benefit per cycle, in francs.
    pub amount: i64,
    /// The eligibility decision, explained.
    pub decision: String,
    /// Of the last transition.
    pub reason: Option<String>,
    /// When it was first enrolled (not waiting).
    pub enrolled_since: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One transition of an enrolment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnrolmentEvent {
    pub id: Uuid,
    pub from: Option<EnrolmentStatus>,
    pub to: EnrolmentStatus,
    pub reason: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// A beneficiary found eligible, to enrol (or put on the waiting list).
#[derive(Debug, Clone)]
pub struct NewEnrolment {
    pub household_id: Uuid,
    pub person_id: Option<Uuid>,
    pub village: String,
    pub score: Option<f64>,
    pub amount: u64,
    pub decision: String,
    pub actor: String,
    pub reason: Option<String>,
}

/// Filters of [`Programmes::enrolments`]. The waiting list comes poorest score first, the
/// others oldest first.
#[derive(Debug, Clone, Default)]
pub struct EnrolmentQuery {
    pub programme: Option<String>,
    pub status: Option<EnrolmentStatus>,
    pub household: Option<Uuid>,
    pub limit: u32,
}

/// The programme tables, reached through [`Store::programmes`].
pub struct Programmes<'a> {
    pub(crate) store: &'a Store,
}

type EnrolmentRow = (
    Uuid,
    String,
    Uuid,
    Option<Uuid>,
    String,
    String,
    Option<f64>,
    i64,
    String,
    Option<String>,
    Option<DateTime<Utc>>,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
);

const ENROLMENT_COLS: &str = "id, programme_code, household_id, person_id, village_code, status, \
    score, amount, decision, reason, enrolled_since, version, created_at, updated_at";

fn bad(what: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(what.to_string())
}

fn status(s: &str) -> StoreResult<EnrolmentStatus> {
    EnrolmentStatus::parse(s).ok_or_else(|| bad(format!("stored enrolment status '{s}'")))
}

fn enrolment_from(r: EnrolmentRow) -> StoreResult<Enrolment> {
    Ok(Enrolment {
        id: r.0,
        programme: r.1,
        household_id: r.2,
        person_id: r.3,
        village: r.4,
        status: status(&r.5)?,
        score: r.6,
        amount: r.7,
        decision: r.8,
        reason: r.9,
        enrolled_since: r.10,
        version: r.11,
        created_at: r.12,
        updated_at: r.13,
    })
}

/// A refused lifecycle move, as the API reports it (422).
pub fn transition_refused(e: TransitionError) -> StoreError {
    StoreError::Invalid(format!("status: {e}"))
}

impl Programmes<'_> {
    fn pools(&self) -> Pools {
        self.store.adapter.pools()
    }

    /// Creates or replaces an agency.
    pub async fn put_agency(&self, a: &Agency) -> StoreResult<()> {
        let mut uow = self.store.begin().await?;
        on_uow!(uow, |c| {
            sqlx::query(
                "INSERT INTO programme_agencies (code, body, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (code) DO UPDATE SET body = excluded.body, \
                 updated_at = excluded.updated_at",
            )
            .bind(&a.code)
            .bind(Json(a))
            .bind(Utc::now())
            .execute(&mut *c)
            .await?;
        });
        uow.commit().await
    }

    pub async fn agencies(&self) -> StoreResult<Vec<Agency>> {
        let rows: Vec<Json<Agency>> = on_read!(self.pools(), |p| {
            sqlx::query_scalar("SELECT body FROM programme_agencies ORDER BY code")
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Creates a programme (version 1) or replaces it if its stored version is `expected`
    /// (`None`: it must not exist yet). The programme must have been checked by the caller.
    pub async fn put_programme(
        &self,
        p: &Programme,
        expected: Option<i64>,
        by: &str,
    ) -> StoreResult<StoredProgramme> {
        let mut uow = self.store.begin().await?;
        let now = Utc::now();
        let agency: Option<String> = on_uow!(uow, |c| {
            sqlx::query_scalar("SELECT code FROM programme_agencies WHERE code = $1")
                .bind(&p.agency)
                .fetch_optional(&mut *c)
                .await?
        });
        if agency.is_none() {
            return Err(bad(format!(
                "agency: no agency has the code '{}'",
                p.agency
            )));
        }
        // Locked on PostgreSQL so that two editors of one version cannot both pass the check.
        let sql = match self.store.kind() {
            BackendKind::Postgres => "SELECT version FROM programmes WHERE code = $1 FOR UPDATE",
            BackendKind::Sqlite => "SELECT version FROM programmes WHERE code = $1",
        };
        let current: Option<i64> = on_uow!(uow, |c| {
            sqlx::query_scalar(sql)
                .bind(&p.code)
                .fetch_optional(&mut *c)
                .await?
        });
        let version = match (current, expected) {
            (None, None) => 1,
            (Some(cur), Some(exp)) if cur == exp => cur + 1,
            (Some(cur), Some(exp)) => return Err(crate::registry::stale("programme", exp, cur)),
            (Some(_), None) => {
                return Err(StoreError::Conflict(format!(
                    "code: programme {} already exists",
                    p.code
                )))
            }
            (None, Some(_)) => return Err(StoreError::NotFound(format!("programme {}", p.code))),
        };
        on_uow!(uow, |c| {
            sqlx::query(
                "INSERT INTO programmes (code, agency_code, body, version, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (code) DO UPDATE SET \
                 agency_code = excluded.agency_code, body = excluded.body, \
                 version = excluded.version, updated_at = excluded.updated_at, \
                 updated_by = excluded.updated_by",
            )
            .bind(&p.code)
            .bind(&p.agency)
            .bind(Json(p))
            .bind(version)
            .bind(now)
            .bind(by)
            .execute(&mut *c)
            .await?;
        });
        uow.commit().await?;
        Ok(StoredProgramme {
            programme: p.clone(),
            version,
            updated_at: now,
            updated_by: by.to_string(),
        })
    }

    /// Programmes by code; only `code` when given.
    pub async fn programmes(&self, code: Option<&str>) -> StoreResult<Vec<StoredProgramme>> {
        type Row = (Json<Programme>, i64, DateTime<Utc>, String);
        let rows: Vec<Row> = on_read!(self.pools(), |p| {
            sqlx::query_as(
                "SELECT body, version, updated_at, updated_by FROM programmes \
                 WHERE ($1 IS NULL OR code = $1) ORDER BY code",
            )
            .bind(code)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(p, version, updated_at, updated_by)| StoredProgramme {
                programme: p.0,
                version,
                updated_at,
                updated_by,
            })
            .collect())
    }

    pub async fn programme(&self, code: &str) -> StoreResult<Option<StoredProgramme>> {
        Ok(self.programmes(Some(code)).await?.pop())
    }

    /// Locks the programme's row for the rest of the transaction and returns it.
    async fn lock(&self, uow: &mut UnitOfWork, code: &str) -> StoreResult<Programme> {
        let sql = match self.store.kind() {
            BackendKind::Postgres => "SELECT body FROM programmes WHERE code = $1 FOR UPDATE",
            BackendKind::Sqlite => "SELECT body FROM programmes WHERE code = $1",
        };
        let row: Option<Json<Programme>> = on_uow!(uow, |c| {
            sqlx::query_scalar(sql)
                .bind(code)
                .fetch_optional(&mut *c)
                .await?
        });
        row.map(|r| r.0)
            .ok_or_else(|| StoreError::NotFound(format!("programme {code}")))
    }

    /// Whether one more place of `amount` fits the programme's capacity and budget.
    async fn has_room(
        &self,
        uow: &mut UnitOfWork,
        p: &Programme,
        amount: u64,
    ) -> StoreResult<bool> {
        let (taken, paid): (i64, i64) = on_uow!(uow, |c| {
            sqlx::query_as(
                "SELECT count(*), CAST(coalesce(sum(amount), 0) AS BIGINT) FROM programme_enrolments \
                 WHERE programme_code = $1 AND status IN ('enrolled', 'suspended')",
            )
            .bind(&p.code)
            .fetch_one(&mut *c)
            .await?
        });
        let seats = p.capacity.is_none_or(|cap| taken < i64::from(cap));
        let money = p
            .budget
            .is_none_or(|b| (paid.max(0) as u64).saturating_add(amount) <= b);
        Ok(seats && money)
    }

    async fn insert_event(
        &self,
        uow: &mut UnitOfWork,
        e: &Enrolment,
        from: Option<EnrolmentStatus>,
        actor: &str,
    ) -> StoreResult<()> {
        let event_id = Uuid::now_v7();
        on_uow!(uow, |c| {
            sqlx::query(
                "INSERT INTO programme_enrolment_events (id, enrolment_id, programme_code, \
                 from_status, to_status, reason, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(event_id)
            .bind(e.id)
            .bind(&e.programme)
            .bind(from.map(|s| s.as_str()))
            .bind(e.status.as_str())
            .bind(&e.reason)
            .bind(actor)
            .bind(e.updated_at)
            .execute(&mut *c)
            .await?;
        });
        // The beneficiary hears of every settled move; `eligible` lasts only until the same
        // transaction enrols or queues them.
        if e.status != EnrolmentStatus::Eligible {
            let job = NotifyJob {
                key: format!("enrolment-event:{event_id}"),
                template: format!("enrolment.{}", e.status),
                household_id: e.household_id,
                person_id: e.person_id,
                village: e.village.clone(),
                params: serde_json::json!({
                    "programme": e.programme, "status": e.status, "reason": e.reason,
                }),
            };
            self.store.notifications().enqueue(uow, &job).await?;
        }
        Ok(())
    }

    /// Records a beneficiary found eligible and enrols them if the programme has room, else
    /// puts them on the waiting list; both steps are events. One open enrolment per subject.
    pub async fn enrol(
        &self,
        uow: &mut UnitOfWork,
        code: &str,
        new: &NewEnrolment,
    ) -> StoreResult<Enrolment> {
        let p = self.lock(uow, code).await?;
        let now = Utc::now();
        let mut e = Enrolment {
            id: Uuid::now_v7(),
            programme: code.to_string(),
            household_id: new.household_id,
            person_id: new.person_id,
            village: new.village.clone(),
            status: EnrolmentStatus::Eligible,
            score: new.score,
            amount: i64::try_from(new.amount).map_err(bad)?,
            decision: new.decision.clone(),
            reason: new.reason.clone(),
            enrolled_since: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.insert_event(uow, &e, None, &new.actor).await?;
        e.status = if self.has_room(uow, &p, new.amount).await? {
            e.enrolled_since = Some(now);
            EnrolmentStatus::Enrolled
        } else {
            EnrolmentStatus::Waiting
        };
        let subject = new.person_id.unwrap_or(new.household_id);
        let inserted = on_uow!(uow, |c| {
            sqlx::query(&format!(
                "INSERT INTO programme_enrolments ({ENROLMENT_COLS}, subject_id) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ))
            .bind(e.id)
            .bind(&e.programme)
            .bind(e.household_id)
            .bind(e.person_id)
            .bind(&e.village)
            .bind(e.status.as_str())
            .bind(e.score)
            .bind(e.amount)
            .bind(&e.decision)
            .bind(&e.reason)
            .bind(e.enrolled_since)
            .bind(e.version)
            .bind(e.created_at)
            .bind(e.updated_at)
            .bind(subject)
            .execute(&mut *c)
            .await
            .map(|_| ())
        });
        match inserted.map_err(StoreError::from) {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(StoreError::Conflict(format!(
                    "{}: already has an open enrolment in {code}",
                    if new.person_id.is_some() {
                        "person"
                    } else {
                        "household"
                    }
                )))
            }
            Err(other) => return Err(other),
        }
        self.insert_event(uow, &e, Some(EnrolmentStatus::Eligible), &new.actor)
            .await?;
        Ok(e)
    }

    async fn load(
        &self,
        uow: &mut UnitOfWork,
        scope: &AreaScope,
        id: Uuid,
    ) -> StoreResult<Option<Enrolment>> {
        let row: Option<EnrolmentRow> = on_uow!(uow, |c| {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {ENROLMENT_COLS} FROM programme_enrolments WHERE id = "
            ));
            qb.push_bind(id);
            push_scope(&mut qb, "village_code", scope);
            qb.build_query_as().fetch_optional(&mut *c).await?
        });
        row.map(enrolment_from).transpose()
    }

    async fn save(&self, uow: &mut UnitOfWork, e: &Enrolment, expected: i64) -> StoreResult<()> {
        let done = on_uow!(uow, |c| {
            sqlx::query(
                "UPDATE programme_enrolments SET status = $1, reason = $2, enrolled_since = $3, \
                 version = $4, updated_at = $5 WHERE id = $6 AND version = $7",
            )
            .bind(e.status.as_str())
            .bind(&e.reason)
            .bind(e.enrolled_since)
            .bind(e.version)
            .bind(e.updated_at)
            .bind(e.id)
            .bind(expected)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if done != 1 {
            return Err(crate::registry::stale("enrolment", expected, e.version));
        }
        Ok(())
    }

    /// Moves an enrolment (within `scope`) to `to` with `reason`, checking the lifecycle, the
    /// version the caller read (`expected`, when given) and, when it takes a place, the room
    /// left. A place freed goes to the first of the waiting list. Returns the enrolment and
    /// any enrolment promoted from the waiting list.
    #[allow(clippy::too_many_arguments)]
    pub async fn transition(
        &self,
        uow: &mut UnitOfWork,
        scope: &AreaScope,
        id: Uuid,
        expected: Option<i64>,
        to: EnrolmentStatus,
        reason: Option<String>,
        actor: &str,
    ) -> StoreResult<(Enrolment, Option<Enrolment>)> {
        let Some(peek) = self.load(uow, scope, id).await? else {
            return Err(StoreError::NotFound(format!("enrolment {id}")));
        };
        let p = self.lock(uow, &peek.programme).await?;
        // Read again under the programme's lock: a concurrent move may have won.
        let mut e = self
            .load(uow, scope, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("enrolment {id}")))?;
        if let Some(exp) = expected.filter(|x| *x != e.version) {
            return Err(crate::registry::stale("enrolment", exp, e.version));
        }
        let from = e.status;
        from.transition(to, reason.as_deref())
            .map_err(transition_refused)?;
        if to.holds_place()
            && !from.holds_place()
            && !self.has_room(uow, &p, e.amount.max(0) as u64).await?
        {
            return Err(StoreError::Conflict(format!(
                "capacity: programme {} is full; the enrolment stays {from}",
                p.code
            )));
        }
        let now = Utc::now();
        e.status = to;
        e.reason = reason;
        e.updated_at = now;
        if to == EnrolmentStatus::Enrolled && e.enrolled_since.is_none() {
            e.enrolled_since = Some(now);
        }
        let expected_now = e.version;
        e.version += 1;
        self.save(uow, &e, expected_now).await?;
        self.insert_event(uow, &e, Some(from), actor).await?;
        let promoted = if from.holds_place() && !to.holds_place() {
            self.promote(uow, &p, actor).await?
        } else {
            None
        };
        Ok((e, promoted))
    }

    /// Enrols the first of the waiting list (lowest score first) if there is room.
    async fn promote(
        &self,
        uow: &mut UnitOfWork,
        p: &Programme,
        actor: &str,
    ) -> StoreResult<Option<Enrolment>> {
        let row: Option<EnrolmentRow> = on_uow!(uow, |c| {
            sqlx::query_as(&format!(
                "SELECT {ENROLMENT_COLS} FROM programme_enrolments \
                 WHERE programme_code = $1 AND status = 'waiting' \
                 ORDER BY score IS NULL, score, created_at, id LIMIT 1"
            ))
            .bind(&p.code)
            .fetch_optional(&mut *c)
            .await?
        });
        let Some(mut e) = row.map(enrolment_from).transpose()? else {
            return Ok(None);
        };
        if !self.has_room(uow, p, e.amount.max(0) as u64).await? {
            return Ok(None);
        }
        let now = Utc::now();
        e.status = EnrolmentStatus::Enrolled;
        e.reason = Some("a place became free; first on the waiting list".into());
        e.enrolled_since = Some(now);
        e.updated_at = now;
        let expected = e.version;
        e.version += 1;
        self.save(uow, &e, expected).await?;
        self.insert_event(uow, &e, Some(EnrolmentStatus::Waiting), actor)
            .await?;
        Ok(Some(e))
    }

    /// Enrolments within `scope`.
    pub async fn enrolments(
        &self,
        scope: &AreaScope,
        q: &EnrolmentQuery,
    ) -> StoreResult<Vec<Enrolment>> {
        let rows: Vec<EnrolmentRow> = on_read!(self.pools(), |p| {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {ENROLMENT_COLS} FROM programme_enrolments WHERE 1 = 1"
            ));
            if let Some(code) = &q.programme {
                qb.push(" AND programme_code = ").push_bind(code.clone());
            }
            if let Some(s) = q.status {
                qb.push(" AND status = ").push_bind(s.as_str());
            }
            if let Some(h) = q.household {
                qb.push(" AND household_id = ").push_bind(h);
            }
            push_scope(&mut qb, "village_code", scope);
            if q.status == Some(EnrolmentStatus::Waiting) {
                qb.push(" ORDER BY score IS NULL, score, created_at, id");
            } else {
                qb.push(" ORDER BY created_at, id");
            }
            qb.push(" LIMIT ").push_bind(i64::from(q.limit.max(1)));
            qb.build_query_as().fetch_all(p).await?
        });
        rows.into_iter().map(enrolment_from).collect()
    }

    /// One enrolment within `scope`.
    pub async fn enrolment(&self, scope: &AreaScope, id: Uuid) -> StoreResult<Option<Enrolment>> {
        let row: Option<EnrolmentRow> = on_read!(self.pools(), |p| {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {ENROLMENT_COLS} FROM programme_enrolments WHERE id = "
            ));
            qb.push_bind(id);
            push_scope(&mut qb, "village_code", scope);
            qb.build_query_as().fetch_optional(p).await?
        });
        row.map(enrolment_from).transpose()
    }

    /// The transitions of an enrolment, oldest first (the caller checked its scope).
    pub async fn events(&self, enrolment_id: Uuid) -> StoreResult<Vec<EnrolmentEvent>> {
        type Row = (
            Uuid,
            Option<String>,
            String,
            Option<String>,
            String,
            DateTime<Utc>,
        );
        let rows: Vec<Row> = on_read!(self.pools(), |p| {
            sqlx::query_as(
                "SELECT id, from_status, to_status, reason, actor, at \
                 FROM programme_enrolment_events WHERE enrolment_id = $1 ORDER BY id",
            )
            .bind(enrolment_id)
            .fetch_all(p)
            .await?
        });
        rows.into_iter()
            .map(|(id, from, to, reason, actor, at)| {
                Ok(EnrolmentEvent {
                    id,
                    from: from.as_deref().map(status).transpose()?,
                    to: status(&to)?,
                    reason,
                    actor,
                    at,
                })
            })
            .collect()
    }
}

/// What loading a catalogue did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatalogueLoad {
    pub agencies: usize,
    pub programmes_created: usize,
    /// Already present (by code): left as they are, so local edits survive a reload.
    pub programmes_kept: usize,
}

/// Stores a checked catalogue: agencies are created or replaced, programmes created when their
/// code is new.
pub async fn load_catalogue(
    store: &Store,
    c: &inkingi_domain::programmes::Catalogue,
    by: &str,
) -> StoreResult<CatalogueLoad> {
    c.check().map_err(|e| bad(format!("catalogue, {e}")))?;
    let p = store.programmes();
    let mut out = CatalogueLoad::default();
    for a in &c.agencies {
        p.put_agency(a).await?;
        out.agencies += 1;
    }
    for prog in &c.programmes {
        match p.put_programme(prog, None, by).await {
            Ok(_) => out.programmes_created += 1,
            Err(StoreError::Conflict(_)) => out.programmes_kept += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// A programme's rule evaluated on a household (and member) as the registry holds them today.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub eligible: bool,
    /// The decision explained, e.g. `eligible: score 31 < 40 and …`.
    pub explanation: String,
    pub score: Option<f64>,
    /// The benefit per cycle for the household's size today.
    pub amount: u64,
    pub village: String,
}

/// Why a rule could not be evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotEvaluated {
    /// The household is not active (merged, dissolved) or does not exist.
    HouseholdInactive,
    /// The person named is not a living member of the household.
    NotALivingMember,
}

impl Programmes<'_> {
    /// Evaluates `p`'s rule on the household (and `person`, for individual programmes) with its
    /// current score and enrolments. Not scoped: callers check the household's scope first (the
    /// API) or act for the system (re-certification jobs). With `reassessing`, the programme's
    /// own enrolment is left out of `enrolled(…)`, so a rule such as `not enrolled("x")` does
    /// not turn a beneficiary of `x` ineligible for `x` itself.
    pub async fn evaluate(
        &self,
        p: &Programme,
        household: Uuid,
        person: Option<Uuid>,
        reassessing: bool,
    ) -> StoreResult<Result<Evaluation, NotEvaluated>> {
        let targeting = self.store.targeting();
        let Some(input) = targeting.scoring_input(household).await? else {
            return Ok(Err(NotEvaluated::HouseholdInactive));
        };
        let on = Utc::now().date_naive();
        let facts = input.facts(on);
        // Facts list living members in the input's order.
        let living: Vec<Uuid> = input
            .members
            .iter()
            .filter(|m| m.died_on.is_none_or(|d| d > on))
            .map(|m| m.person_id)
            .collect();
        let person_facts = match person {
            None => None,
            Some(pid) => match living.iter().position(|x| *x == pid) {
                Some(i) => facts.members.get(i),
                None => return Ok(Err(NotEvaluated::NotALivingMember)),
            },
        };
        let score = targeting.score(&AreaScope::national(), household).await?;
        let enrolled: Vec<String> = on_read!(self.pools(), |pool| {
            sqlx::query_scalar(
                "SELECT programme_code FROM programme_enrolments \
                 WHERE household_id = $1 AND status = 'enrolled'",
            )
            .bind(household)
            .fetch_all(pool)
            .await?
        });
        let enrolled: Vec<String> = enrolled
            .into_iter()
            .filter(|c| !(reassessing && *c == p.code))
            .collect();
        let rule = p
            .rule()
            .map_err(|e| bad(format!("stored rule of programme {}: {e}", p.code)))?;
        let subject = inkingi_domain::targeting::rules::Subject {
            household: &facts,
            person: person_facts,
            score: score.as_ref().map(|s| s.score),
            category: score.as_ref().map(|s| s.category.as_str()),
            enrolments: &enrolled,
        };
        let decision = rule.explain(&subject);
        Ok(Ok(Evaluation {
            eligible: decision.eligible,
            explanation: decision.to_string(),
            score: score.map(|s| s.score),
            amount: p.benefit.amount(facts.size),
            village: input.village.as_str().to_string(),
        }))
    }

    /// Exits every open enrolment (eligible, waiting, enrolled, suspended) of `person_id` with
    /// the reason `death`, in `uow` (the one that records the death). Places freed go to the
    /// waiting lists as any exit's do. Returns the enrolments exited.
    pub async fn exit_on_death(
        &self,
        uow: &mut UnitOfWork,
        person_id: Uuid,
        actor: &str,
    ) -> StoreResult<Vec<Enrolment>> {
        let ids: Vec<Uuid> = on_uow!(uow, |c| {
            sqlx::query_scalar(
                "SELECT id FROM programme_enrolments WHERE person_id = $1 \
                 AND status IN ('eligible', 'waiting', 'enrolled', 'suspended') \
                 ORDER BY created_at, id",
            )
            .bind(person_id)
            .fetch_all(&mut *c)
            .await?
        });
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let (e, _) = self
                .transition(
                    uow,
                    &AreaScope::national(),
                    id,
                    None,
                    EnrolmentStatus::Exited,
                    Some("death".into()),
                    actor,
                )
                .await?;
            out.push(e);
        }
        Ok(out)
    }

    /// Open enrolments (waiting, enrolled, suspended) of a household and its members, in any
    /// programme. Not scoped: for system jobs.
    pub async fn open_enrolments_of(&self, household: Uuid) -> StoreResult<Vec<Enrolment>> {
        let rows: Vec<EnrolmentRow> = on_read!(self.pools(), |p| {
            sqlx::query_as(&format!(
                "SELECT {ENROLMENT_COLS} FROM programme_enrolments WHERE household_id = $1 \
                 AND status IN ('waiting', 'enrolled', 'suspended') ORDER BY created_at, id"
            ))
            .bind(household)
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(enrolment_from).collect()
    }
}
