//! Event subscriptions (DCI registry core `subscribe`, `unsubscribe`, `notify`): what a
//! subscriber may ask for, which registry events become which DCI event types, the dispatcher
//! that turns registry events into notifications, and the `dci.notify` job that delivers them.
//!
//! Delivery loses nothing and keeps each household's order:
//! - the registry's event table is the outbox; the dispatcher reads it in commit order after a
//!   cursor and writes, in the transaction that moves the cursor, one notification per
//!   (subscription, event) with its delivery job (idempotency key
//!   `dci-notify:<subscription>:<event>`), so a crash repeats a batch but never skips one;
//! - one chain per (subscription, household): only its oldest open notification has a job; the
//!   next is released when it is delivered or dead-lettered, never before;
//! - the envelope's `message_id` is `<subscription>:<event>` on every attempt, so a subscriber
//!   drops the rare repeat (a worker that crashed after the subscriber took the message and
//!   before it recorded so).

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::audit::AuditRecord;
use inkingi_domain::identity::{AreaScope, Username};
use inkingi_domain::registry::history::{Channel, RegistryEvent};
use inkingi_store::dci_notify::{
    NewNotification, Notification, NotificationStatus, OutboxEvent, Subscription, KIND_WEBHOOK,
};
use inkingi_store::jobs::{Job, NewJob};
use inkingi_store::registry::{PersonField, PersonFilter};
use inkingi_store::{Store, StoreResult, UnitOfWork};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::envelope::{short, timestamp, VERSION};
use super::records;
use crate::breaker::{self, Breakers};
use crate::worker::{JobContext, JobError, JobHandler};

/// A registry event type a subscriber can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    HouseholdRegistered,
    HouseholdUpdated,
    MemberAdded,
    MemberRemoved,
    LiveBirth,
    Death,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::HouseholdRegistered,
        EventType::HouseholdUpdated,
        EventType::MemberAdded,
        EventType::MemberRemoved,
        EventType::LiveBirth,
        EventType::Death,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::HouseholdRegistered => "household_registered",
            EventType::HouseholdUpdated => "household_updated",
            EventType::MemberAdded => "member_added",
            EventType::MemberRemoved => "member_removed",
            EventType::LiveBirth => "live_birth",
            EventType::Death => "death",
        }
    }

    /// Reads a name as subscribers write it: `live_birth`, `LiveBirth`,
    /// `spdci-common:RegistryEventType:LiveBirth`, `birth`, case and separators aside.
    pub fn parse(s: &str) -> Option<EventType> {
        let last = s.rsplit(':').next().unwrap_or(s);
        let key: String = last
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        Some(match key.as_str() {
            "householdregistered" | "register" | "registered" => EventType::HouseholdRegistered,
            "householdupdated" | "update" | "updated" => EventType::HouseholdUpdated,
            "memberadded" => EventType::MemberAdded,
            "memberremoved" => EventType::MemberRemoved,
            "livebirth" | "birth" => EventType::LiveBirth,
            "death" => EventType::Death,
            _ => return None,
        })
    }

    /// The DCI event types a registry event is, most specific first (a birth is also a member
    /// added). Empty for events no subscriber can ask for.
    pub fn of_event(e: &RegistryEvent) -> Vec<EventType> {
        match e.kind.as_str() {
            "household.registered" => vec![EventType::HouseholdRegistered],
            "household.updated"
            | "household.dissolved"
            | "household.merged"
            | "member.updated"
            | "member.role_changed" => vec![EventType::HouseholdUpdated],
            "member.added" if is_birth(e) => vec![EventType::LiveBirth, EventType::MemberAdded],
            "member.added" | "member.joined" => vec![EventType::MemberAdded],
            "member.removed" => vec![EventType::MemberRemoved],
            "member.died" => vec![EventType::Death],
            _ => Vec::new(),
        }
    }
}

/// A member added as a birth: reported by civil registration, or a member of the household
/// since the day they were born (as a recorded birth is).
fn is_birth(e: &RegistryEvent) -> bool {
    if e.channel == Channel::Crvs {
        return true;
    }
    let after = e.after.as_ref();
    let field = |k: &str| after.and_then(|a| a.get(k)).and_then(Value::as_str);
    matches!((field("birth_date"), field("member_since")), (Some(b), Some(s)) if b.len() == 10 && b == s)
}

/// `SubscribeStatusReasonCode` and `UnSubscribeStatusReasonCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeReason {
    ReferenceIdInvalid,
    ReferenceIdDuplicate,
    TimestampInvalid,
    NotifyTypesInvalid,
    NotifyDetailsInvalid,
    SubscriptionCodeInvalid,
    AlreadyUnsubscribed,
}

impl SubscribeReason {
    pub fn code(self) -> &'static str {
        match self {
            SubscribeReason::ReferenceIdInvalid => "rjct.reference_id.invalid",
            SubscribeReason::ReferenceIdDuplicate => "rjct.reference_id.duplicate",
            SubscribeReason::TimestampInvalid => "rjct.timestamp.invalid",
            SubscribeReason::NotifyTypesInvalid => "rjct.notify_types.invalid",
            SubscribeReason::NotifyDetailsInvalid => "rjct.notify_details.invalid",
            SubscribeReason::SubscriptionCodeInvalid => "rjct.subscription_code.invalid",
            SubscribeReason::AlreadyUnsubscribed => "rjct.event.already_unsubscribed",
        }
    }
}

