//! DCI subscriptions and notifications on SQLite. The outbox position is the rowid of
//! `registry_events`: writers take turns on the single writer connection, so rowids grow in
//! commit order.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use super::ts::{parse_ts, ts};
use super::SqliteAdapter;
use crate::dci_notify::{
    text_list, EventPos, NewNotification, Notification, NotificationStatus, NotifyStore,
    OutboxEvent, Subscription,
};
use crate::registry::event_row_decode;
use crate::{StoreError, StoreResult, UnitOfWork};

const SUB_COLS: &str = "code, client, sender_id, notify_url, event_types, areas, record_type, \
     purpose, status, transaction_id, reference_id, criteria, created_at, updated_at, kind, secret";

fn json(r: &SqliteRow, col: &str) -> StoreResult<Value> {
    let t: String = r.try_get(col)?;
    serde_json::from_str(&t).map_err(|e| StoreError::Invalid(format!("{col}: {e}")))
}

fn subscription(r: &SqliteRow) -> StoreResult<Subscription> {
    Ok(Subscription {
        code: r.try_get("code")?,
        client: r.try_get("client")?,
        sender_id: r.try_get("sender_id")?,
        notify_url: r.try_get("notify_url")?,
        event_types: text_list(json(r, "event_types")?, "event_types")?,
        areas: text_list(json(r, "areas")?, "areas")?,
        record_type: r.try_get("record_type")?,
        purpose: r.try_get("purpose")?,
        status: r.try_get("status")?,
        transaction_id: r.try_get("transaction_id")?,
        reference_id: r.try_get("reference_id")?,
        criteria: json(r, "criteria")?,
        created_at: parse_ts(r.try_get("created_at")?)?,
        updated_at: parse_ts(r.try_get("updated_at")?)?,
        kind: r.try_get("kind")?,
        secret: r
            .try_get::<Option<String>, _>("secret")?
            .map(crate::dci_notify::WebhookSecret),
    })
}

fn notification(r: &SqliteRow) -> StoreResult<Notification> {
    let job: Option<String> = r.try_get("job")?;
    Ok(Notification {
        subscription_code: r.try_get("subscription_code")?,
        event_id: r.try_get("event_id")?,
        seq: r.try_get("seq")?,
        subject_id: r.try_get("subject_id")?,
        event_type: r.try_get("event_type")?,
        status: NotificationStatus::parse(r.try_get("status")?)?,
        job: job
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| StoreError::Invalid(format!("dci_notifications.job: {e}")))?,
    })
}

const NOTE_COLS: &str = "n.subscription_code, n.event_id, n.seq, n.subject_id, n.event_type, \
     n.status, n.job";

