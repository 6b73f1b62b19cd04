//! Civil registration (CRVS) events: `POST /dci/crvs/notify` takes the live births and deaths
//! a CRVS notifies (DCI registry core `notify`), `POST /dci/crvs/on-subscribe` its answer to
//! our subscription, `GET /api/v1/crvs/events` lists them; the `crvs.process` job turns each
//! event into registry work.
//!
//! Receiving loses nothing and adds nothing twice: a message id already taken is acknowledged
//! again without effect; each event is stored once per (source, event id) with its processing
//! job in the same transaction, then `ACK`. The caller is an API client with national scope
//! whose role may submit change requests.
//!
//! Processing, one job per event, in each subject's order (`seq`; a later event waits up to
//! `order_hold` for an earlier one still missing):
//! - live birth: the mother is found by national ID, else by the record-linkage engine on
//!   names, birth date and sex (as health records are linked); certain → a `record_birth`
//!   change request in her household with the child linked to her; uncertain → a linkage
//!   review (kind `crvs_live_birth`);
//! - death: the deceased is found the same way; certain → a `record_death` change request
//!   (naming a new head when the deceased headed a household with other members), whose
//!   application exits the person's programme enrolments; uncertain → a review (`crvs_death`).
//!
//! Requests and reviews go to the officers of the area as any other: civil registration
//! reports facts, and officers confirm them against the registry. Every write is audited.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use inkingi_domain::audit::AuditRecord;
use inkingi_domain::identity::{AreaScope, Permission};
use inkingi_domain::registry::change::{ChangeKind, ChangeRequest, ChangeStatus};
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::{BirthDate, MemberRole, Name, NationalId, PersonInput, Sex};
use inkingi_interop::crvs::{birth_of, death_of, read_notice, CrvsPerson, CrvsProcessJob};
use inkingi_interop::dci::envelope::{short, Ack, ErrorCode, HeaderRules};
use inkingi_interop::dci::records::ID_NATIONAL;
use inkingi_interop::worker::{JobContext, JobError, JobHandler};
use inkingi_store::children::LinkageReview;
use inkingi_store::crvs::{CrvsEvent, EventStatus};
use inkingi_store::dci::InboundMessage;
use inkingi_store::jobs::{Job, NewJob};
use inkingi_store::registry::{PersonRecord, PersonSearch};
use inkingi_store::Store;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::Principal;
use crate::children::link::{self, Decision};
use crate::dci::Refusal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{page_limit, Query};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(notify, on_subscribe, list_events),
    components(schemas(EventList))
)]
struct CrvsApi;

pub fn api() -> utoipa::openapi::OpenApi {
    CrvsApi::openapi()
}

/// Linkage reviews opened for CRVS events are of kinds `crvs_live_birth` and `crvs_death`.
pub const REVIEW_PREFIX: &str = "crvs_";

/// Fields of a person an event's processing reads from the registry (for the audit log).
const READ_FIELDS: &[&str] = &["name", "sex", "birth_date", "national_id", "household"];

/// Checks the caller may deliver civil registration events.
fn may_deliver(principal: &Principal) -> Result<(), ApiError> {
    principal.require(Permission::SubmitChangeRequests)?;
    if !principal.scope.is_national() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "civil registration events are delivered by a client with national scope",
        ));
    }
    Ok(())
}

