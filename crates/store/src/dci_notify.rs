//! Port of DCI event subscriptions and their notifications (schema: migrations
//! `0015_dci_notify`).
//!
//! Registry events are the outbox. A dispatcher reads them in commit order after a cursor
//! ([`NotifyStore::lock_cursor`], [`NotifyStore::outbox_after`]) and, in the same unit of work
//! that moves the cursor, writes one notification per (subscription, event) with the job that
//! delivers it. A crash before the commit leaves the cursor where it was: the batch is read
//! again. The notifications of one subject (a household) to one subscription form a chain
//! delivered in order: only the oldest open one has a job (`queued`), later ones wait
//! (`waiting`) until it is delivered or dead, then the next is released.

use chrono::{DateTime, Utc};
use inkingi_domain::registry::history::RegistryEvent;
use serde_json::Value;
use uuid::Uuid;

use crate::shared_sql::on_uow;
use crate::{StoreError, StoreResult, UnitOfWork};

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// The `subscription_code` handed to the subscriber (UUIDv7).
    pub code: String,
    /// The authenticated user who subscribed; notifications are read within their area scope.
    pub client: String,
    pub sender_id: String,
    pub notify_url: String,
    /// DCI event type names (`household_registered`, `live_birth`, …).
    pub event_types: Vec<String>,
    /// Area codes the subscriber asked for; empty for all of its scope.
    pub areas: Vec<String>,
    /// `Group` or `Member`.
    pub record_type: String,
    pub purpose: String,
    /// `subscribe` (active) or `unsubscribe`.
    pub status: String,
    pub transaction_id: String,
    pub reference_id: String,
    /// `subscribe_criteria` as received, echoed in subscription info.
    pub criteria: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// [`KIND_DCI`] or [`KIND_WEBHOOK`].
    pub kind: String,
    /// A webhook's HMAC key (migration `0028_webhooks`); shown once, when it is made.
    pub secret: Option<WebhookSecret>,
}

/// A DCI subscriber: `notify` envelopes.
pub const KIND_DCI: &str = "dci";
/// A partner's webhook: plain JSON events signed with HMAC-SHA256.
pub const KIND_WEBHOOK: &str = "webhook";

/// The HMAC key of a webhook. It must be kept to sign each delivery (a digest would not do),
/// so it is stored as is and only kept out of logs here.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(pub String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// A position in the commit order of registry events (SQLite: rowid, 0; PostgreSQL: transaction
/// id, sequence number). Opaque to callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct EventPos {
    pub(crate) a: i64,
    pub(crate) b: i64,
}

impl EventPos {
    /// The two numbers, for display and comparison by callers that report progress.
    pub fn parts(&self) -> (i64, i64) {
        (self.a, self.b)
    }
}

/// A registry event read from the outbox, with the village of its household now.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub pos: EventPos,
    pub event: RegistryEvent,
    pub village: Option<String>,
}

/// The state of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationStatus {
    /// Behind an open notification of the same chain.
    Waiting,
    /// Its delivery job is enqueued.
    Queued,
    Delivered,
    /// Its job ran out of attempts or was refused for good.
    Dead,
}

impl NotificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Waiting => "waiting",
            NotificationStatus::Queued => "queued",
            NotificationStatus::Delivered => "delivered",
            NotificationStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> StoreResult<NotificationStatus> {
        Ok(match s {
            "waiting" => NotificationStatus::Waiting,
            "queued" => NotificationStatus::Queued,
            "delivered" => NotificationStatus::Delivered,
            "dead" => NotificationStatus::Dead,
            other => {
                return Err(StoreError::Invalid(format!(
                    "unknown notification status {other:?}"
                )))
            }
        })
    }
}

/// A notification as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub subscription_code: String,
    pub event_id: Uuid,
    pub seq: i64,
    pub subject_id: Uuid,
    pub event_type: String,
    pub status: NotificationStatus,
    /// The delivery job's payload, kept until the job is enqueued.
    pub job: Option<Value>,
}

/// A notification to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub subscription_code: String,
    pub event_id: Uuid,
    pub seq: i64,
    pub subject_id: Uuid,
    pub event_type: String,
    pub status: NotificationStatus,
    /// The payload, for a waiting notification (a queued one's job already exists).
    pub job: Option<Value>,
    /// The delivery job of a queued notification.
    pub job_id: Option<Uuid>,
    pub at: DateTime<Utc>,
}

#[async_trait::async_trait]
pub trait NotifyStore: Send + Sync {
    async fn create_subscription(&self, uow: &mut UnitOfWork, s: &Subscription) -> StoreResult<()>;