#[async_trait::async_trait]
impl NotifyStore for SqliteAdapter {
    async fn create_subscription(&self, uow: &mut UnitOfWork, s: &Subscription) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO dci_subscriptions ({SUB_COLS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(&s.code)
        .bind(&s.client)
        .bind(&s.sender_id)
        .bind(&s.notify_url)
        .bind(serde_json::to_string(&s.event_types).unwrap_or_default())
        .bind(serde_json::to_string(&s.areas).unwrap_or_default())
        .bind(&s.record_type)
        .bind(&s.purpose)
        .bind(&s.status)
        .bind(&s.transaction_id)
        .bind(&s.reference_id)
        .bind(s.criteria.to_string())
        .bind(ts(s.created_at))
        .bind(ts(s.updated_at))
        .bind(&s.kind)
        .bind(s.secret.as_ref().map(|k| k.0.clone()))
        .execute(uow.sqlite()?)
        .await?;
        Ok(())
    }

    async fn subscriptions(
        &self,
        client: &str,
        codes: &[String],
    ) -> StoreResult<Vec<Subscription>> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT {SUB_COLS} FROM dci_subscriptions WHERE client = "
        ));
        qb.push_bind(client.to_string());
        if !codes.is_empty() {
            qb.push(" AND code IN (");
            let mut s = qb.separated(", ");
            for c in codes {
                s.push_bind(c.clone());
            }
            qb.push(")");
        }
        qb.push(" ORDER BY created_at, code LIMIT 100");
        let rows = qb.build().fetch_all(&self.read).await?;
        rows.iter().map(subscription).collect()
    }

    async fn active_of_kind(&self, client: &str, kind: &str) -> StoreResult<Vec<Subscription>> {
        let rows = sqlx::query(&format!(
            "SELECT {SUB_COLS} FROM dci_subscriptions \
             WHERE client = $1 AND kind = $2 AND status = 'subscribe' ORDER BY created_at, code"
        ))
        .bind(client)
        .bind(kind)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(subscription).collect()
    }

    async fn count_active_locked(
        &self,
        uow: &mut UnitOfWork,
        client: &str,
        kind: &str,
    ) -> StoreResult<i64> {
        // The single writer connection already serialises units of work: no lock to take.
        crate::dci_notify::count_active(uow, client, kind).await
    }

    async fn set_subscription_status(
        &self,
        uow: &mut UnitOfWork,
        client: &str,
        code: &str,
        status: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE dci_subscriptions SET status = $1, updated_at = $2 \
             WHERE client = $3 AND code = $4",
        )
        .bind(status)
        .bind(ts(at))
        .bind(client)
        .bind(code)
        .execute(uow.sqlite()?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn active_subscriptions(&self) -> StoreResult<Vec<Subscription>> {
        let rows = sqlx::query(&format!(
            "SELECT {SUB_COLS} FROM dci_subscriptions WHERE status = 'subscribe' \
             ORDER BY created_at, code"
        ))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(subscription).collect()
    }

    async fn subscription(&self, code: &str) -> StoreResult<Option<Subscription>> {
        let row = sqlx::query(&format!(
            "SELECT {SUB_COLS} FROM dci_subscriptions WHERE code = $1"
        ))
        .bind(code)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(subscription).transpose()
    }

    async fn lock_cursor(&self, uow: &mut UnitOfWork) -> StoreResult<(EventPos, i64)> {
        // The unit of work holds the single writer: nobody else moves the cursor meanwhile.
        let row = sqlx::query("SELECT pos_a, pos_b, next_seq FROM dci_notify_cursor WHERE id = 1")
            .fetch_one(uow.sqlite()?)
            .await?;
        Ok((
            EventPos {
                a: row.try_get("pos_a")?,
                b: row.try_get("pos_b")?,
            },
            row.try_get("next_seq")?,
        ))
    }

    async fn cursor(&self) -> StoreResult<(EventPos, i64)> {
        let row = sqlx::query("SELECT pos_a, pos_b, next_seq FROM dci_notify_cursor WHERE id = 1")
            .fetch_one(&self.read)
            .await?;
        Ok((
            EventPos {
                a: row.try_get("pos_a")?,
                b: row.try_get("pos_b")?,
            },
            row.try_get("next_seq")?,
        ))
    }

    async fn outbox_after(&self, pos: EventPos, limit: u32) -> StoreResult<Vec<OutboxEvent>> {
        let rows = sqlx::query(
            "SELECT e.rowid AS pos, e.id, e.household_id, e.entity, e.entity_id, e.kind, e.at, \
             e.actor, e.channel, e.reason, e.change_request_id, e.before, e.after, \
             h.village_code FROM registry_events e \
             LEFT JOIN registry_households h ON h.id = e.household_id \
             WHERE e.rowid > $1 ORDER BY e.rowid LIMIT $2",
        )
        .bind(pos.a)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
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
                Ok(OutboxEvent {
                    pos: EventPos {
                        a: r.try_get("pos")?,
                        b: 0,
                    },
                    event: event_row_decode(
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
                    )?,
                    village: r.try_get("village_code")?,
                })
            })
            .collect()
    }

    async fn save_cursor(
        &self,
        uow: &mut UnitOfWork,
        pos: EventPos,
        next_seq: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE dci_notify_cursor SET pos_a = $1, pos_b = $2, next_seq = $3 WHERE id = 1",
        )
        .bind(pos.a)
        .bind(pos.b)
        .bind(next_seq)
        .execute(uow.sqlite()?)
        .await?;
        Ok(())
    }

    async fn insert_notification(
        &self,
        uow: &mut UnitOfWork,
        n: &NewNotification,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO dci_notifications (subscription_code, event_id, seq, subject_id, \
             event_type, status, job, job_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        )
        .bind(&n.subscription_code)
        .bind(n.event_id)
        .bind(n.seq)
        .bind(n.subject_id)
        .bind(&n.event_type)
        .bind(n.status.as_str())
        .bind(n.job.as_ref().map(Value::to_string))
        .bind(n.job_id.map(|j| j.hyphenated().to_string()))
        .bind(ts(n.at))
        .execute(uow.sqlite()?)
        .await?;
        Ok(())
    }

    async fn chain_open(
        &self,
        uow: &mut UnitOfWork,
        code: &str,
        subject: Uuid,
    ) -> StoreResult<bool> {
        let open: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM dci_notifications WHERE subscription_code = $1 AND subject_id = $2 \
             AND status IN ('waiting', 'queued') LIMIT 1",
        )
        .bind(code)
        .bind(subject)
        .fetch_optional(uow.sqlite()?)
        .await?;
        Ok(open.is_some())
    }

    async fn notification(&self, code: &str, event_id: Uuid) -> StoreResult<Option<Notification>> {
        let row = sqlx::query(&format!(
            "SELECT {NOTE_COLS} FROM dci_notifications n \
             WHERE n.subscription_code = $1 AND n.event_id = $2"
        ))
        .bind(code)
        .bind(event_id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(notification).transpose()
    }

    async fn set_notification_status(
        &self,
        uow: &mut UnitOfWork,
        code: &str,
        event_id: Uuid,
        status: NotificationStatus,
        job_id: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE dci_notifications SET status = $1, updated_at = $2, \
             job = CASE WHEN $1 = 'waiting' THEN job ELSE NULL END, \
             job_id = coalesce($3, job_id) WHERE subscription_code = $4 AND event_id = $5",
        )
        .bind(status.as_str())
        .bind(ts(at))
        .bind(job_id.map(|j| j.hyphenated().to_string()))
        .bind(code)
        .bind(event_id)
        .execute(uow.sqlite()?)
        .await?;
        Ok(())
    }

    async fn releasable(
        &self,
        uow: &mut UnitOfWork,
        only: Option<(&str, Uuid)>,
        limit: u32,
    ) -> StoreResult<Vec<Notification>> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT {NOTE_COLS} FROM dci_notifications n WHERE n.status = 'waiting'"
        ));
        if let Some((code, subject)) = only {
            qb.push(" AND n.subscription_code = ")
                .push_bind(code.to_string())
                .push(" AND n.subject_id = ")
                .push_bind(subject);
        }
        qb.push(
            " AND NOT EXISTS (SELECT 1 FROM dci_notifications o \
               WHERE o.subscription_code = n.subscription_code AND o.subject_id = n.subject_id \
               AND (o.status = 'queued' OR (o.status = 'waiting' AND o.seq < n.seq))) \
             ORDER BY n.seq LIMIT ",
        )
        .push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(uow.sqlite()?).await?;
        rows.iter().map(notification).collect()
    }

    async fn stranded(&self, limit: u32) -> StoreResult<Vec<Notification>> {
        let rows = sqlx::query(&format!(
            "SELECT {NOTE_COLS} FROM dci_notifications n JOIN jobs j ON j.id = n.job_id \
             WHERE n.status = 'queued' AND j.status = 'dead' ORDER BY n.seq LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(notification).collect()
    }

    async fn notification_counts(&self) -> StoreResult<Vec<(NotificationStatus, u64)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM dci_notifications GROUP BY status")
                .fetch_all(&self.read)
                .await?;
        rows.into_iter()
            .map(|(s, n)| Ok((NotificationStatus::parse(&s)?, n.max(0) as u64)))
            .collect()
    }
}