/// Take events notified by a civil registration system: `ACK` once they are stored (a
/// message or event received before is acknowledged again and not stored twice).
#[utoipa::path(post, path = "/dci/crvs/notify", tag = "dci",
    request_body(content = Object, description = "DCI envelope {signature, header (action notify), message: NotifyEventRequest}; each notify_event carries event_id, data.reg_event_type (live_birth or death), data.reg_records[0], and subject_id and seq to order a person's events"),
    responses(
        (status = 202, description = "ACK: stored (or received before)", body = Object),
        (status = 400, description = "ERR acknowledgement: the message could not be read (the field is named)", body = Object),
        (status = 422, description = "NACK acknowledgement (stale timestamp, wrong action or count)", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn notify(State(state): State<AppState>, principal: Principal, body: Bytes) -> Response {
    let now = Utc::now();
    let cid = Uuid::now_v7().to_string();
    match receive(&state, &principal, &body, now).await {
        Ok(()) => (StatusCode::ACCEPTED, Json(Ack::accepted(&cid, now))).into_response(),
        Err(r) => r.ack(&cid, now),
    }
}

fn bad(msg: impl Into<String>) -> Refusal {
    Refusal::Err(ErrorCode::RequestBad, msg.into())
}

async fn receive(
    state: &AppState,
    principal: &Principal,
    body: &Bytes,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    may_deliver(principal)?;
    let env = crate::dci::read_envelope(&state.settings.dci, body, now)?;
    if env.header.is_msg_encrypted == Some(true) {
        return Err(Refusal::Err(
            ErrorCode::EncryptionInvalid,
            "encrypted messages are not accepted; send is_msg_encrypted false over TLS".into(),
        ));
    }
    let message_id = env.header.message_id.trim().to_string();
    if message_id.is_empty() || message_id.chars().count() > 99 {
        return Err(bad("header.message_id: required, 1 to 99 characters"));
    }
    let items = env.message["notify_event"]
        .as_array()
        .ok_or_else(|| bad("message.notify_event: expected an array"))?;
    let rules = HeaderRules {
        action: "notify",
        max_skew: state.settings.dci.max_clock_skew,
        max_batch: state.settings.dci.max_batch,
        now,
    };
    if let Err(r) = env.header.check(&rules, items.len()) {
        return Err(Refusal::Rejected(Box::new(env.header.clone()), r));
    }
    let notices = items
        .iter()
        .enumerate()
        .map(|(i, item)| read_notice(i, item))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let source = env.header.sender_id.trim().to_string();
    let mut uow = state.store.begin().await.map_err(ApiError::from)?;
    let fresh = state
        .store
        .dci()
        .accept_message(
            &mut uow,
            &InboundMessage {
                client: principal.username.to_string(),
                message_id: message_id.clone(),
                sender_id: source.clone(),
                action: "notify".into(),
                received_at: now,
            },
        )
        .await
        .map_err(ApiError::from)?;
    if !fresh {
        // Delivered again (our acknowledgement was lost): it was stored the first time.
        return Ok(());
    }
    let mut audit = Vec::new();
    for n in notices {
        let ev = CrvsEvent {
            id: Uuid::now_v7(),
            source: source.clone(),
            message_id: message_id.clone(),
            event_id: n.event_id,
            event_type: n.event_type.to_string(),
            subject: n.subject,
            seq: n.seq,
            payload: n.payload,
            status: EventStatus::Received,
            outcome: None,
            area_code: None,
            received_by: principal.username.to_string(),
            received_at: now,
            processed_at: None,
        };
        if !state
            .store
            .crvs()
            .receive(&mut uow, &ev)
            .await
            .map_err(ApiError::from)?
        {
            continue;
        }
        let job = NewJob::of(&CrvsProcessJob { event: ev.id }).map_err(ApiError::from)?;
        state
            .store
            .jobs()
            .enqueue(&mut uow, job)
            .await
            .map_err(ApiError::from)?;
        let mut r = principal.audit_record("crvs_event.receive", "crvs_event");
        r.subject_id = Some(ev.id.to_string());
        r.fields = vec![
            ev.event_type.clone(),
            format!("event_id:{}", short(&ev.event_id)),
        ];
        audit.push(r);
    }
    state
        .store
        .audit()
        .append_in(&mut uow, audit)
        .await
        .map_err(ApiError::from)?;
    uow.commit().await.map_err(ApiError::from)?;
    Ok(())
}

/// The CRVS's answer to our subscription: acknowledged; its subscription codes are logged.
#[utoipa::path(post, path = "/dci/crvs/on-subscribe", tag = "dci",
    request_body(content = Object, description = "DCI envelope {header, message: SubscribeResponse}"),
    responses(
        (status = 202, description = "ACK", body = Object),
        (status = 400, description = "ERR acknowledgement: not a DCI envelope", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn on_subscribe(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Response {
    let now = Utc::now();
    let cid = Uuid::now_v7().to_string();
    if let Err(e) = may_deliver(&principal) {
        return e.into_response();
    }
    let env = match crate::dci::read_envelope(&state.settings.dci, &body, now) {
        Ok(e) => e,
        Err(r) => return r.ack(&cid, now),
    };
    let codes: Vec<&str> = env.message["subscribe_response"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["subscription_code"].as_str())
                .collect()
        })
        .unwrap_or_default();
    tracing::info!(sender = %env.header.sender_id, ?codes, status = ?env.header.action,
        "CRVS subscription confirmed");
    (StatusCode::ACCEPTED, Json(Ack::accepted(&cid, now))).into_response()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// `received`, `processed`, `review` or `failed`; any when absent.
    pub status: Option<String>,
    /// At most this many, 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

/// Events received from civil registration, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<CrvsEvent>,
}

/// Civil registration events in your area (by the person or household found; national scope
/// also sees events no registry person was found for), with their processing status and
/// outcome. Each event read is audited.
#[utoipa::path(get, path = "/api/v1/crvs/events", tag = "registry", operation_id = "crvs_events",
    params(EventParams, ("X-Purpose-Of-Use" = String, Header, description = "Why personal data is read")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The events", body = EventList),
        (status = 400, description = "A bad parameter, named in the problem")))]
pub async fn list_events(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<EventParams>,
) -> ApiResult<Json<EventList>> {
    let purpose = crate::registry::reader(&state, &principal)?;
    let status = match params.status.as_deref() {
        None => None,
        Some(s) => Some(EventStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                "status",
                format!(
                    "query parameter 'status': '{}' is not received, processed, review or failed",
                    short(s)
                ),
            )
        })?),
    };
    let limit = page_limit(params.limit, 100, 1000)?;
    let items = state
        .store
        .crvs()
        .list(&principal.scope, status, limit)
        .await?;
    if state.auth.settings.audit_reads && !items.is_empty() {
        let records = items
            .iter()
            .map(|e| {
                let mut r = principal.audit_record("crvs_event.read", "crvs_event");
                r.subject_id = Some(e.id.to_string());
                r.area = e
                    .area_code
                    .as_deref()
                    .and_then(|a| inkingi_domain::areas::AreaCode::parse(a).ok());
                r.fields = vec!["payload".into(), "outcome".into()];
                r.purpose = Some(purpose.to_string());
                r
            })
            .collect();
        state.audit.record_reads(records).await?;
    }
    Ok(Json(EventList { items }))
}

