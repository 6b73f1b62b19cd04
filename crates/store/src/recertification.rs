//! Re-certification decisions (schema `0017_cycles`). When a beneficiary's household data
//! changes, the `programmes.recertify` job re-evaluates each programme's rule; a beneficiary
//! who no longer meets it gets an open decision here, never an automatic exit. A reviewer keeps
//! them enrolled or exits them with a reason; the exit is an ordinary enrolment transition
//! (which frees the place for the waiting list) in the same transaction as the decision.

use chrono::{DateTime, Utc};
use inkingi_domain::identity::AreaScope;
use inkingi_domain::programmes::EnrolmentStatus;
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;
use uuid::Uuid;

use crate::notifications::NotifyJob;
use crate::programmes::Enrolment;
use crate::registry::push_scope;
use crate::shared_sql::{on_read, on_uow, Pools};
use crate::{Store, StoreError, StoreResult, UnitOfWork};

/// Re-evaluates the open enrolments of a household after its data changed (and its score was
/// recomputed). Enqueued by the `targeting.rescore` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecertifyJob {
    pub household_id: Uuid,
}

impl crate::jobs::Job for RecertifyJob {
    const KIND: &'static str = "programmes.recertify";
    const MAX_ATTEMPTS: u32 = 5;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecertStatus {
    Open,
    /// Kept enrolled by a reviewer.
    Kept,
    /// Exited by a reviewer, with a reason.
    Exited,
}

impl RecertStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            RecertStatus::Open => "open",
            RecertStatus::Kept => "kept",
            RecertStatus::Exited => "exited",
        }
    }

    pub fn parse(s: &str) -> Option<RecertStatus> {
        [RecertStatus::Open, RecertStatus::Kept, RecertStatus::Exited]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// A decision to take about one enrolment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recertification {
    pub id: Uuid,
    pub enrolment_id: Uuid,
    pub programme: String,
    pub household_id: Uuid,
    pub person_id: Option<Uuid>,
    pub village: String,
    pub status: RecertStatus,
    /// The rule's explanation when it was re-evaluated.
    pub finding: String,
    pub opened_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub reason: Option<String>,
    pub version: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    enrolment_id: Uuid,
    programme_code: String,
    household_id: Uuid,
    person_id: Option<Uuid>,
    village_code: String,
    status: String,
    finding: String,
    opened_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    decided_by: Option<String>,
    reason: Option<String>,
    version: i64,
}

const COLS: &str = "id, enrolment_id, programme_code, household_id, person_id, village_code, \
    status, finding, opened_at, decided_at, decided_by, reason, version";

impl TryFrom<Row> for Recertification {
    type Error = StoreError;
    fn try_from(r: Row) -> StoreResult<Recertification> {
        Ok(Recertification {
            id: r.id,
            enrolment_id: r.enrolment_id,
            programme: r.programme_code,
            household_id: r.household_id,
            person_id: r.person_id,
            village: r.village_code,
            status: RecertStatus::parse(&r.status).ok_or_else(|| {
                StoreError::Invalid(format!("stored re-certification status '{}'", r.status))
            })?,
            finding: r.finding,
            opened_at: r.opened_at,
            decided_at: r.decided_at,
            decided_by: r.decided_by,
            reason: r.reason,
            version: r.version,
        })
    }
}

/// What a reviewer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecertDecision {
    Keep,
    Exit,
}

/// The outcome of a decision: the decision, and for an exit the enrolment moved and the one
/// promoted from the waiting list into the freed place.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decided {
    pub recertification: Recertification,
    pub enrolment: Option<Enrolment>,
    pub promoted: Option<Enrolment>,
}

/// The decision queue, reached through [`Store::recertifications`].
pub struct Recertifications<'a> {
    pub(crate) store: &'a Store,
}