/// A refused subscribe request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRejection {
    pub reason: SubscribeReason,
    pub message: String,
}

fn reject<T>(reason: SubscribeReason, message: impl Into<String>) -> Result<T, SubscribeRejection> {
    Err(SubscribeRejection {
        reason,
        message: message.into(),
    })
}

/// The `message` of a subscribe request.
#[derive(Debug, Clone, Deserialize)]
pub struct SubscribeMessage {
    #[serde(default)]
    pub transaction_id: String,
    pub subscribe_request: Vec<SubscribeItem>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscribeItem {
    #[serde(default)]
    pub reference_id: Option<Value>,
    #[serde(default)]
    pub timestamp: Option<Value>,
    #[serde(default)]
    pub subscribe_criteria: Option<Value>,
    #[serde(default)]
    pub locale: Option<Value>,
}

/// What a subscriber asked for, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Criteria {
    pub event_types: Vec<EventType>,
    /// Empty for the subscriber's whole scope.
    pub areas: Vec<AreaCode>,
    /// `Group` or `Member`.
    pub record_type: &'static str,
    /// As sent, echoed in subscription info.
    pub raw: Value,
}

/// One subscribe request, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedSubscribe {
    pub reference_id: String,
    pub outcome: Result<Criteria, SubscribeRejection>,
}

/// Checks every request of a subscribe message.
pub fn check_subscribe(items: &[SubscribeItem], today: NaiveDate) -> Vec<CheckedSubscribe> {
    let mut seen = HashSet::new();
    items
        .iter()
        .map(|item| {
            let reference_id = match &item.reference_id {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            let outcome = check_reference(&reference_id, &mut seen)
                .and_then(|()| check_timestamp(item.timestamp.as_ref()))
                .and_then(|()| criteria(item.subscribe_criteria.as_ref(), today));
            CheckedSubscribe {
                reference_id,
                outcome,
            }
        })
        .collect()
}

fn check_reference(id: &str, seen: &mut HashSet<String>) -> Result<(), SubscribeRejection> {
    if id.trim().is_empty() || id.chars().count() > 99 {
        return reject(
            SubscribeReason::ReferenceIdInvalid,
            "subscribe_request.reference_id: required, 1 to 99 characters",
        );
    }
    if !seen.insert(id.to_string()) {
        return reject(
            SubscribeReason::ReferenceIdDuplicate,
            format!(
                "subscribe_request.reference_id '{}' appears twice in this message",
                short(id)
            ),
        );
    }
    Ok(())
}

fn check_timestamp(ts: Option<&Value>) -> Result<(), SubscribeRejection> {
    match ts.and_then(Value::as_str) {
        Some(s) if DateTime::parse_from_rfc3339(s.trim()).is_ok() => Ok(()),
        _ => reject(
            SubscribeReason::TimestampInvalid,
            "subscribe_request.timestamp: required, an ISO 8601 date-time with offset",
        ),
    }
}

fn criteria(c: Option<&Value>, today: NaiveDate) -> Result<Criteria, SubscribeRejection> {
    use SubscribeReason::{NotifyDetailsInvalid as Details, NotifyTypesInvalid as Types};
    let Some(Value::Object(c)) = c else {
        return reject(
            Details,
            "subscribe_request.subscribe_criteria: required, an object",
        );
    };
    let names: Vec<&str> = match c.get("reg_event_type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) if !a.is_empty() => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        return reject(
            Types,
            format!(
                "subscribe_criteria.reg_event_type: required, one of (or a list of) {}",
                type_list()
            ),
        );
    }
    let mut event_types = Vec::new();
    for n in names {
        let t = EventType::parse(n).ok_or_else(|| SubscribeRejection {
            reason: Types,
            message: format!(
                "subscribe_criteria.reg_event_type '{}': expected one of {}",
                short(n),
                type_list()
            ),
        })?;
        if !event_types.contains(&t) {
            event_types.push(t);
        }
    }
    let record_type = match c.get("notify_record_type").and_then(Value::as_str) {
        None | Some("") | Some("Group") | Some("Household") => "Group",
        Some(s) if s.ends_with("Member") || s.ends_with("Person") => "Member",
        Some(other) => {
            return reject(
                Details,
                format!(
                    "subscribe_criteria.notify_record_type '{}': expected Group or Member",
                    short(other)
                ),
            )
        }
    };
    let areas = filter_areas(c.get("filter_type"), c.get("filter"), today)?;
    Ok(Criteria {
        event_types,
        areas,
        record_type,
        raw: Value::Object(c.clone()),
    })
}

fn type_list() -> String {
    EventType::ALL.map(EventType::as_str).join(", ")
}