/// How events are processed.
#[derive(Debug, Clone)]
pub struct CrvsSettings {
    /// Approval tiers per kind of change request (as the API's).
    pub approval_tiers: BTreeMap<String, u32>,
    /// How long an event waits for an earlier event of its subject that has not arrived.
    pub order_hold: Duration,
    /// How soon a waiting event looks again.
    pub order_recheck: Duration,
}

impl Default for CrvsSettings {
    fn default() -> Self {
        CrvsSettings {
            approval_tiers: crate::registry::changes::default_tiers(),
            order_hold: Duration::from_secs(600),
            order_recheck: Duration::from_secs(5),
        }
    }
}

/// Runs `crvs.process` jobs.
#[derive(Debug, Clone, Default)]
pub struct ProcessHandler {
    settings: CrvsSettings,
}

impl ProcessHandler {
    pub fn new(settings: CrvsSettings) -> ProcessHandler {
        ProcessHandler { settings }
    }
}

/// What processing decided, written in one transaction.
struct Outcome {
    status: EventStatus,
    outcome: Value,
    area: Option<String>,
    change: Option<ChangeRequest>,
    review: Option<LinkageReview>,
    /// The registry person read to decide.
    read: Option<PersonRecord>,
}

impl Outcome {
    fn failed(reason: impl Into<String>) -> Outcome {
        Outcome {
            status: EventStatus::Failed,
            outcome: json!({"reason": reason.into()}),
            area: None,
            change: None,
            review: None,
            read: None,
        }
    }
}

/// Who the event's person is in the registry.
enum Found {
    Certain(Box<PersonRecord>, &'static str),
    Uncertain {
        candidate: Option<Uuid>,
        weight: Option<f64>,
        explanation: Value,
    },
}

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retry(e.to_string())
}

#[async_trait::async_trait]
impl JobHandler for ProcessHandler {
    fn kind(&self) -> &'static str {
        CrvsProcessJob::KIND
    }

    async fn run(&self, ctx: &JobContext, payload: Value) -> Result<(), JobError> {
        let job: CrvsProcessJob = serde_json::from_value(payload)
            .map_err(|e| JobError::permanent(format!("bad crvs.process payload: {e}")))?;
        let store = &ctx.store;
        let ev = store
            .crvs()
            .event(job.event)
            .await
            .map_err(retry)?
            .ok_or_else(|| JobError::permanent(format!("no CRVS event {}", job.event)))?;
        if ev.status != EventStatus::Received {
            return Ok(());
        }
        self.wait_for_earlier(store, &ev).await?;
        let out = match ev.event_type.as_str() {
            "live_birth" => self.birth(store, &ev).await?,
            "death" => self.death(store, &ev).await?,
            other => Outcome::failed(format!("event type '{other}' is not processed")),
        };
        write(store, &ev, out).await.map_err(retry)
    }
}

