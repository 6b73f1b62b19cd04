//! Notifications to beneficiaries (schema `0017_cycles`): a `notify.beneficiary` job is
//! enqueued in the transaction of the change it reports (an enrolment transition, a
//! re-certification decision); its handler writes one row of `notification_outbox`.
//!
//! The SMS sender ([`crate::sms`]) turns pending rows into messages keyed by the same cause,
//! looks up the recipient's phone at sending time (so no contact detail is copied here),
//! renders the template in the recipient's language and marks the row sent or failed. Writing
//! the outbox is idempotent on the cause (`source_key`), so a job that runs twice writes one
//! message.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::jobs::{Job, NewJob};
use crate::shared_sql::{on_read, on_uow, Pools};
use crate::{Store, StoreResult, UnitOfWork};

/// Writes one notification to the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyJob {
    /// The cause, unique: `enrolment-event:<id>`, `recertification:<id>`.
    pub key: String,
    /// What to say, e.g. `enrolment.enrolled`, `recertification.kept`.
    pub template: String,
    pub household_id: Uuid,
    pub person_id: Option<Uuid>,
    pub village: String,
    /// The template's values (programme, status, reason…).
    pub params: Value,
}

impl Job for NotifyJob {
    const KIND: &'static str = "notify.beneficiary";
    const MAX_ATTEMPTS: u32 = 5;

    fn idempotency_key(&self) -> Option<String> {
        Some(self.key.clone())
    }
}

/// A message waiting for (or done by) a sender.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxMessage {
    pub id: Uuid,
    pub source_key: String,
    pub channel: String,
    pub template: String,
    pub household_id: Uuid,
    pub person_id: Option<Uuid>,
    pub village: String,
    pub params: Value,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: Uuid,
    source_key: String,
    channel: String,
    template: String,
    household_id: Uuid,
    person_id: Option<Uuid>,
    village_code: String,
    params: Json<Value>,
    status: String,
    created_at: DateTime<Utc>,
}

/// The outbox, reached through [`Store::notifications`].
pub struct Notifications<'a> {
    pub(crate) store: &'a Store,
}

impl Notifications<'_> {
    fn pools(&self) -> Pools {
        self.store.adapter.pools()
    }

    /// Queues a notification in the caller's transaction.
    pub async fn enqueue(&self, uow: &mut UnitOfWork, job: &NotifyJob) -> StoreResult<()> {
        self.store.jobs().enqueue(uow, NewJob::of(job)?).await?;
        Ok(())
    }

    /// Writes the job's message to the outbox (SMS); false when its cause was written already.
    pub async fn write(&self, job: &NotifyJob) -> StoreResult<bool> {
        let mut uow = self.store.begin().await?;
        let n = on_uow!(uow, |c| {
            sqlx::query(
                "INSERT INTO notification_outbox (id, source_key, channel, template, \
                 household_id, person_id, village_code, params, status, created_at) \
                 VALUES ($1, $2, 'sms', $3, $4, $5, $6, $7, 'pending', $8) \
                 ON CONFLICT (source_key) DO NOTHING",
            )
            .bind(Uuid::now_v7())
            .bind(&job.key)
            .bind(&job.template)
            .bind(job.household_id)
            .bind(job.person_id)
            .bind(&job.village)
            .bind(Json(job.params.clone()))
            .bind(Utc::now())
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        uow.commit().await?;
        Ok(n == 1)
    }

    /// Messages of a household, oldest first (operators and tests; not personal data beyond
    /// the household id).
    pub async fn for_household(&self, household_id: Uuid) -> StoreResult<Vec<OutboxMessage>> {
        let rows: Vec<OutboxRow> = on_read!(self.pools(), |p| {
            sqlx::query_as(
                "SELECT id, source_key, channel, template, household_id, person_id, \
                 village_code, params, status, created_at FROM notification_outbox \
                 WHERE household_id = $1 ORDER BY id",
            )
            .bind(household_id)
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| OutboxMessage {
                id: r.id,
                source_key: r.source_key,
                channel: r.channel,
                template: r.template,
                household_id: r.household_id,
                person_id: r.person_id,
                village: r.village_code,
                params: r.params.0,
                status: r.status,
                created_at: r.created_at,
            })
            .collect())
    }
}