/// The areas a subscription's filter names: any query the search API takes, as long as it
/// tests only the area (`village`, `location`, `area` with `eq` or `in`, or-ed together).
/// An absent or empty filter is the subscriber's whole scope.
fn filter_areas(
    filter_type: Option<&Value>,
    filter: Option<&Value>,
    today: NaiveDate,
) -> Result<Vec<AreaCode>, SubscribeRejection> {
    let empty = match filter {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    };
    if empty {
        return Ok(Vec::new());
    }
    let query_type = filter_type
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("predicate");
    let criteria = json!({"query_type": query_type, "query": filter});
    let parsed =
        super::search::prepare(Some(&criteria), today).map_err(|r| SubscribeRejection {
            reason: SubscribeReason::NotifyDetailsInvalid,
            message: format!("subscribe_criteria.filter: {}", r.message),
        })?;
    let mut codes = Vec::new();
    collect_areas(&parsed.query.filter, &mut codes).map_err(|m| SubscribeRejection {
        reason: SubscribeReason::NotifyDetailsInvalid,
        message: format!("subscribe_criteria.filter: {m}"),
    })?;
    codes
        .iter()
        .map(|c| AreaCode::parse(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SubscribeRejection {
            reason: SubscribeReason::NotifyDetailsInvalid,
            message: format!("subscribe_criteria.filter: {e}"),
        })
}

fn collect_areas(f: &PersonFilter, out: &mut Vec<String>) -> Result<(), String> {
    match f {
        PersonFilter::Cond(c) if c.field == PersonField::Village => {
            out.extend(c.values.iter().cloned());
            Ok(())
        }
        PersonFilter::Any(parts) => parts.iter().try_for_each(|p| collect_areas(p, out)),
        PersonFilter::All(parts) if parts.len() == 1 => collect_areas(&parts[0], out),
        _ => Err(
            "a subscription filter may only name areas (village, location or area, with \
                  eq or in, or-ed together); other attributes are not events' attributes"
                .into(),
        ),
    }
}

/// The `message` of an unsubscribe request (the spec's schema spells `timestamp` both ways).
#[derive(Debug, Clone, Deserialize)]
pub struct UnsubscribeMessage {
    #[serde(default)]
    pub transaction_id: String,
    #[serde(default)]
    pub subscription_codes: Vec<String>,
}

/// `SubscriptionInfo` of a stored subscription.
pub fn subscription_info(s: &Subscription) -> Value {
    let c = &s.criteria;
    json!({
        "version": VERSION,
        "code": s.code,
        "status": s.status,
        "timestamp": timestamp(s.updated_at),
        "reg_event_type": s.event_types,
        "filter_type": c.get("filter_type").cloned().unwrap_or(Value::Null),
        "filter": c.get("filter").cloned().unwrap_or(Value::Null),
        "notify_record_type": s.record_type,
        "notify_url": s.notify_url,
    })
}

/// The payload of a `dci.notify` job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifyJob {
    /// The subscriber's `sender_uri` + `/notify`.
    pub url: String,
    pub subscription_code: String,
    pub event_id: Uuid,
    /// The household: notifications of one subject are delivered in order.
    pub subject_id: Uuid,
    /// The `notify` envelope; its `message_ts` is set when sent. For a webhook, the event's
    /// JSON.
    pub body: Value,
    /// A partner webhook: signed with the subscription's HMAC key at each attempt.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub webhook: bool,
}

/// The queue of notification deliveries.
pub const NOTIFY_QUEUE: &str = "dci-notify";
/// The connector name in metrics.
pub const CONNECTOR: &str = "dci.notify";

impl Job for NotifyJob {
    const KIND: &'static str = "dci.notify";
    const QUEUE: &'static str = NOTIFY_QUEUE;
    /// Attempts that fail (not those deferred by an open circuit); with the default backoff
    /// (capped at 15 minutes) this keeps trying for about four hours.
    const MAX_ATTEMPTS: u32 = 25;

    fn idempotency_key(&self) -> Option<String> {
        Some(format!(
            "dci-notify:{}:{}",
            self.subscription_code, self.event_id
        ))
    }
}

/// Runs `dci.notify` jobs.
#[derive(Debug, Clone)]
pub struct NotifyHandler {
    client: reqwest::Client,
    signer: Option<super::signing::MessageSigner>,
    /// Started on the first job, with that job's store.
    outcomes: Arc<tokio::sync::OnceCell<OutcomeWriter>>,
}

/// Most delivery outcomes committed in one transaction.
const MAX_OUTCOMES_PER_TXN: usize = 1_000;

/// The end of one notification (delivered or dead), to record with the release of the next of
/// its chain.
#[derive(Debug, Clone)]
struct Finished {
    code: String,
    event_id: Uuid,
    subject: Uuid,
    status: NotificationStatus,
}

struct PendingOutcome {
    done: Finished,
    reply: oneshot::Sender<Result<(), String>>,
}

/// Group commit of delivery outcomes: each job hands its outcome to one writer task per
/// process and waits for the commit (a job is not reported done before its notification's
/// status and the release of its chain's next one are recorded), but the writer records every
/// outcome queued meanwhile in one transaction, instead of one transaction per delivery that
/// 16 job runners queued for on SQLite's single writer.
#[derive(Debug, Clone)]
struct OutcomeWriter {
    tx: mpsc::Sender<PendingOutcome>,
}

impl OutcomeWriter {
    fn start(store: Store) -> OutcomeWriter {
        let (tx, rx) = mpsc::channel(4 * MAX_OUTCOMES_PER_TXN);
        tokio::spawn(run_outcomes(store, rx));
        OutcomeWriter { tx }
    }

