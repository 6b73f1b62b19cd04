//! Events received from civil registration (CRVS): live births and deaths notified over DCI,
//! stored once per (source, event id), then processed by a job each, in the order the CRVS
//! numbered each person's events (schema: migration `0022_crvs_events`).

use chrono::{DateTime, Utc};
use inkingi_domain::identity::AreaScope;
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::QueryBuilder;
use uuid::Uuid;

use crate::registry::push_scope;
use crate::shared_sql::{on_read, on_uow, Pools};
use crate::{Store, StoreError, StoreResult, UnitOfWork};

/// Where an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Stored; its processing job is queued (or waits for an earlier event of its subject).
    Received,
    /// A change request was opened, or nothing was needed (see the outcome).
    Processed,
    /// The person could not be found with certainty: a linkage review was opened.
    Review,
    /// The event could not be used (see the outcome's reason).
    Failed,
}

impl EventStatus {
    pub const ALL: [EventStatus; 4] = [
        EventStatus::Received,
        EventStatus::Processed,
        EventStatus::Review,
        EventStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Received => "received",
            EventStatus::Processed => "processed",
            EventStatus::Review => "review",
            EventStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<EventStatus> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// One event as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrvsEvent {
    pub id: Uuid,
    /// The CRVS's DCI sender id.
    pub source: String,
    pub message_id: String,
    pub event_id: String,
    /// `live_birth` or `death`.
    pub event_type: String,
    /// Whose events these are (the mother of a birth, the deceased), as the CRVS names them.
    pub subject: String,
    /// The event's place among its subject's events, from 1.
    pub seq: i64,
    /// The notified record, as received.
    pub payload: Value,
    pub status: EventStatus,
    /// What processing did: the change request or review opened, or why neither.
    pub outcome: Option<Value>,
    /// The village of the person or household found.
    pub area_code: Option<String>,
    pub received_by: String,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
}

type Row = (
    Uuid,
    String,
    String,
    String,
    String,
    String,
    i64,
    Json<Value>,
    String,
    Option<Json<Value>>,
    Option<String>,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

const COLS: &str = "id, source, message_id, event_id, event_type, subject, seq, payload, status, \
                    outcome, area_code, received_by, received_at, processed_at";

fn from_row(r: Row) -> StoreResult<CrvsEvent> {
    Ok(CrvsEvent {
        id: r.0,
        source: r.1,
        message_id: r.2,
        event_id: r.3,
        event_type: r.4,
        subject: r.5,
        seq: r.6,
        payload: r.7 .0,
        status: EventStatus::parse(&r.8)
            .ok_or_else(|| StoreError::Invalid(format!("crvs_events.status '{}'", r.8)))?,
        outcome: r.9.map(|j| j.0),
        area_code: r.10,
        received_by: r.11,
        received_at: r.12,
        processed_at: r.13,
    })
}

/// How far the events before one of a subject have come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Predecessors {
    /// Events of the subject with a lower `seq` that were received.
    pub received: i64,
    /// Of those, still waiting to be processed.
    pub open: i64,
}

/// The `crvs_events` table, reached through [`Store::crvs`].
pub struct CrvsEvents<'a> {
    pub(crate) store: &'a Store,
}