impl ProcessHandler {
    /// Defers the event while an earlier event of its subject is missing or unprocessed, for
    /// at most `order_hold` after it arrived.
    async fn wait_for_earlier(&self, store: &Store, ev: &CrvsEvent) -> Result<(), JobError> {
        if ev.seq <= 1 {
            return Ok(());
        }
        let p = store
            .crvs()
            .predecessors(&ev.source, &ev.subject, ev.seq)
            .await
            .map_err(retry)?;
        let complete = p.open == 0 && p.received >= ev.seq - 1;
        let waited = (Utc::now() - ev.received_at).to_std().unwrap_or_default();
        if complete || waited >= self.settings.order_hold {
            if !complete {
                tracing::warn!(event = %ev.event_id, subject = %ev.subject,
                    "CRVS event processed without an earlier event of its subject");
            }
            return Ok(());
        }
        Err(JobError::Defer {
            after: self.settings.order_recheck,
            reason: format!(
                "event {} of subject {} waits for its {} earlier event(s)",
                ev.seq,
                ev.subject,
                ev.seq - 1
            ),
        })
    }

    async fn birth(&self, store: &Store, ev: &CrvsEvent) -> Result<Outcome, JobError> {
        let b = birth_of(&ev.payload);
        let Some(mother) = b.mother else {
            return Ok(Outcome::failed(
                "the birth names no mother (parents[] with relationship mother)",
            ));
        };
        let child = match child_input(&b.child) {
            Ok(c) => c,
            Err(e) => return Ok(Outcome::failed(e)),
        };
        match find(store, &mother, Some("F")).await? {
            Found::Certain(m, method) => {
                let (Some(household), Some(village)) =
                    (m.person.household_id, m.person.village.clone())
                else {
                    return Ok(review_of(
                        ev,
                        Some(m.person.id),
                        None,
                        json!({"reason": "the mother is not a member of a household"}),
                        None,
                    ));
                };
                if m.person.died_on.is_some() {
                    return Ok(review_of(
                        ev,
                        Some(m.person.id),
                        None,
                        json!({"reason": "the registry records the mother as deceased"}),
                        m.person.village.as_ref().map(|v| v.as_str().to_string()),
                    ));
                }
                let change = ChangeKind::RecordBirth {
                    household_id: household,
                    mother_id: Some(m.person.id),
                    child,
                };
                let cr = self.request(ev, change, village.clone(), method)?;
                Ok(Outcome {
                    status: EventStatus::Processed,
                    outcome: json!({"change_request_id": cr.id, "kind": "record_birth",
                                    "household_id": household, "mother_id": m.person.id,
                                    "method": method}),
                    area: Some(village.as_str().to_string()),
                    change: Some(cr),
                    review: None,
                    read: Some(*m),
                })
            }
            Found::Uncertain {
                candidate,
                weight,
                explanation,
            } => Ok(review_of(ev, candidate, weight, explanation, None)),
        }
    }

    async fn death(&self, store: &Store, ev: &CrvsEvent) -> Result<Outcome, JobError> {
        let d = death_of(&ev.payload);
        let Some(died_on) = d.died_on else {
            return Ok(Outcome::failed("death_date: required, YYYY-MM-DD"));
        };
        if died_on > Utc::now().date_naive() {
            return Ok(Outcome::failed(format!(
                "death_date {died_on}: in the future"
            )));
        }
        let sex = match d.person.sex.as_deref() {
            Some("female") => Some("F"),
            Some("male") => Some("M"),
            _ => None,
        };
        match find(store, &d.person, sex).await? {
            Found::Certain(p, method) => {
                let area = p.person.village.clone();
                if let Some(on) = p.person.died_on {
                    return Ok(Outcome {
                        status: EventStatus::Processed,
                        outcome: json!({"person_id": p.person.id, "method": method,
                                        "note": format!("the registry already records this death ({on})")}),
                        area: area.map(|a| a.as_str().to_string()),
                        change: None,
                        review: None,
                        read: Some(*p),
                    });
                }
                let Some(village) = area else {
                    return Ok(review_of(
                        ev,
                        Some(p.person.id),
                        None,
                        json!({"reason": "the person has no village in the registry"}),
                        None,
                    ));
                };
                let new_head = new_head(store, &p).await?;
                let change = ChangeKind::RecordDeath {
                    person_id: p.person.id,
                    died_on,
                    new_head_id: new_head,
                };
                let cr = self.request(ev, change, village.clone(), method)?;
                Ok(Outcome {
                    status: EventStatus::Processed,
                    outcome: json!({"change_request_id": cr.id, "kind": "record_death",
                                    "person_id": p.person.id, "new_head_id": new_head,
                                    "method": method}),
                    area: Some(village.as_str().to_string()),
                    change: Some(cr),
                    review: None,
                    read: Some(*p),
                })
            }
            Found::Uncertain {
                candidate,
                weight,
                explanation,
            } => Ok(review_of(ev, candidate, weight, explanation, None)),
        }
    }