    async fn record(&self, done: Finished) -> StoreResult<()> {
        let gone = || inkingi_store::StoreError::Unavailable("the outcome writer stopped".into());
        let (reply, wait) = oneshot::channel();
        self.tx
            .send(PendingOutcome { done, reply })
            .await
            .map_err(|_| gone())?;
        wait.await
            .map_err(|_| gone())?
            .map_err(inkingi_store::StoreError::Unavailable)
    }
}

async fn run_outcomes(store: Store, mut rx: mpsc::Receiver<PendingOutcome>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_OUTCOMES_PER_TXN {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        metrics::histogram!("dci_notify_outcome_batch_size").record(batch.len() as f64);
        let all: Vec<Finished> = batch.iter().map(|p| p.done.clone()).collect();
        match write_outcomes(&store, &all).await {
            Ok(()) => {
                for p in batch {
                    let _ = p.reply.send(Ok(()));
                }
            }
            Err(e) => {
                // One bad outcome must not fail the others: record each on its own.
                tracing::warn!(error = %e, outcomes = batch.len(), "notification outcomes batch failed; writing them one by one");
                for p in batch {
                    let one = write_outcomes(&store, std::slice::from_ref(&p.done)).await;
                    let _ = p.reply.send(one.map_err(|e| e.to_string()));
                }
            }
        }
    }
}

/// Records each notification's end and releases the next of its chain, in one transaction.
async fn write_outcomes(store: &Store, all: &[Finished]) -> StoreResult<()> {
    let mut uow = store.begin().await?;
    let now = Utc::now();
    for f in all {
        store
            .dci_notify()
            .set_notification_status(&mut uow, &f.code, f.event_id, f.status, None, now)
            .await?;
        release(store, &mut uow, Some((&f.code, f.subject)), 1).await?;
    }
    uow.commit().await
}

impl NotifyHandler {
    pub fn new() -> Result<NotifyHandler, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(NotifyHandler {
            client,
            signer: None,
            outcomes: Arc::default(),
        })
    }

    /// Signs every notification before it is sent (each attempt anew).
    pub fn signed_by(mut self, signer: Option<super::signing::MessageSigner>) -> Self {
        self.signer = signer;
        self
    }
}

/// How a delivery attempt went.
enum Sent {
    Ok,
    /// Worth trying again.
    Retry(String),
    /// The subscriber refuses it for good.
    Refused(String),
}

