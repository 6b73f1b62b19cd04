//! Outbound SMS (schema `0029_sms`): every message planned for a gateway, written once per
//! cause, with the `sms.send` job that sends it; delivery reports; how often each overdue
//! service was reminded (for escalation); users' phones.
//!
//! A message row names its recipient (a registry person or a user), never a phone number: the
//! number is looked up when the message is sent, so a corrected number is used and nothing
//! personal is copied here beyond the template's values.

use chrono::{DateTime, NaiveDate, Utc};
use inkingi_domain::identity::{AreaScope, Role, Username};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::jobs::{Job, NewJob};
use crate::shared_sql::{on_read, on_uow, Pools};
use crate::{Store, StoreError, StoreResult, UnitOfWork};

/// Sends one message (`sms_messages.id`); a message already sent is not sent again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendSmsJob {
    pub message_id: Uuid,
}

impl Job for SendSmsJob {
    const KIND: &'static str = "sms.send";
    const QUEUE: &'static str = "connectors";
    /// With the default backoff this keeps trying for about a day.
    const MAX_ATTEMPTS: u32 = 25;

    fn idempotency_key(&self) -> Option<String> {
        Some(format!("sms:{}", self.message_id))
    }
}

/// Why a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsKind {
    /// A beneficiary notification of the outbox (`notify.beneficiary`).
    Notification,
    /// A caregiver's reminder of a child's overdue services.
    Reminder,
    /// A community health worker's daily digest.
    Digest,
    /// A supervisor told that reminders were ignored.
    Escalation,
}

impl SmsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsKind::Notification => "notification",
            SmsKind::Reminder => "reminder",
            SmsKind::Digest => "digest",
            SmsKind::Escalation => "escalation",
        }
    }

    fn parse(s: &str) -> SmsKind {
        match s {
            "reminder" => SmsKind::Reminder,
            "digest" => SmsKind::Digest,
            "escalation" => SmsKind::Escalation,
            _ => SmsKind::Notification,
        }
    }
}

/// Who receives a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Recipient {
    /// A registry person (a caregiver, a beneficiary).
    Person(Uuid),
    /// A user (a community health worker, a supervisor).
    User(Uuid),
}

impl Recipient {
    fn parts(self) -> (&'static str, Uuid) {
        match self {
            Recipient::Person(id) => ("person", id),
            Recipient::User(id) => ("user", id),
        }
    }

    pub fn id(self) -> Uuid {
        self.parts().1
    }
}

/// A message to plan.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSms {
    /// The cause, unique: a second message with the same key is not written.
    pub source_key: String,
    pub kind: SmsKind,
    pub recipient: Recipient,
    /// `rw`, `en` or `fr`.
    pub language: String,
    pub template: String,
    pub params: Value,
    pub plan_day: NaiveDate,
    /// Not sent before this (the end of the quiet hours it was planned in).
    pub not_before: DateTime<Utc>,
}

/// Where a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsStatus {
    Queued,
    /// Accepted by the gateway.
    Sent,
    /// The delivery report says it reached the phone.
    Delivered,
    /// The delivery report says it did not.
    Undelivered,
    /// Never accepted: no phone, refused by the gateway, or given up after retries.
    Failed,
}