    /// The client's subscriptions with these codes (all of them when `codes` is empty), oldest
    /// first, at most 100.
    async fn subscriptions(&self, client: &str, codes: &[String])
        -> StoreResult<Vec<Subscription>>;

    /// The client's active subscriptions of one `kind` (`dci`, `webhook`), oldest first: all
    /// of them, since a client may hold only a few active ones.
    async fn active_of_kind(&self, client: &str, kind: &str) -> StoreResult<Vec<Subscription>>;

    /// How many active subscriptions of `kind` the client holds, counted inside the unit of
    /// work after taking a per-client lock kept to its end, so that two concurrent creations
    /// cannot both pass a per-client limit.
    async fn count_active_locked(
        &self,
        uow: &mut UnitOfWork,
        client: &str,
        kind: &str,
    ) -> StoreResult<i64>;

    /// Sets a subscription's status; false when the client has no subscription with that code.
    async fn set_subscription_status(
        &self,
        uow: &mut UnitOfWork,
        client: &str,
        code: &str,
        status: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Every active subscription.
    async fn active_subscriptions(&self) -> StoreResult<Vec<Subscription>>;

    /// One subscription by its code, whoever made it (for the delivery job).
    async fn subscription(&self, code: &str) -> StoreResult<Option<Subscription>>;

    /// Locks the dispatcher's cursor for the unit of work (one dispatcher at a time); returns
    /// it with the next notification sequence number.
    async fn lock_cursor(&self, uow: &mut UnitOfWork) -> StoreResult<(EventPos, i64)>;

    /// The cursor as last committed, read without locking it: a dispatcher prepares a batch
    /// from it, then takes the lock and checks it has not moved.
    async fn cursor(&self) -> StoreResult<(EventPos, i64)>;

    /// Up to `limit` committed registry events after `pos`, in commit order, read outside any
    /// write transaction. On PostgreSQL only events of transactions older than every running
    /// one: no event can commit behind them.
    async fn outbox_after(&self, pos: EventPos, limit: u32) -> StoreResult<Vec<OutboxEvent>>;

    async fn save_cursor(
        &self,
        uow: &mut UnitOfWork,
        pos: EventPos,
        next_seq: i64,
    ) -> StoreResult<()>;

    async fn insert_notification(
        &self,
        uow: &mut UnitOfWork,
        n: &NewNotification,
    ) -> StoreResult<()>;

    /// Whether the chain (subscription, subject) has a waiting or queued notification.
    async fn chain_open(
        &self,
        uow: &mut UnitOfWork,
        code: &str,
        subject: Uuid,
    ) -> StoreResult<bool>;

    async fn notification(&self, code: &str, event_id: Uuid) -> StoreResult<Option<Notification>>;

    /// Sets the status of a notification (delivered, dead, queued with its `job_id`); queuing
    /// clears the kept payload, whose job now exists.
    async fn set_notification_status(
        &self,
        uow: &mut UnitOfWork,
        code: &str,
        event_id: Uuid,
        status: NotificationStatus,
        job_id: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Waiting notifications to release: the oldest waiting one of each chain that has no
    /// queued one (at most `limit`, oldest first); only chain `only` when given.
    async fn releasable(
        &self,
        uow: &mut UnitOfWork,
        only: Option<(&str, Uuid)>,
        limit: u32,
    ) -> StoreResult<Vec<Notification>>;

    /// Queued notifications whose job is dead (it lost its last attempt in a crash, before
    /// the handler could record it): at most `limit`.
    async fn stranded(&self, limit: u32) -> StoreResult<Vec<Notification>>;

    /// How many notifications are in each status.
    async fn notification_counts(&self) -> StoreResult<Vec<(NotificationStatus, u64)>>;
}

/// Decodes a JSON list of texts stored in a subscription column.
pub(crate) fn text_list(v: Value, what: &str) -> StoreResult<Vec<String>> {
    serde_json::from_value(v)
        .map_err(|e| StoreError::Invalid(format!("dci_subscriptions.{what}: {e}")))
}

/// The count behind [`NotifyStore::count_active_locked`], the same SQL on both backends (each
/// backend takes its own lock first).
pub(crate) async fn count_active(
    uow: &mut UnitOfWork,
    client: &str,
    kind: &str,
) -> StoreResult<i64> {
    const SQL: &str = "SELECT COUNT(*) FROM dci_subscriptions \
         WHERE client = $1 AND kind = $2 AND status = 'subscribe'";
    let n: i64 = on_uow!(uow, |c| sqlx::query_scalar(SQL)
        .bind(client)
        .bind(kind)
        .fetch_one(c)
        .await?);
    Ok(n)
}