    fn request(
        &self,
        ev: &CrvsEvent,
        change: ChangeKind,
        area: inkingi_domain::areas::AreaCode,
        method: &str,
    ) -> Result<ChangeRequest, JobError> {
        request(&self.settings.approval_tiers, ev, change, area, method)
            .map_err(JobError::permanent)
    }
}

/// A submitted change request from the CRVS, for the area's approvers.
fn request(
    approval_tiers: &BTreeMap<String, u32>,
    ev: &CrvsEvent,
    change: ChangeKind,
    area: inkingi_domain::areas::AreaCode,
    method: &str,
) -> Result<ChangeRequest, String> {
    let tiers = approval_tiers
        .get(change.name())
        .copied()
        .unwrap_or(1)
        .max(1);
    let now = Utc::now();
    let actor = actor(ev);
    let mut cr = ChangeRequest {
        id: Uuid::now_v7(),
        change,
        status: ChangeStatus::Draft,
        area,
        tiers,
        approvals: 0,
        reason: Some(format!(
            "civil registration {} {} ({}; person found by {method})",
            ev.event_type.replace('_', " "),
            ev.event_id,
            ev.source
        )),
        submitted_by: actor.clone(),
        channel: Channel::Crvs,
        steps: Vec::new(),
        version: 1,
        created_at: now,
    };
    cr.submit(&actor, now).map_err(|e| e.to_string())?;
    Ok(cr)
}

fn actor(ev: &CrvsEvent) -> String {
    format!("crvs:{}", ev.source)
}

fn review_of(
    ev: &CrvsEvent,
    candidate: Option<Uuid>,
    weight: Option<f64>,
    explanation: Value,
    area: Option<String>,
) -> Outcome {
    let review = LinkageReview {
        id: Uuid::now_v7(),
        kind: format!("{REVIEW_PREFIX}{}", ev.event_type),
        source_system: ev.source.clone(),
        source_id: ev.event_id.clone(),
        candidate_person_id: candidate,
        weight,
        explanation,
        status: "open".into(),
        area_code: area.clone(),
        created_at: Utc::now(),
        decided_at: None,
        decided_by: None,
    };
    Outcome {
        status: EventStatus::Review,
        outcome: json!({"review_id": review.id, "candidate_person_id": candidate}),
        area,
        change: None,
        review: Some(review),
        read: None,
    }
}

/// The child as a registry person: names required, sex and birth date as the CRVS gives
/// them, the birth registration number kept.
fn child_input(c: &CrvsPerson) -> Result<PersonInput, String> {
    let name = |v: &Option<String>, field: &str| {
        Name::parse(v.as_deref().unwrap_or("")).map_err(|e| format!("child name.{field}: {e}"))
    };
    let sex = match c.sex.as_deref() {
        Some("female") => Sex::Female,
        Some("male") => Sex::Male,
        other => {
            return Err(format!(
                "child sex '{}': expected female or male",
                other.unwrap_or("")
            ))
        }
    };
    let birth_date = match c.birth_date.as_deref() {
        Some(b) => Some(BirthDate::parse(b).map_err(|e| format!("child birth_date: {e}"))?),
        None => return Err("child birth_date: required".into()),
    };
    Ok(PersonInput {
        given_name: name(&c.given_name, "given_name")?,
        family_name: name(&c.family_name, "surname")?,
        sex,
        birth_date,
        national_id: None,
        birth_registration: c
            .identifier(inkingi_interop::dci::records::ID_BIRTH_REGISTRATION)
            .map(str::to_string),
        refugee_id: None,
        passport: None,
        phones: Vec::new(),
        answers: Default::default(),
    })
}