impl SmsStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsStatus::Queued => "queued",
            SmsStatus::Sent => "sent",
            SmsStatus::Delivered => "delivered",
            SmsStatus::Undelivered => "undelivered",
            SmsStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> SmsStatus {
        match s {
            "sent" => SmsStatus::Sent,
            "delivered" => SmsStatus::Delivered,
            "undelivered" => SmsStatus::Undelivered,
            "failed" => SmsStatus::Failed,
            _ => SmsStatus::Queued,
        }
    }
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmsMessage {
    pub id: Uuid,
    pub source_key: String,
    pub kind: SmsKind,
    pub recipient: Recipient,
    pub language: String,
    pub template: String,
    pub params: Value,
    pub plan_day: NaiveDate,
    pub not_before: DateTime<Utc>,
    pub status: SmsStatus,
    pub provider: Option<String>,
    pub provider_id: Option<String>,
    #[serde(skip)]
    pub dlr_token: String,
    pub detail: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    source_key: String,
    kind: String,
    recipient_kind: String,
    recipient_id: Uuid,
    language: String,
    template: String,
    params: Json<Value>,
    plan_day: NaiveDate,
    not_before: DateTime<Utc>,
    status: String,
    provider: Option<String>,
    provider_id: Option<String>,
    dlr_token: String,
    detail: Option<String>,
    sent_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<Row> for SmsMessage {
    fn from(r: Row) -> Self {
        SmsMessage {
            id: r.id,
            source_key: r.source_key,
            kind: SmsKind::parse(&r.kind),
            recipient: if r.recipient_kind == "user" {
                Recipient::User(r.recipient_id)
            } else {
                Recipient::Person(r.recipient_id)
            },
            language: r.language,
            template: r.template,
            params: r.params.0,
            plan_day: r.plan_day,
            not_before: r.not_before,
            status: SmsStatus::parse(&r.status),
            provider: r.provider,
            provider_id: r.provider_id,
            dlr_token: r.dlr_token,
            detail: r.detail,
            sent_at: r.sent_at,
            created_at: r.created_at,
        }
    }
}

const COLUMNS: &str = "id, source_key, kind, recipient_kind, recipient_id, language, template, \
    params, plan_day, not_before, status, provider, provider_id, dlr_token, detail, sent_at, \
    created_at";

/// A delivery report as the gateway gave it, read into one of the final or interim outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DlrOutcome {
    Delivered,
    Undelivered,
    /// Still on its way (queued or accepted by the SMS centre): recorded, status unchanged.
    Interim,
}

/// A pending beneficiary notification (outbox row) with no message yet.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingNotification {
    pub source_key: String,
    pub template: String,
    pub household_id: Uuid,
    pub person_id: Option<Uuid>,
    pub params: Value,
}

/// A user's SMS contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserContact {
    pub id: Uuid,
    pub username: String,
    pub role: Role,
    pub scope: AreaScope,
    pub phone: Option<String>,
    pub language: Option<String>,
}

/// Reminders so far for one overdue occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReminderCount {
    pub reminders: u32,
    pub first_on: NaiveDate,
    pub escalated_on: Option<NaiveDate>,
}

/// The SMS tables, reached through [`Store::sms`].
pub struct Sms<'a> {
    pub(crate) store: &'a Store,
}