impl CrvsEvents<'_> {
    fn pools(&self) -> Pools {
        self.store.adapter.pools()
    }

    /// Stores an event unless one with its source and event id is stored already; true when
    /// stored (the caller then queues its job in the same unit of work).
    pub async fn receive(&self, uow: &mut UnitOfWork, e: &CrvsEvent) -> StoreResult<bool> {
        let n = on_uow!(uow, |c| {
            sqlx::query(&format!(
                "INSERT INTO crvs_events ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                 $10, $11, $12, $13, $14) ON CONFLICT (source, event_id) DO NOTHING"
            ))
            .bind(e.id)
            .bind(&e.source)
            .bind(&e.message_id)
            .bind(&e.event_id)
            .bind(&e.event_type)
            .bind(&e.subject)
            .bind(e.seq)
            .bind(Json(&e.payload))
            .bind(e.status.as_str())
            .bind(e.outcome.as_ref().map(Json))
            .bind(&e.area_code)
            .bind(&e.received_by)
            .bind(e.received_at)
            .bind(e.processed_at)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// One event by its row id (not scoped: for the processing job).
    pub async fn event(&self, id: Uuid) -> StoreResult<Option<CrvsEvent>> {
        let row: Option<Row> = on_read!(self.pools(), |p| {
            sqlx::query_as(&format!("SELECT {COLS} FROM crvs_events WHERE id = $1"))
                .bind(id)
                .fetch_optional(p)
                .await?
        });
        row.map(from_row).transpose()
    }

    /// The event `event_id` of `source` (not scoped: for a review's decision).
    pub async fn by_event_id(
        &self,
        source: &str,
        event_id: &str,
    ) -> StoreResult<Option<CrvsEvent>> {
        let row: Option<Row> = on_read!(self.pools(), |p| {
            sqlx::query_as(&format!(
                "SELECT {COLS} FROM crvs_events WHERE source = $1 AND event_id = $2"
            ))
            .bind(source)
            .bind(event_id)
            .fetch_optional(p)
            .await?
        });
        row.map(from_row).transpose()
    }

    /// An event in review, resolved by an officer's decision: `processed` with `outcome`, in
    /// the decision's unit of work; false when it was not in review.
    pub async fn resolve(
        &self,
        uow: &mut UnitOfWork,
        id: Uuid,
        outcome: &Value,
        area_code: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = on_uow!(uow, |c| {
            sqlx::query(
                "UPDATE crvs_events SET status = 'processed', outcome = $1, area_code = $2, \
                 processed_at = $3 WHERE id = $4 AND status = 'review'",
            )
            .bind(Json(outcome))
            .bind(area_code)
            .bind(at)
            .bind(id)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// The events of `subject` before `seq`: how many arrived, how many are still open.
    pub async fn predecessors(
        &self,
        source: &str,
        subject: &str,
        seq: i64,
    ) -> StoreResult<Predecessors> {
        let (received, open): (i64, i64) = on_read!(self.pools(), |p| {
            sqlx::query_as(
                "SELECT count(*), CAST(coalesce(sum(CASE WHEN status = 'received' THEN 1 ELSE 0 \
                 END), 0) AS BIGINT) FROM crvs_events \
                 WHERE source = $1 AND subject = $2 AND seq < $3",
            )
            .bind(source)
            .bind(subject)
            .bind(seq)
            .fetch_one(p)
            .await?
        });
        Ok(Predecessors { received, open })
    }

    /// Records how an event was processed, in the unit of work that did it; false when the
    /// event was no longer `received` (processed by an earlier run of its job).
    pub async fn finish(
        &self,
        uow: &mut UnitOfWork,
        id: Uuid,
        status: EventStatus,
        outcome: &Value,
        area_code: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = on_uow!(uow, |c| {
            sqlx::query(
                "UPDATE crvs_events SET status = $1, outcome = $2, area_code = $3, \
                 processed_at = $4 WHERE id = $5 AND status = 'received'",
            )
            .bind(status.as_str())
            .bind(Json(outcome))
            .bind(area_code)
            .bind(at)
            .bind(id)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Events in `scope` (by the area of the person found; national scope also sees those
    /// without one), newest first, with `status` when given.
    pub async fn list(
        &self,
        scope: &AreaScope,
        status: Option<EventStatus>,
        limit: u32,
    ) -> StoreResult<Vec<CrvsEvent>> {
        let rows: Vec<Row> = on_read!(self.pools(), |p| {
            let mut qb = QueryBuilder::new(format!("SELECT {COLS} FROM crvs_events WHERE 1 = 1"));
            if let Some(s) = status {
                qb.push(" AND status = ").push_bind(s.as_str());
            }
            if !scope.is_national() {
                qb.push(" AND area_code IS NOT NULL");
            }
            push_scope(&mut qb, "area_code", scope);
            qb.push(" ORDER BY received_at DESC, id DESC LIMIT ");
            qb.push_bind(i64::from(limit.max(1)));
            qb.build_query_as().fetch_all(p).await?
        });
        rows.into_iter().map(from_row).collect()
    }
}

impl Store {
    /// Events received from civil registration.
    pub fn crvs(&self) -> CrvsEvents<'_> {
        CrvsEvents { store: self }
    }
}