impl NotifyHandler {
    async fn send(&self, job: &NotifyJob, webhook_secret: Option<&str>) -> Sent {
        let now = Utc::now();
        let request = match webhook_secret {
            Some(secret) => {
                let bytes = job.body.to_string().into_bytes();
                self.client
                    .post(&job.url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(super::webhook::EVENT_HEADER, job.event_id.to_string())
                    .header(
                        super::webhook::TIMESTAMP_HEADER,
                        now.timestamp().to_string(),
                    )
                    .header(
                        super::webhook::SIGNATURE_HEADER,
                        super::webhook::sign(secret, now, &bytes),
                    )
                    .body(bytes)
            }
            None => {
                let mut body = job.body.clone();
                body["header"]["message_ts"] = json!(timestamp(now));
                if let Some(signer) = &self.signer {
                    signer.sign(&mut body, now);
                }
                self.client.post(&job.url).json(&body)
            }
        };
        match request.send().await {
            Err(e) => Sent::Retry(format!("POST {}: {e}", job.url)),
            Ok(res) if res.status().is_success() => Sent::Ok,
            Ok(res) => {
                let status = res.status();
                let msg = format!("POST {}: HTTP {status}", job.url);
                if status.is_server_error()
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT
                {
                    Sent::Retry(msg)
                } else {
                    Sent::Refused(msg)
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl JobHandler for NotifyHandler {
    fn kind(&self) -> &'static str {
        NotifyJob::KIND
    }

    async fn run(&self, ctx: &JobContext, payload: Value) -> Result<(), JobError> {
        let job: NotifyJob = serde_json::from_value(payload)
            .map_err(|e| JobError::permanent(format!("bad {} payload: {e}", NotifyJob::KIND)))?;
        let store = &ctx.store;
        let note = store
            .dci_notify()
            .notification(&job.subscription_code, job.event_id)
            .await
            .map_err(JobError::retry)?
            .ok_or_else(|| {
                JobError::permanent(format!(
                    "no notification of event {} to subscription {}",
                    job.event_id, job.subscription_code
                ))
            })?;
        if note.status == NotificationStatus::Delivered {
            // Delivered by an earlier run whose worker stopped before it could say so; make
            // sure the household's next notification is on its way.
            return self
                .finish(store, &job, NotificationStatus::Delivered)
                .await
                .map_err(JobError::retry);
        }
        let secret = match webhook_secret(store, &job).await? {
            Ok(secret) => secret,
            Err(gone) => {
                self.finish(store, &job, NotificationStatus::Dead)
                    .await
                    .map_err(JobError::retry)?;
                return Err(JobError::Permanent(gone));
            }
        };
        let system = breaker::system_of(&job.url);
        let breakers = Breakers::global();
        if let Err(wait) = breakers.before_call(CONNECTOR, &system) {
            breaker::count_deferred(CONNECTOR, &system);
            return Err(JobError::Defer {
                after: wait,
                reason: format!("circuit of {system} is open"),
            });
        }
        match self.send(&job, secret.as_deref()).await {
            Sent::Ok => {
                breakers.success(CONNECTOR, &system);
                self.finish(store, &job, NotificationStatus::Delivered)
                    .await
                    .map_err(JobError::retry)
            }
            Sent::Retry(msg) if ctx.attempt < ctx.max_attempts => {
                breakers.failure(CONNECTOR, &system);
                breaker::count_retry(CONNECTOR, &system);
                Err(JobError::Retry(msg))
            }
            Sent::Retry(msg) | Sent::Refused(msg) => {
                breakers.failure(CONNECTOR, &system);
                breaker::count_failed(CONNECTOR, &system);
                // Dead-lettered: the household's next notification may go.
                self.finish(store, &job, NotificationStatus::Dead)
                    .await
                    .map_err(JobError::retry)?;
                Err(JobError::Permanent(msg))
            }
        }
    }
}

/// A webhook job's HMAC key (`Ok(None)` for a DCI notification), or why the webhook no longer
/// takes deliveries: deleted after the event was queued.
async fn webhook_secret(
    store: &Store,
    job: &NotifyJob,
) -> Result<Result<Option<String>, String>, JobError> {
    if !job.webhook {
        return Ok(Ok(None));
    }
    let sub = store
        .dci_notify()
        .subscription(&job.subscription_code)
        .await
        .map_err(JobError::retry)?;
    Ok(match sub {
        Some(s) if s.status == "subscribe" => s
            .secret
            .map(|k| Some(k.0))
            .ok_or_else(|| format!("webhook {} has no secret", job.subscription_code)),
        _ => Err(format!(
            "webhook {} was deleted; event {} not sent",
            job.subscription_code, job.event_id
        )),
    })
}

impl NotifyHandler {
    /// Records the end of a notification and releases the next of its chain (grouped with
    /// other jobs' outcomes, see [`OutcomeWriter`]); returns once committed.
    async fn finish(
        &self,
        store: &Store,
        job: &NotifyJob,
        status: NotificationStatus,
    ) -> StoreResult<()> {
        let writer = self
            .outcomes
            .get_or_init(|| async { OutcomeWriter::start(store.clone()) })
            .await;
        writer
            .record(Finished {
                code: job.subscription_code.clone(),
                event_id: job.event_id,
                subject: job.subject_id,
                status,
            })
            .await
    }
}

/// Enqueues the jobs of waiting notifications whose chain has nothing open (one chain, or all);
/// returns how many.
async fn release(
    store: &Store,
    uow: &mut UnitOfWork,
    only: Option<(&str, Uuid)>,
    limit: u32,
) -> StoreResult<usize> {
    let ready = store.dci_notify().releasable(uow, only, limit).await?;
    for n in &ready {
        enqueue_waiting(store, uow, n).await?;
    }
    Ok(ready.len())
}

async fn enqueue_waiting(store: &Store, uow: &mut UnitOfWork, n: &Notification) -> StoreResult<()> {
    let bad = |what: String| inkingi_store::StoreError::Invalid(what);
    let payload = n
        .job
        .clone()
        .ok_or_else(|| bad(format!("waiting notification {} has no job", n.event_id)))?;
    let job: NotifyJob = serde_json::from_value(payload)
        .map_err(|e| bad(format!("notification {} job: {e}", n.event_id)))?;
    let id = store.jobs().enqueue(uow, NewJob::of(&job)?).await?;
    store
        .dci_notify()
        .set_notification_status(
            uow,
            &n.subscription_code,
            n.event_id,
            NotificationStatus::Queued,
            Some(id.as_uuid()),
            Utc::now(),
        )
        .await
}

/// Settings of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// `sender_id` of notifications.
    pub registry_id: String,
    /// How long an idle dispatcher waits before reading the outbox again.
    pub poll_interval: Duration,
    /// Registry events read per transaction.
    pub batch: u32,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            registry_id: "inkingi".into(),
            poll_interval: Duration::from_millis(500),
            batch: 500,
        }
    }
}

/// Reads the outbox until `shutdown`: every worker process runs one; they take turns on the
/// cursor (a row lock on PostgreSQL, the single writer on SQLite).
pub async fn run_dispatcher(store: Store, settings: DispatchSettings, shutdown: CancellationToken) {
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let pause = match dispatch_once(&store, &settings).await {
            Ok(n) => {
                failures = 0;
                // Events were there: there may be more (a round stops at a number of
                // notifications, not only at the batch of events).
                if n > 0 {
                    Duration::ZERO
                } else {
                    settings.poll_interval
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, "cannot dispatch DCI notifications; will try again");
                (settings.poll_interval * (1 << failures.min(5))).min(Duration::from_secs(60))
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Most notifications written in one transaction: the dispatcher holds the database's writer
/// (on SQLite, the only one) while it writes them, and deliveries wait meanwhile.
pub const MAX_NOTIFICATIONS_PER_TXN: usize = 1_000;

/// A notification prepared before the writer is taken: what it carries is read already.
struct Planned<'a> {
    sub: &'a Subscription,
    ev: &'a OutboxEvent,
    etype: EventType,
    records: Vec<Value>,
    audit: AuditRecord,
}

/// One round: repairs chains, then dispatches one batch of registry events; returns how many
/// events were consumed (0 when there were none, or another dispatcher moved the cursor first).
///
/// Everything is read before the write transaction starts (the cursor, the events after it,
/// the records each notification carries); the transaction then only takes the cursor's lock,
/// checks the cursor has not moved since, and writes. At most
/// [`MAX_NOTIFICATIONS_PER_TXN`] notifications go into one transaction, ending at an event's
/// boundary, so the cursor always stands between two events.
pub async fn dispatch_once(store: &Store, settings: &DispatchSettings) -> anyhow::Result<usize> {
    repair(store).await?;
    let subs = store.dci_notify().active_subscriptions().await?;
    let scopes = subscriber_scopes(store, &subs).await?;
    let (pos, _) = store.dci_notify().cursor().await?;
    let events = store.dci_notify().outbox_after(pos, settings.batch).await?;
    if events.is_empty() {
        return Ok(0);
    }
    let (planned, consumed) = plan(store, &subs, &scopes, &events).await?;
    let last = events[consumed - 1].pos;
    let mut uow = store.begin().await?;
    let (locked, mut next_seq) = store.dci_notify().lock_cursor(&mut uow).await?;
    if locked != pos {
        // Another dispatcher wrote these events meanwhile; what was read is dropped.
        return Ok(0);
    }
    let mut audit = Vec::with_capacity(planned.len());
    for p in planned {
        let body = if p.sub.kind == KIND_WEBHOOK {
            super::webhook::body(p.sub, p.ev, p.etype, p.records, next_seq)
        } else {
            notify_body(settings, p.sub, p.ev, p.etype, p.records, next_seq)
        };
        add_notification(store, &mut uow, p.sub, p.ev, p.etype, body, next_seq).await?;
        audit.push(p.audit);
        next_seq += 1;
    }
    store
        .dci_notify()
        .save_cursor(&mut uow, last, next_seq)
        .await?;
    if !audit.is_empty() {
        store.audit().append_in(&mut uow, audit).await?;
    }
    uow.commit().await?;
    Ok(consumed)
}

/// The notifications of the leading events, at most [`MAX_NOTIFICATIONS_PER_TXN`] (but every
/// notification of the first event, however many), and how many events they cover. Records are
/// read once per (subscriber, event), whatever the number of that subscriber's subscriptions.
async fn plan<'a>(
    store: &Store,
    subs: &'a [Subscription],
    scopes: &HashMap<String, AreaScope>,
    events: &'a [OutboxEvent],
) -> StoreResult<(Vec<Planned<'a>>, usize)> {
    let mut planned = Vec::new();
    let mut consumed = 0;
    for ev in events {
        let mut these = Vec::new();
        let mut reads: HashMap<&str, Option<Reads>> = HashMap::new();
        for sub in subs {
            let Some(scope) = scopes.get(&sub.client) else {
                continue;
            };
            let Some(etype) = matching_type(sub, scope, ev) else {
                continue;
            };
            let read = match reads.entry(sub.client.as_str()) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(read_event(store, scope, ev).await?)
                }
            };
            let Some(read) = read else {
                continue;
            };
            let (records, audit) = records_of(read, sub);
            these.push(Planned {
                sub,
                ev,
                etype,
                records,
                audit,
            });
        }
        if consumed > 0 && planned.len() + these.len() > MAX_NOTIFICATIONS_PER_TXN {
            break;
        }
        planned.extend(these);
        consumed += 1;
    }
    Ok((planned, consumed))
}

/// Marks dead the notifications whose job died without the handler recording it (its worker
/// stopped during the last attempt), and releases every chain left with nothing open.
async fn repair(store: &Store) -> StoreResult<()> {
    for n in store.dci_notify().stranded(100).await? {
        let mut uow = store.begin().await?;
        store
            .dci_notify()
            .set_notification_status(
                &mut uow,
                &n.subscription_code,
                n.event_id,
                NotificationStatus::Dead,
                None,
                Utc::now(),
            )
            .await?;
        uow.commit().await?;
    }
    let mut uow = store.begin().await?;
    release(store, &mut uow, None, 500).await?;
    uow.commit().await
}

/// The area scope of each subscriber that still exists and is enabled.
async fn subscriber_scopes(
    store: &Store,
    subs: &[Subscription],
) -> StoreResult<HashMap<String, AreaScope>> {
    let mut out = HashMap::new();
    for client in subs.iter().map(|s| &s.client) {
        if out.contains_key(client) {
            continue;
        }
        let Ok(name) = Username::parse(client) else {
            continue;
        };
        if let Some(user) = store.identity().user_by_name(&name).await? {
            if !user.disabled {
                out.insert(client.clone(), user.scope);
            }
        }
    }
    Ok(out)
}

/// The event type under which `sub` is notified of `ev`, if at all: an asked-for type, an event
/// recorded after the subscription, in one of its areas and within its subscriber's scope.
fn matching_type(sub: &Subscription, scope: &AreaScope, ev: &OutboxEvent) -> Option<EventType> {
    if ev.event.at < sub.created_at {
        return None;
    }
    let village = AreaCode::parse(ev.village.as_deref()?).ok()?;
    if !scope.contains(&village) {
        return None;
    }
    if !sub.areas.is_empty() && !sub.areas.iter().any(|a| village.as_str().starts_with(a)) {
        return None;
    }
    EventType::of_event(&ev.event)
        .into_iter()
        .find(|t| sub.event_types.iter().any(|s| s == t.as_str()))
}

/// What an event's notifications carry, read now within one subscriber's scope.
struct Reads {
    household: inkingi_domain::registry::Household,
    members: Vec<inkingi_store::registry::PersonRecord>,
    /// The member the event is about, for member events.
    member: Option<inkingi_store::registry::PersonRecord>,
}

/// Reads the event's household, its members and the member concerned within `scope`; `None`
/// when the household is no longer visible there.
async fn read_event(
    store: &Store,
    scope: &AreaScope,
    ev: &OutboxEvent,
) -> StoreResult<Option<Reads>> {
    let reg = store.registry();
    let e = &ev.event;
    let Some(household) = reg.household(scope, e.household_id).await? else {
        return Ok(None);
    };
    let members = reg.members(scope, household.id).await?;
    let member = match e.entity {
        inkingi_domain::registry::history::Entity::Member => reg.person(scope, e.entity_id).await?,
        inkingi_domain::registry::history::Entity::Household => None,
    };
    Ok(Some(Reads {
        household,
        members,
        member,
    }))
}

/// The records a notification to `sub` carries and the audit entry of that disclosure.
fn records_of(r: &Reads, sub: &Subscription) -> (Vec<Value>, AuditRecord) {
    let h = &r.household;
    let mut audit = AuditRecord::new(sub.client.as_str(), "household.read", "household");
    audit.via = Some(format!("dci-subscription:{}", sub.code));
    audit.subject_id = Some(h.id.to_string());
    audit.area = Some(h.village.clone());
    audit.purpose = Some(sub.purpose.clone());
    let records = match (sub.record_type.as_str(), r.member.as_ref()) {
        ("Member", Some(p)) => {
            audit.action = "person.read".into();
            audit.subject_type = "person".into();
            audit.subject_id = Some(p.person.id.to_string());
            audit.fields = vec!["dci:notify:member".into()];
            vec![records::member(p, Some(h))]
        }
        ("Member", None) => {
            audit.fields = vec!["dci:notify:member_list".into()];
            r.members
                .iter()
                .map(|p| records::member(p, Some(h)))
                .collect()
        }
        _ => {
            audit.fields = vec!["dci:notify:place".into(), "dci:notify:member_list".into()];
            vec![records::group(h, &r.members)]
        }
    };
    (records, audit)
}

/// The `notify` envelope (`NotifyEventRequest`). Besides the spec's fields each event carries
/// `subscription_code`, `event_id`, `subject_id` and `seq` (the order of delivery), so a
/// subscriber can check it has everything, once and in order.
fn notify_body(
    settings: &DispatchSettings,
    sub: &Subscription,
    ev: &OutboxEvent,
    etype: EventType,
    records: Vec<Value>,
    seq: i64,
) -> Value {
    let e = &ev.event;
    json!({
        "signature": "",
        "header": {
            "version": VERSION,
            "message_id": format!("{}:{}", sub.code, e.id),
            "message_ts": timestamp(Utc::now()),
            "action": "notify",
            "status": "succ",
            "total_count": 1,
            "completed_count": 1,
            "sender_id": settings.registry_id,
            "receiver_id": sub.sender_id,
            "is_msg_encrypted": false,
        },
        "message": {
            "transaction_id": sub.transaction_id,
            "notify_event": [{
                "reference_id": sub.reference_id,
                "timestamp": timestamp(e.at),
                "subscription_code": sub.code,
                "event_id": e.id,
                "subject_id": e.household_id,
                "seq": seq,
                "data": {
                    "version": VERSION,
                    "reg_type": "ns:org:RegistryType:Social",
                    "reg_event_type": etype.as_str(),
                    "reg_record_type": sub.record_type,
                    "reg_records": records,
                },
            }],
        },
    })
}

/// Writes the notification: queued with its job when its chain has nothing open, else waiting.
async fn add_notification(
    store: &Store,
    uow: &mut UnitOfWork,
    sub: &Subscription,
    ev: &OutboxEvent,
    etype: EventType,
    body: Value,
    seq: i64,
) -> StoreResult<()> {
    let subject = ev.event.household_id;
    let job = NotifyJob {
        url: sub.notify_url.clone(),
        subscription_code: sub.code.clone(),
        event_id: ev.event.id,
        subject_id: subject,
        body,
        webhook: sub.kind == KIND_WEBHOOK,
    };
    let open = store
        .dci_notify()
        .chain_open(uow, &sub.code, subject)
        .await?;
    let (status, payload, job_id) = if open {
        let payload = serde_json::to_value(&job)
            .map_err(|e| inkingi_store::StoreError::Invalid(e.to_string()))?;
        (NotificationStatus::Waiting, Some(payload), None)
    } else {
        let id = store.jobs().enqueue(uow, NewJob::of(&job)?).await?;
        (NotificationStatus::Queued, None, Some(id.as_uuid()))
    };
    store
        .dci_notify()
        .insert_notification(
            uow,
            &NewNotification {
                subscription_code: sub.code.clone(),
                event_id: ev.event.id,
                seq,
                subject_id: subject,
                event_type: etype.as_str().into(),
                status,
                job: payload,
                job_id,
                at: Utc::now(),
            },
        )
        .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::Map;

    fn event(kind: &str, channel: Channel, after: Value) -> RegistryEvent {
        RegistryEvent {
            id: Uuid::now_v7(),
            household_id: Uuid::now_v7(),
            entity: inkingi_domain::registry::history::Entity::Member,
            entity_id: Uuid::now_v7(),
            kind: kind.into(),
            at: Utc::now(),
            actor: "t".into(),
            channel,
            reason: None,
            change_request_id: None,
            before: None,
            after: after.as_object().cloned().or(Some(Map::new())),
        }
    }

    #[test]
    fn maps_registry_events_to_dci_event_types() {
        use EventType::*;
        let of = |k, c, a| EventType::of_event(&event(k, c, a));
        assert_eq!(
            of("household.registered", Channel::Api, json!({})),
            vec![HouseholdRegistered]
        );
        assert_eq!(
            of("member.updated", Channel::Web, json!({})),
            vec![HouseholdUpdated]
        );
        let born = json!({"birth_date": "2026-03-01", "member_since": "2026-03-01"});
        assert_eq!(
            of("member.added", Channel::ChangeRequest, born),
            vec![LiveBirth, MemberAdded]
        );
        let adult = json!({"birth_date": "1990-03-01", "member_since": "2026-03-01"});
        assert_eq!(
            of("member.added", Channel::Api, adult.clone()),
            vec![MemberAdded]
        );
        assert_eq!(
            of("member.added", Channel::Crvs, adult),
            vec![LiveBirth, MemberAdded]
        );
        assert_eq!(
            of("member.removed", Channel::Api, json!({})),
            vec![MemberRemoved]
        );
        assert_eq!(of("member.died", Channel::Api, json!({})), vec![Death]);
        assert!(of("something.else", Channel::Api, json!({})).is_empty());
    }

    #[test]
    fn reads_event_type_names_as_subscribers_write_them() {
        assert_eq!(
            EventType::parse("spdci-common:RegistryEventType:LiveBirth"),
            Some(EventType::LiveBirth)
        );
        assert_eq!(
            EventType::parse("household_registered"),
            Some(EventType::HouseholdRegistered)
        );
        assert_eq!(EventType::parse("Death"), Some(EventType::Death));
        assert_eq!(EventType::parse("marriage"), None);
    }

    fn item(criteria: Value) -> SubscribeItem {
        SubscribeItem {
            reference_id: Some(json!("r1")),
            timestamp: Some(json!(Utc::now().to_rfc3339())),
            subscribe_criteria: Some(criteria),
            locale: None,
        }
    }

    fn check(criteria: Value) -> Result<Criteria, SubscribeRejection> {
        let today = Utc::now().date_naive();
        check_subscribe(&[item(criteria)], today).remove(0).outcome
    }

    #[test]
    fn subscriptions_filter_by_area_only() {
        let c = check(json!({
            "reg_event_type": ["live_birth", "Death"],
            "filter_type": "predicate",
            "filter": [{"seq_num": 1, "expression1": {"attribute_name": "village", "operator": "in",
                        "attribute_value": ["11", "1201"]}}],
            "notify_record_type": "Member"
        }))
        .unwrap();
        assert_eq!(c.event_types, vec![EventType::LiveBirth, EventType::Death]);
        let codes: Vec<&str> = c.areas.iter().map(AreaCode::as_str).collect();
        assert_eq!(codes, vec!["11", "1201"]);
        assert_eq!(c.record_type, "Member");
        let all = check(json!({"reg_event_type": "household_updated", "filter": {}})).unwrap();
        assert!(all.areas.is_empty());
        assert_eq!(all.record_type, "Group");
    }

    #[test]
    fn bad_subscriptions_get_the_spec_codes() {
        let code = |c: Value| check(c).unwrap_err().reason.code();
        assert_eq!(
            code(json!({"reg_event_type": "marriage"})),
            "rjct.notify_types.invalid"
        );
        assert_eq!(code(json!({"filter": {}})), "rjct.notify_types.invalid");
        let by_sex = json!({"reg_event_type": "death", "filter_type": "predicate", "filter": [
            {"seq_num": 1, "expression1": {"attribute_name": "sex", "operator": "eq", "attribute_value": "female"}}]});
        assert_eq!(code(by_sex), "rjct.notify_details.invalid");
        let mut items = vec![item(json!({"reg_event_type": "death"}))];
        items.push(items[0].clone());
        items[0].timestamp = None;
        let checked = check_subscribe(&items, Utc::now().date_naive());
        assert_eq!(
            checked[0].outcome.as_ref().unwrap_err().reason.code(),
            "rjct.timestamp.invalid"
        );
        assert_eq!(
            checked[1].outcome.as_ref().unwrap_err().reason.code(),
            "rjct.reference_id.duplicate"
        );
    }
}