impl Sms<'_> {
    fn pools(&self) -> Pools {
        self.store.adapter.pools()
    }

    /// Writes a message and enqueues its `sms.send` job, due at `not_before`, in `uow`. `None`
    /// when a message with this cause exists already (nothing is written).
    pub async fn queue(&self, uow: &mut UnitOfWork, m: &NewSms) -> StoreResult<Option<Uuid>> {
        let id = Uuid::now_v7();
        let now = Utc::now();
        let (rkind, rid) = m.recipient.parts();
        // Unguessable: it authenticates this message's delivery reports.
        let token = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let n = on_uow!(uow, |c| {
            sqlx::query(
                "INSERT INTO sms_messages (id, source_key, kind, recipient_kind, recipient_id, \
                 language, template, params, plan_day, not_before, status, dlr_token, \
                 updated_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
                 'queued', $11, $12, $12) ON CONFLICT (source_key) DO NOTHING",
            )
            .bind(id)
            .bind(&m.source_key)
            .bind(m.kind.as_str())
            .bind(rkind)
            .bind(rid)
            .bind(&m.language)
            .bind(&m.template)
            .bind(Json(m.params.clone()))
            .bind(m.plan_day)
            .bind(m.not_before)
            .bind(&token)
            .bind(now)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if n == 0 {
            return Ok(None);
        }
        let delay = (m.not_before - now).to_std().unwrap_or_default();
        let job = NewJob::of(&SendSmsJob { message_id: id })?.run_after(delay);
        self.store.jobs().enqueue(uow, job).await?;
        Ok(Some(id))
    }

    /// Whether a message with this cause exists.
    pub async fn exists(&self, source_key: &str) -> StoreResult<bool> {
        let n: i64 = on_read!(self.pools(), |p| {
            sqlx::query_scalar("SELECT COUNT(*) FROM sms_messages WHERE source_key = $1")
                .bind(source_key)
                .fetch_one(p)
                .await?
        });
        Ok(n > 0)
    }

    pub async fn get(&self, id: Uuid) -> StoreResult<Option<SmsMessage>> {
        let sql = format!("SELECT {COLUMNS} FROM sms_messages WHERE id = $1");
        let row: Option<Row> = on_read!(self.pools(), |p| {
            sqlx::query_as(&sql).bind(id).fetch_optional(p).await?
        });
        Ok(row.map(SmsMessage::from))
    }

    /// Messages planned from `day` on, oldest first (operators, tests, demos).
    pub async fn since(&self, day: NaiveDate) -> StoreResult<Vec<SmsMessage>> {
        let sql = format!("SELECT {COLUMNS} FROM sms_messages WHERE plan_day >= $1 ORDER BY id");
        let rows: Vec<Row> = on_read!(self.pools(), |p| {
            sqlx::query_as(&sql).bind(day).fetch_all(p).await?
        });
        Ok(rows.into_iter().map(SmsMessage::from).collect())
    }

    /// Messages to a recipient planned on `from..=to` (the per-person caps), except
    /// beneficiary notifications, which are not capped.
    pub async fn count_for(
        &self,
        recipient: Recipient,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<u32> {
        let (_, rid) = recipient.parts();
        let n: i64 = on_read!(self.pools(), |p| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM sms_messages WHERE recipient_id = $1 \
                 AND plan_day >= $2 AND plan_day <= $3 AND kind <> 'notification'",
            )
            .bind(rid)
            .bind(from)
            .bind(to)
            .fetch_one(p)
            .await?
        });
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Records that the gateway took a queued message; false when it was not queued any more
    /// (sent by an earlier run of the job).
    pub async fn mark_sent(
        &self,
        id: Uuid,
        provider: &str,
        provider_id: Option<&str>,
    ) -> StoreResult<bool> {
        let now = Utc::now();
        let mut uow = self.store.begin().await?;
        let n = on_uow!(uow, |c| {
            sqlx::query(
                "UPDATE sms_messages SET status = 'sent', provider = $2, provider_id = $3, \
                 sent_at = $4, updated_at = $4, detail = NULL WHERE id = $1 AND status = 'queued'",
            )
            .bind(id)
            .bind(provider)
            .bind(provider_id)
            .bind(now)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        self.settle_outbox(&mut uow, id, "sent").await?;
        uow.commit().await?;
        Ok(n == 1)
    }

    /// Gives up on a queued message (no phone, refused, retries used up).
    pub async fn mark_failed(&self, id: Uuid, detail: &str) -> StoreResult<()> {
        let now = Utc::now();
        let mut uow = self.store.begin().await?;
        on_uow!(uow, |c| {
            sqlx::query(
                "UPDATE sms_messages SET status = 'failed', detail = $2, updated_at = $3 \
                 WHERE id = $1 AND status = 'queued'",
            )
            .bind(id)
            .bind(detail)
            .bind(now)
            .execute(&mut *c)
            .await?;
        });
        self.settle_outbox(&mut uow, id, "failed").await?;
        uow.commit().await?;
        Ok(())
    }

    /// Notes a transient failure on a still-queued message (shown to operators).
    pub async fn note(&self, id: Uuid, detail: &str) -> StoreResult<()> {
        let mut uow = self.store.begin().await?;
        on_uow!(uow, |c| {
            sqlx::query(
                "UPDATE sms_messages SET detail = $2, updated_at = $3 \
                 WHERE id = $1 AND status = 'queued'",
            )
            .bind(id)
            .bind(detail)
            .bind(Utc::now())
            .execute(&mut *c)
            .await?;
        });
        uow.commit().await?;
        Ok(())
    }

    /// The outbox row a notification message came from follows the message.
    async fn settle_outbox(&self, uow: &mut UnitOfWork, id: Uuid, status: &str) -> StoreResult<()> {
        on_uow!(uow, |c| {
            sqlx::query(
                "UPDATE notification_outbox SET status = $2 WHERE status = 'pending' \
                 AND source_key = (SELECT source_key FROM sms_messages WHERE id = $1 \
                 AND kind = 'notification')",
            )
            .bind(id)
            .bind(status)
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// Applies a delivery report to a sent message: by our id and its token (Kannel's dlr-url)
    /// or by the gateway's message id. `None` when no message matches; a final status is not
    /// changed by a later report (reports can come out of order).
    pub async fn report(
        &self,
        target: DlrTarget<'_>,
        outcome: DlrOutcome,
        detail: &str,
    ) -> StoreResult<Option<SmsMessage>> {
        let found = match target {
            DlrTarget::Ours { id, token } => self
                .get(id)
                .await?
                .filter(|m| constant_time_eq(m.dlr_token.as_bytes(), token.as_bytes())),
            DlrTarget::Provider { provider, id } => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM sms_messages WHERE provider = $1 AND provider_id = $2"
                );
                let row: Option<Row> = on_read!(self.pools(), |p| {
                    sqlx::query_as(&sql)
                        .bind(provider)
                        .bind(id)
                        .fetch_optional(p)
                        .await?
                });
                row.map(SmsMessage::from)
            }
        };
        let Some(m) = found else {
            return Ok(None);
        };
        let status = match outcome {
            DlrOutcome::Delivered => "delivered",
            DlrOutcome::Undelivered => "undelivered",
            DlrOutcome::Interim => "sent",
        };
        let mut uow = self.store.begin().await?;
        on_uow!(uow, |c| {
            sqlx::query(
                "UPDATE sms_messages SET status = $2, detail = $3, updated_at = $4 \
                 WHERE id = $1 AND status IN ('queued', 'sent')",
            )
            .bind(m.id)
            .bind(status)
            .bind(detail)
            .bind(Utc::now())
            .execute(&mut *c)
            .await?;
        });
        uow.commit().await?;
        self.get(m.id).await
    }

    /// Beneficiary notifications still pending with no message yet, oldest first.
    pub async fn pending_notifications(&self, limit: u32) -> StoreResult<Vec<PendingNotification>> {
        type R = (String, String, Uuid, Option<Uuid>, Json<Value>);
        let rows: Vec<R> = on_read!(self.pools(), |p| {
            sqlx::query_as(
                "SELECT o.source_key, o.template, o.household_id, o.person_id, o.params \
                 FROM notification_outbox o WHERE o.status = 'pending' AND o.channel = 'sms' \
                 AND NOT EXISTS (SELECT 1 FROM sms_messages s WHERE s.source_key = o.source_key) \
                 ORDER BY o.created_at, o.id LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(source_key, template, household_id, person_id, params)| PendingNotification {
                    source_key,
                    template,
                    household_id,
                    person_id,
                    params: params.0,
                },
            )
            .collect())
    }

    /// Gives up on an outbox row that cannot become a message (no one to send it to).
    pub async fn fail_notification(&self, source_key: &str) -> StoreResult<()> {
        let mut uow = self.store.begin().await?;
        on_uow!(uow, |c| {
            sqlx::query(
                "UPDATE notification_outbox SET status = 'failed' \
                 WHERE source_key = $1 AND status = 'pending'",
            )
            .bind(source_key)
            .execute(&mut *c)
            .await?;
        });
        uow.commit().await?;
        Ok(())
    }

    /// Counts one more reminder of each overdue occurrence (service, occurrence) of a person on
    /// `day` (once per day) in `uow`, and returns the counts so far, in the order given. Two
    /// statements whatever the number of services.
    pub async fn remind(
        &self,
        uow: &mut UnitOfWork,
        person_id: Uuid,
        services: &[(&str, u32)],
        day: NaiveDate,
    ) -> StoreResult<Vec<ReminderCount>> {
        if services.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<String> = (0..services.len())
            .map(|i| format!("($1, ${}, ${}, 1, $2, $2)", 3 + 2 * i, 4 + 2 * i))
            .collect();
        let upsert = format!(
            "INSERT INTO sms_reminders (person_id, service, occurrence, reminders, first_on, \
             last_on) VALUES {} ON CONFLICT (person_id, service, occurrence) DO UPDATE SET \
             reminders = sms_reminders.reminders + 1, last_on = excluded.last_on \
             WHERE sms_reminders.last_on < excluded.last_on",
            values.join(", ")
        );
        type R = (String, i32, i32, NaiveDate, Option<NaiveDate>);
        let rows: Vec<R> = on_uow!(uow, |c| {
            let mut q = sqlx::query(&upsert).bind(person_id).bind(day);
            for (service, occ) in services {
                q = q
                    .bind(*service)
                    .bind(i32::try_from(*occ).unwrap_or(i32::MAX));
            }
            q.execute(&mut *c).await?;
            sqlx::query_as(
                "SELECT service, occurrence, reminders, first_on, escalated_on \
                 FROM sms_reminders WHERE person_id = $1",
            )
            .bind(person_id)
            .fetch_all(&mut *c)
            .await?
        });
        Ok(services
            .iter()
            .map(|(service, occ)| {
                let r = rows
                    .iter()
                    .find(|r| r.0 == *service && i64::from(r.1) == i64::from(*occ));
                ReminderCount {
                    reminders: r.map_or(0, |r| u32::try_from(r.2).unwrap_or(0)),
                    first_on: r.map_or(day, |r| r.3),
                    escalated_on: r.and_then(|r| r.4),
                }
            })
            .collect())
    }

    /// Marks an occurrence escalated on `day`; false when it was escalated already.
    pub async fn mark_escalated(
        &self,
        uow: &mut UnitOfWork,
        person_id: Uuid,
        service: &str,
        occurrence: u32,
        day: NaiveDate,
    ) -> StoreResult<bool> {
        let occ = i32::try_from(occurrence).unwrap_or(i32::MAX);
        let n = on_uow!(uow, |c| {
            sqlx::query(
                "UPDATE sms_reminders SET escalated_on = $4 WHERE person_id = $1 \
                 AND service = $2 AND occurrence = $3 AND escalated_on IS NULL",
            )
            .bind(person_id)
            .bind(service)
            .bind(occ)
            .bind(day)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Enabled users of a role, with their SMS contact.
    pub async fn users_with_role(&self, role: Role) -> StoreResult<Vec<UserContact>> {
        type R = (Uuid, String, String, String, Option<String>, Option<String>);
        let rows: Vec<R> = on_read!(self.pools(), |p| {
            sqlx::query_as(
                "SELECT id, username, role, scope, phone, language FROM users \
                 WHERE role = $1 AND disabled = FALSE ORDER BY username",
            )
            .bind(role.as_str())
            .fetch_all(p)
            .await?
        });
        rows.into_iter().map(contact).collect()
    }

    /// One user's SMS contact.
    pub async fn user_contact(&self, id: Uuid) -> StoreResult<Option<UserContact>> {
        type R = (Uuid, String, String, String, Option<String>, Option<String>);
        let row: Option<R> = on_read!(self.pools(), |p| {
            sqlx::query_as(
                "SELECT id, username, role, scope, phone, language FROM users WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(p)
            .await?
        });
        row.map(contact).transpose()
    }

    /// Sets a user's phone and language (`None` leaves one unchanged); false when there is no
    /// such user.
    pub async fn set_user_contact(
        &self,
        username: &Username,
        phone: Option<&str>,
        language: Option<&str>,
    ) -> StoreResult<bool> {
        let mut uow = self.store.begin().await?;
        let n = on_uow!(uow, |c| {
            sqlx::query(
                "UPDATE users SET phone = COALESCE($2, phone), \
                 language = COALESCE($3, language) WHERE username = $1",
            )
            .bind(username.as_str())
            .bind(phone)
            .bind(language)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        uow.commit().await?;
        Ok(n == 1)
    }
}

/// Which message a delivery report is about.
#[derive(Debug, Clone, Copy)]
pub enum DlrTarget<'a> {
    /// Our message id and its token, from the URL we gave (Kannel).
    Ours { id: Uuid, token: &'a str },
    /// The gateway's message id (Africa's Talking).
    Provider { provider: &'a str, id: &'a str },
}

fn contact(
    (id, username, role, scope, phone, language): (
        Uuid,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
    ),
) -> StoreResult<UserContact> {
    let bad = |what: &str, e: String| StoreError::Invalid(format!("user {username}: {what}: {e}"));
    Ok(UserContact {
        id,
        role: role
            .parse::<Role>()
            .map_err(|e| bad("role", e.to_string()))?,
        scope: AreaScope::parse(&scope).map_err(|e| bad("scope", e.to_string()))?,
        username,
        phone,
        language,
    })
}

/// Compares secrets without leaking where they differ through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Store {
    /// Outbound SMS, reminders and users' phones.
    pub fn sms(&self) -> Sms<'_> {
        Sms { store: self }
    }
}