/// Finds the event's person: by national ID when it is given and held by exactly one living
/// or dead registry person, else with the linkage engine on names, birth date and `sex`.
async fn find(store: &Store, p: &CrvsPerson, sex: Option<&str>) -> Result<Found, JobError> {
    let scope = AreaScope::national();
    if let Some(nid) = p
        .identifier(ID_NATIONAL)
        .and_then(|v| NationalId::parse(v).ok())
    {
        let q = PersonSearch {
            national_id: Some(nid),
            limit: 2,
            ..Default::default()
        };
        let mut hits = store
            .registry()
            .search_people(&scope, &q)
            .await
            .map_err(retry)?;
        if hits.len() == 1 {
            return Ok(Found::Certain(
                Box::new(hits.remove(0).record),
                "national_id",
            ));
        }
    }
    let (Some(given), Some(family)) = (&p.given_name, &p.family_name) else {
        return Ok(Found::Uncertain {
            candidate: None,
            weight: None,
            explanation: json!({"reason": "no national ID held by the registry and no name to compare"}),
        });
    };
    let decision = link::by_names(store, &scope, given, family, p.birth_date.as_deref(), sex)
        .await
        .map_err(retry)?;
    Ok(match decision {
        Decision::Linked { person, method } => Found::Certain(person, method),
        Decision::Review {
            candidate,
            weight,
            explanation,
        } => Found::Uncertain {
            candidate,
            weight,
            explanation,
        },
    })
}

/// Who heads the household after the deceased: the spouse, else the oldest other member;
/// `None` when the deceased did not head a household with others.
async fn new_head(store: &Store, p: &PersonRecord) -> Result<Option<Uuid>, JobError> {
    let (Some(hh), Some(MemberRole::Head)) = (p.person.household_id, p.role) else {
        return Ok(None);
    };
    let members = store
        .registry()
        .members(&AreaScope::national(), hh)
        .await
        .map_err(retry)?;
    let others: Vec<&PersonRecord> = members
        .iter()
        .filter(|m| m.person.id != p.person.id && m.person.died_on.is_none())
        .collect();
    Ok(others
        .iter()
        .find(|m| m.role == Some(MemberRole::Spouse))
        .or_else(|| {
            others.iter().min_by_key(|m| {
                m.person
                    .data
                    .birth_date
                    .map_or(NaiveDate::MAX, |b| b.earliest())
            })
        })
        .map(|m| m.person.id))
}

/// Writes the outcome: the request or review, the event's status, the audit entries, in one
/// transaction; nothing when the event was processed meanwhile.
async fn write(store: &Store, ev: &CrvsEvent, out: Outcome) -> inkingi_store::StoreResult<()> {
    let mut uow = store.begin().await?;
    let now = Utc::now();
    if !store
        .crvs()
        .finish(
            &mut uow,
            ev.id,
            out.status,
            &out.outcome,
            out.area.as_deref(),
            now,
        )
        .await?
    {
        return Ok(());
    }
    let actor = actor(ev);
    let area = out
        .area
        .as_deref()
        .and_then(|a| inkingi_domain::areas::AreaCode::parse(a).ok());
    let mut audit = Vec::new();
    let mut rec = |action: &str, kind: &str, id: Uuid, fields: Vec<String>| {
        let mut r = AuditRecord::new(&actor, action, kind);
        r.subject_id = Some(id.to_string());
        r.area = area.clone();
        r.fields = fields;
        r.purpose = Some("civil registration".into());
        audit.push(r);
    };
    if let Some(p) = &out.read {
        rec(
            "person.read",
            "person",
            p.person.id,
            READ_FIELDS.iter().map(|f| f.to_string()).collect(),
        );
    }
    if let Some(cr) = &out.change {
        store.changes().insert_change(&mut uow, cr).await?;
        rec(
            "change_request.create",
            "change_request",
            cr.id,
            vec![
                cr.change.name().to_string(),
                format!("crvs_event:{}", ev.id),
            ],
        );
    }
    if let Some(r) = &out.review {
        store.children().add_review(&mut uow, r).await?;
        rec(
            "linkage_review.create",
            "linkage_review",
            r.id,
            vec![r.kind.clone(), format!("crvs_event:{}", ev.id)],
        );
    }
    rec(
        "crvs_event.process",
        "crvs_event",
        ev.id,
        vec![out.status.as_str().to_string()],
    );
    store.audit().append_in(&mut uow, audit).await?;
    uow.commit().await
}