impl Recertifications<'_> {
    fn pools(&self) -> Pools {
        self.store.adapter.pools()
    }

    /// Opens a decision for `e` unless one is open already; true when it opened one.
    pub async fn open(&self, e: &Enrolment, finding: &str) -> StoreResult<bool> {
        let mut uow = self.store.begin().await?;
        let n = on_uow!(uow, |c| {
            sqlx::query(
                "INSERT INTO programme_recertifications (id, enrolment_id, programme_code, \
                 household_id, person_id, village_code, status, finding, opened_at, version) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, 1) \
                 ON CONFLICT (enrolment_id) WHERE status = 'open' DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(e.id)
            .bind(&e.programme)
            .bind(e.household_id)
            .bind(e.person_id)
            .bind(&e.village)
            .bind(finding)
            .bind(Utc::now())
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        uow.commit().await?;
        Ok(n == 1)
    }

    /// Decisions within `scope`, of one programme and status when given, oldest first.
    pub async fn list(
        &self,
        scope: &AreaScope,
        programme: Option<&str>,
        status: Option<RecertStatus>,
        limit: u32,
    ) -> StoreResult<Vec<Recertification>> {
        let rows: Vec<Row> = on_read!(self.pools(), |p| {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {COLS} FROM programme_recertifications WHERE 1 = 1"
            ));
            if let Some(code) = programme {
                qb.push(" AND programme_code = ")
                    .push_bind(code.to_string());
            }
            if let Some(s) = status {
                qb.push(" AND status = ").push_bind(s.as_str());
            }
            push_scope(&mut qb, "village_code", scope);
            qb.push(" ORDER BY opened_at, id LIMIT ")
                .push_bind(i64::from(limit.max(1)));
            qb.build_query_as().fetch_all(p).await?
        });
        rows.into_iter().map(Recertification::try_from).collect()
    }

    /// One decision within `scope`.
    pub async fn get(&self, scope: &AreaScope, id: Uuid) -> StoreResult<Option<Recertification>> {
        let row: Option<Row> = on_read!(self.pools(), |p| {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {COLS} FROM programme_recertifications WHERE id = "
            ));
            qb.push_bind(id);
            push_scope(&mut qb, "village_code", scope);
            qb.build_query_as().fetch_optional(p).await?
        });
        row.map(Recertification::try_from).transpose()
    }

    /// Records a reviewer's decision on an open re-certification in the caller's transaction.
    /// Of two concurrent decisions one wins; the other is a conflict. An exit moves the
    /// enrolment to `exited` with the reason (freeing its place); keeping queues a notification.
    pub async fn decide(
        &self,
        uow: &mut UnitOfWork,
        scope: &AreaScope,
        id: Uuid,
        decision: RecertDecision,
        reason: Option<String>,
        actor: &str,
    ) -> StoreResult<Decided> {
        let Some(mut r) = self.get(scope, id).await? else {
            return Err(StoreError::NotFound(format!("re-certification {id}")));
        };
        let status = match decision {
            RecertDecision::Keep => RecertStatus::Kept,
            RecertDecision::Exit => RecertStatus::Exited,
        };
        let now = Utc::now();
        let n = on_uow!(uow, |c| {
            sqlx::query(
                "UPDATE programme_recertifications SET status = $1, decided_at = $2, \
                 decided_by = $3, reason = $4, version = version + 1 \
                 WHERE id = $5 AND status = 'open'",
            )
            .bind(status.as_str())
            .bind(now)
            .bind(actor)
            .bind(&reason)
            .bind(id)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if n != 1 {
            return Err(StoreError::Conflict(format!(
                "decision: re-certification {id} was decided already"
            )));
        }
        r.status = status;
        r.decided_at = Some(now);
        r.decided_by = Some(actor.to_string());
        r.reason = reason.clone();
        r.version += 1;
        let mut out = Decided {
            recertification: r.clone(),
            enrolment: None,
            promoted: None,
        };
        match decision {
            RecertDecision::Exit => {
                let (e, promoted) = self
                    .store
                    .programmes()
                    .transition(
                        uow,
                        scope,
                        r.enrolment_id,
                        None,
                        EnrolmentStatus::Exited,
                        reason,
                        actor,
                    )
                    .await?;
                out.enrolment = Some(e);
                out.promoted = promoted;
            }
            RecertDecision::Keep => {
                let job = NotifyJob {
                    key: format!("recertification:{id}"),
                    template: "recertification.kept".into(),
                    household_id: r.household_id,
                    person_id: r.person_id,
                    village: r.village.clone(),
                    params: serde_json::json!({"programme": r.programme, "reason": r.reason}),
                };
                self.store.notifications().enqueue(uow, &job).await?;
            }
        }
        Ok(out)
    }
}