/// Confirms a review of a CRVS event: the officer names the registry person (or takes the
/// candidate), and the change request the event calls for is submitted for the area's
/// approvers, the review confirmed with it and the event `processed`, in one transaction.
pub(crate) async fn confirm_review(
    state: &AppState,
    principal: &Principal,
    review: inkingi_store::linkage::Review,
    person: Option<Uuid>,
    reason: Option<String>,
) -> ApiResult<crate::linkage::Decided> {
    let Some(person_id) = person.or(review.review.candidate_person_id) else {
        return Err(ApiError::invalid_field(
            "person_id",
            "this review has no candidate: name the registry person the event is about",
        ));
    };
    let Some(p) = state
        .store
        .registry()
        .person(&principal.scope, person_id)
        .await?
    else {
        return Err(ApiError::invalid_field(
            "person_id",
            format!("no registry person {person_id} in your area scope"),
        ));
    };
    let ev = state
        .store
        .crvs()
        .by_event_id(&review.review.source_system, &review.review.source_id)
        .await?
        .ok_or_else(|| {
            ApiError::internal(format!("no CRVS event behind review {}", review.review.id))
        })?;
    let change = change_for(&state.store, &ev, &p).await?;
    let village = p
        .person
        .village
        .clone()
        .ok_or_else(|| ApiError::conflict("the person has no village in the registry"))?;
    let method = format!("review {} by {}", review.review.id, principal.username);
    let cr = request(
        &state.settings.approval_tiers,
        &ev,
        change,
        village.clone(),
        &method,
    )
    .map_err(ApiError::conflict)?;
    let mut uow = state.store.begin().await?;
    state.store.changes().insert_change(&mut uow, &cr).await?;
    let d = inkingi_store::linkage::ReviewDecision {
        status: "confirmed",
        by: principal.username.as_str(),
        at: Utc::now(),
        reason: reason.as_deref(),
        change_request_id: Some(cr.id),
    };
    crate::linkage::decide(state, &mut uow, principal, &review, d).await?;
    let outcome = json!({"change_request_id": cr.id, "kind": cr.change.name(),
                         "person_id": person_id, "method": "review",
                         "review_id": review.review.id});
    if !state
        .store
        .crvs()
        .resolve(
            &mut uow,
            ev.id,
            &outcome,
            Some(village.as_str()),
            Utc::now(),
        )
        .await?
    {
        return Err(ApiError::conflict(format!(
            "CRVS event {} is no longer in review",
            ev.event_id
        )));
    }
    crate::registry::audit_change(
        state,
        &mut uow,
        principal,
        "change_request.create",
        ("change_request", cr.id),
        Some(village),
        vec![
            cr.change.name().to_string(),
            format!("crvs_event:{}", ev.id),
        ],
    )
    .await?;
    uow.commit().await?;
    let review = crate::linkage::visible(state, principal, review.review.id).await?;
    Ok(crate::linkage::Decided {
        review,
        change_request: Some(cr),
    })
}

/// The change an event calls for, about registry person `p`.
async fn change_for(store: &Store, ev: &CrvsEvent, p: &PersonRecord) -> ApiResult<ChangeKind> {
    if ev.event_type == "live_birth" {
        let child = child_input(&birth_of(&ev.payload).child)
            .map_err(|e| ApiError::conflict(format!("the event cannot be recorded: {e}")))?;
        let household_id = p
            .person
            .household_id
            .ok_or_else(|| ApiError::conflict("the mother is not a member of a household"))?;
        return Ok(ChangeKind::RecordBirth {
            household_id,
            mother_id: Some(p.person.id),
            child,
        });
    }
    let died_on = death_of(&ev.payload)
        .died_on
        .ok_or_else(|| ApiError::conflict("the event has no death_date"))?;
    if p.person.died_on.is_some() {
        return Err(ApiError::conflict(
            "the registry already records this death",
        ));
    }
    let new_head_id = new_head(store, p).await.map_err(ApiError::internal)?;
    Ok(ChangeKind::RecordDeath {
        person_id: p.person.id,
        died_on,
        new_head_id,
    })
}
