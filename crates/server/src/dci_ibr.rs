//! `/dci/registry/…/enrolled` and `…/enrollment/updates`: the DCI Integrated Beneficiary
//! Registry API (v1.0.0) over the programmes' enrolments.
//!
//! `enrolled` answers whether people (or households) are enrolled, in which programmes, since
//! when and in what status; `enrollment/updates` takes enrolments reported by a programme's
//! own system and applies them to Inkingi's enrolments (enrol, suspend, exit…) through the
//! programme lifecycle. Both have a synchronous form (the answer in the response) and an
//! asynchronous one (`ACK`, then the answer POSTed to `sender_uri` by a `dci.callback` job).
//! Envelope, signature, message-id deduplication, refusals, scope and audit are those of the
//! other DCI endpoints ([`crate::dci::accept`]).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use inkingi_domain::audit::AuditRecord;
use inkingi_domain::identity::Permission;
use inkingi_domain::programmes::{EnrolmentStatus, TargetType};
use inkingi_domain::registry::Household;
use inkingi_interop::dci::envelope::{timestamp, Ack, Answer, CallbackHeader};
use inkingi_interop::dci::ibr::{
    beneficiary, check_updates, item_rejection, prepare_enrolled, EnrolledMessage, EnrolledQuery,
    EnrolmentFacts, ItemRejection, Update, UpdatesMessage,
};
use inkingi_interop::dci::records;
use inkingi_interop::dci::search::{prepare, Entity};
use inkingi_store::dci::{RequestOutcome, Transaction};
use inkingi_store::programmes::{
    Enrolment, EnrolmentQuery, NewEnrolment, NotEvaluated, StoredProgramme,
};
use inkingi_store::registry::PersonRecord;
use inkingi_store::{StoreError, UnitOfWork};
use serde_json::{json, Value};
use utoipa::OpenApi;
use uuid::Uuid;

use crate::auth::Principal;
use crate::dci::{accept, enqueue, our_id, read_record, reply_url, signed, write_audit};
use crate::dci::{Accepted, Refusal};
use crate::error::{ApiError, ApiResult};
use crate::registry::audit_change;
use crate::AppState;

#[derive(OpenApi)]
#[openapi(paths(sync_enrolled, enrolled, sync_enrollment_updates, enrollment_updates))]
struct IbrApi;

pub fn api() -> utoipa::openapi::OpenApi {
    IbrApi::openapi()
}

/// Most enrolments read for one household.
const ENROLMENTS_PER_HOUSEHOLD: u32 = 1000;

/// One answer, what it disclosed, and its transaction's outcome.
struct Ran {
    answer: Answer<Value>,
    audit: Vec<AuditRecord>,
}

/// Answers now (`reply` none) or acknowledges and queues the answer for `reply`.
async fn finish(
    state: &AppState,
    mut uow: UnitOfWork,
    reply: Option<String>,
    ran: Ran,
    cid: &str,
    now: DateTime<Utc>,
) -> Response {
    let result = async {
        if let Some(url) = reply.clone() {
            enqueue(state, &mut uow, url, &ran.answer, cid).await?;
        }
        uow.commit().await?;
        write_audit(state, ran.audit).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match (result, reply) {
        (Err(e), _) => e.into_response(),
        (Ok(()), None) => signed(state, &ran.answer),
        (Ok(()), Some(_)) => (StatusCode::ACCEPTED, Json(Ack::accepted(cid, now))).into_response(),
    }
}

/// Refuses as the sync (`rjct` envelope) or async (`NACK`/`ERR`) form does.
fn refuse(state: &AppState, r: Refusal, sync: bool, action: &str, cid: &str) -> Response {
    let now = Utc::now();
    if sync {
        r.sync(state, action, cid, now)
    } else {
        r.ack(cid, now)
    }
}

async fn serve_enrolled(
    state: &AppState,
    principal: &Principal,
    body: &Bytes,
    reply: Option<&str>,
) -> Response {
    let fallback = Uuid::now_v7().to_string();
    let sync = reply.is_none();
    let mut a = match accept(state, principal, body, "search", |_: &EnrolledMessage| 1).await {
        Ok(a) => a,
        Err(r) => return refuse(state, r, sync, "on-search", &fallback),
    };
    let url = match reply.map(|p| reply_url(&a.header, p)).transpose() {
        Ok(u) => u,
        Err(r) => return refuse(state, r, sync, "on-search", &a.correlation_id),
    };
    let ran = match run_enrolled(state, principal, &mut a, !sync).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    finish(state, a.uow, url, ran, &a.correlation_id, a.now).await
}

async fn serve_updates(
    state: &AppState,
    principal: &Principal,
    body: &Bytes,
    reply: Option<&str>,
) -> Response {
    let fallback = Uuid::now_v7().to_string();
    let sync = reply.is_none();
    if let Err(e) = principal.require(Permission::ManageProgrammes) {
        return e.into_response();
    }
    // The spec's action is `notify`; its sample sends `register`.
    let action = match serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/header/action").cloned())
    {
        Some(Value::String(s)) if s == "register" => "register",
        _ => "notify",
    };
    let answer_action = format!("on-{action}");
    let count = |m: &UpdatesMessage| m.enrolled_updates.beneficiaries.len();
    let mut a = match accept(state, principal, body, action, count).await {
        Ok(a) => a,
        Err(r) => return refuse(state, r, sync, &answer_action, &fallback),
    };
    let url = match reply.map(|p| reply_url(&a.header, p)).transpose() {
        Ok(u) => u,
        Err(r) => return refuse(state, r, sync, &answer_action, &a.correlation_id),
    };
    let ran = match run_updates(state, principal, &mut a, &answer_action, !sync).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    finish(state, a.uow, url, ran, &a.correlation_id, a.now).await
}

/// Is a person (or household) enrolled, where, since when: the answer envelope.
#[utoipa::path(post, path = "/dci/registry/sync/enrolled", tag = "dci",
    request_body(content = Object, description = "DCI envelope {signature, header (action search), message: EnrolledRequest}"),
    responses(
        (status = 200, description = "Envelope whose message is an EnrolledResponse: enrolled_status yes/no and the enrolments as Beneficiary records", body = Object),
        (status = 400, description = "ERR acknowledgement: the message could not be read", body = Object),
        (status = 422, description = "Envelope with header status rjct (replayed message id, stale timestamp, wrong action or count)", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn sync_enrolled(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Response {
    serve_enrolled(&state, &principal, &body, None).await
}

/// Asynchronous `enrolled`: `ACK` now; the answer is POSTed to `sender_uri` + `/on-enrolled`.
#[utoipa::path(post, path = "/dci/registry/enrolled", tag = "dci",
    request_body(content = Object, description = "DCI envelope {signature, header (action search, sender_uri required), message: EnrolledRequest}"),
    responses(
        (status = 202, description = "ACK with the correlation id", body = Object),
        (status = 400, description = "ERR acknowledgement", body = Object),
        (status = 422, description = "NACK acknowledgement", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn enrolled(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Response {
    serve_enrolled(&state, &principal, &body, Some("on-enrolled")).await
}

/// Enrolments reported by a programme's system, applied to the programmes' enrolments.
#[utoipa::path(post, path = "/dci/registry/sync/enrollment/updates", tag = "dci",
    request_body(content = Object, description = "DCI envelope {signature, header (action notify), message: EnrollmentUpdatesRequest}"),
    responses(
        (status = 200, description = "Envelope whose message is an EnrollmentUpdatesResponse: each beneficiary succ or rjct with a reason", body = Object),
        (status = 400, description = "ERR acknowledgement", body = Object),
        (status = 403, description = "The caller may not manage programmes"),
        (status = 422, description = "Envelope with header status rjct", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn sync_enrollment_updates(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Response {
    serve_updates(&state, &principal, &body, None).await
}

/// Asynchronous `enrollment/updates`: applied now, `ACK`; the answer is POSTed to
/// `sender_uri` + `/enrollment/on-updates`.
#[utoipa::path(post, path = "/dci/registry/enrollment/updates", tag = "dci",
    request_body(content = Object, description = "DCI envelope {signature, header (action notify, sender_uri required), message: EnrollmentUpdatesRequest}"),
    responses(
        (status = 202, description = "ACK with the correlation id", body = Object),
        (status = 400, description = "ERR acknowledgement", body = Object),
        (status = 403, description = "The caller may not manage programmes"),
        (status = 422, description = "NACK acknowledgement", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn enrollment_updates(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Response {
    serve_updates(&state, &principal, &body, Some("enrollment/on-updates")).await
}

/// Records the transaction of a one-kind message so `txn/status` can tell about it.
async fn record(
    state: &AppState,
    principal: &Principal,
    uow: &mut UnitOfWork,
    head: (&str, &str, &str, &str, DateTime<Utc>),
    status: &str,
    requests: Vec<RequestOutcome>,
) -> ApiResult<()> {
    let (cid, transaction_id, message_id, action, now) = head;
    let txn = Transaction {
        correlation_id: cid.to_string(),
        client: principal.username.to_string(),
        transaction_id: transaction_id.to_string(),
        message_id: message_id.to_string(),
        action: action.to_string(),
        status: status.to_string(),
        created_at: now,
        updated_at: now,
        requests,
    };
    state.store.dci().record_transaction(uow, &txn).await?;
    Ok(())
}

fn outcome(reference_id: &str, refused: Option<(&str, &str)>, count: u64) -> RequestOutcome {
    RequestOutcome {
        reference_id: reference_id.to_string(),
        status: if refused.is_some() { "rjct" } else { "succ" }.into(),
        reason_code: refused.map(|r| r.0.to_string()),
        reason_message: refused.map(|r| r.1.to_string()),
        record_count: count,
    }
}

async fn run_enrolled(
    state: &AppState,
    principal: &Principal,
    a: &mut Accepted<EnrolledMessage>,
    pending: bool,
) -> ApiResult<Ran> {
    let reference = a.message.reference();
    let mut item = json!({"reference_id": reference, "timestamp": timestamp(a.now)});
    let (result, mut audit) =
        match prepare_enrolled(a.message.enrolled_criteria.as_ref(), a.now.date_naive()) {
            Err(r) => {
                item["status"] = json!("rjct");
                item["status_reason_code"] = json!(r.reason.code());
                item["status_reason_message"] = json!(r.message);
                item["enrolled_status"] = json!("no");
                let refused = Some((r.reason.code(), r.message.as_str()));
                (outcome(&reference, refused, 0), Vec::new())
            }
            Ok(q) => {
                let found = match q.search.entity {
                    Entity::Member => by_person(state, principal, &q).await?,
                    Entity::Group => by_household(state, principal, &q).await?,
                };
                item["status"] = json!("succ");
                item["enrolled_status"] = json!(if found.enrolled { "yes" } else { "no" });
                item["data"] = json!({"version": "1.0.0", "reg_record_type": "Beneficiary",
                    "reg_records": found.records});
                item["pagination"] = json!({"page_size": q.search.page_size,
                    "page_number": q.search.page_number, "total_count": found.total});
                let n = found.records.len() as u64;
                (outcome(&reference, None, n), found.audit)
            }
        };
    for rec in &mut audit {
        rec.purpose = Some(a.purpose.to_string());
    }
    let refused = result.status == "rjct";
    let mut header = CallbackHeader::answering(&a.header, "on-search", our_id(state), a.now);
    header.status = if refused { "rjct" } else { "succ" }.into();
    header.completed_count = 1;
    let status = match (refused, pending) {
        (true, _) => "rjct",
        (false, true) => "pdng",
        (false, false) => "succ",
    };
    let head = (
        a.correlation_id.as_str(),
        a.message.transaction_id.as_str(),
        a.header.message_id.as_str(),
        "search",
        a.now,
    );
    record(state, principal, &mut a.uow, head, status, vec![result]).await?;
    let answer = Answer {
        signature: None,
        header,
        message: json!({
            "transaction_id": a.message.transaction_id,
            "correlation_id": a.correlation_id,
            "enrolled_response": [item],
        }),
    };
    Ok(Ran { answer, audit })
}

/// What an `enrolled` query found.
struct Found {
    records: Vec<Value>,
    /// People (or households) matched, over all pages.
    total: u64,
    /// Whether one of them holds a place (enrolled or suspended) in a programme asked about.
    enrolled: bool,
    audit: Vec<AuditRecord>,
}

fn facts<'a>(e: &'a Enrolment, catalogue: &[StoredProgramme]) -> EnrolmentFacts<'a> {
    let p = catalogue.iter().find(|p| p.programme.code == e.programme);
    EnrolmentFacts {
        programme: &e.programme,
        programme_name: p.map(|p| p.programme.name.clone()).unwrap_or_default(),
        status: e.status,
        enrolled_since: e.enrolled_since,
        changed_at: e.updated_at,
        amount: e.amount,
        frequency: p
            .map(|p| p.programme.frequency.to_string())
            .unwrap_or_default(),
    }
}

/// A household's enrolments (its own and its members'), in the programmes asked about.
async fn household_enrolments(
    state: &AppState,
    principal: &Principal,
    household: Uuid,
    programmes: &[String],
) -> ApiResult<Vec<Enrolment>> {
    let q = EnrolmentQuery {
        household: Some(household),
        limit: ENROLMENTS_PER_HOUSEHOLD,
        ..Default::default()
    };
    let all = state
        .store
        .programmes()
        .enrolments(&principal.scope, &q)
        .await?;
    Ok(all
        .into_iter()
        .filter(|e| programmes.is_empty() || programmes.contains(&e.programme))
        .collect())
}

fn enrolments_read(principal: &Principal, p: &PersonRecord) -> AuditRecord {
    let mut r = read_record(principal, p);
    r.fields.push("dci:enrolments".into());
    r
}

/// People matched, each with their own and their household's enrolments.
async fn by_person(state: &AppState, principal: &Principal, q: &EnrolledQuery) -> ApiResult<Found> {
    let reg = state.store.registry();
    let page = reg.find_people(&principal.scope, &q.search.query).await?;
    let catalogue = state.store.programmes().programmes(None).await?;
    let mut found = Found {
        records: Vec::new(),
        total: page.total,
        enrolled: false,
        audit: Vec::new(),
    };
    for p in &page.items {
        found.audit.push(enrolments_read(principal, p));
        let Some(hid) = p.person.household_id else {
            continue;
        };
        let h = reg.household(&principal.scope, hid).await?;
        let unit = h.as_ref().map(|h| h.registry_number.as_str().to_string());
        let mine = household_enrolments(state, principal, hid, &q.programmes).await?;
        for e in mine
            .iter()
            .filter(|e| e.person_id.is_none() || e.person_id == Some(p.person.id))
        {
            found.enrolled |= e.status.holds_place();
            let member = records::member(p, h.as_ref());
            let f = facts(e, &catalogue);
            found
                .records
                .push(beneficiary(unit.as_deref().unwrap_or(""), Some(member), &f));
        }
    }
    Ok(found)
}

/// Households having a matching member, each with every enrolment of it and its members.
async fn by_household(
    state: &AppState,
    principal: &Principal,
    q: &EnrolledQuery,
) -> ApiResult<Found> {
    let reg = state.store.registry();
    let s = &q.search.query;
    let page = reg
        .find_households(
            &principal.scope,
            &s.filter,
            s.limit,
            s.offset,
            s.max_candidates,
        )
        .await?;
    let catalogue = state.store.programmes().programmes(None).await?;
    let mut found = Found {
        records: Vec::new(),
        total: page.total,
        enrolled: false,
        audit: Vec::new(),
    };
    for id in page.items {
        let Some(h) = reg.household(&principal.scope, id).await? else {
            continue;
        };
        found.audit.push(household_read(principal, &h));
        let members = reg.members(&principal.scope, id).await?;
        for e in household_enrolments(state, principal, id, &q.programmes).await? {
            found.enrolled |= e.status.holds_place();
            let member = e
                .person_id
                .and_then(|pid| members.iter().find(|m| m.person.id == pid));
            if let Some(m) = member {
                found.audit.push(enrolments_read(principal, m));
            }
            let f = facts(&e, &catalogue);
            found.records.push(beneficiary(
                h.registry_number.as_str(),
                member.map(|m| records::member(m, Some(&h))),
                &f,
            ));
        }
    }
    Ok(found)
}

fn household_read(principal: &Principal, h: &Household) -> AuditRecord {
    let mut r = principal.audit_record("household.read", "household");
    r.subject_id = Some(h.id.to_string());
    r.area = Some(h.village.clone());
    r.fields = vec!["dci:enrolments".into()];
    r
}

async fn run_updates(
    state: &AppState,
    principal: &Principal,
    a: &mut Accepted<UpdatesMessage>,
    answer_action: &str,
    pending: bool,
) -> ApiResult<Ran> {
    let sender = a.header.sender_id.clone();
    let mut items = Vec::new();
    let mut outcomes = Vec::new();
    for c in check_updates(&a.message.enrolled_updates.beneficiaries) {
        let result = match c.outcome {
            Ok(u) => apply(state, principal, &mut a.uow, &u, &sender).await?,
            Err(r) => Err(r),
        };
        let mut item = json!({"reference_id": c.reference_id, "timestamp": timestamp(a.now)});
        match &result {
            Ok(done) => {
                item["status"] = json!("succ");
                item["status_reason_message"] = json!(done);
            }
            Err(r) => {
                item["status"] = json!("rjct");
                item["status_reason_code"] = json!(r.code);
                item["status_reason_message"] = json!(r.message);
            }
        }
        let refused = result.as_ref().err().map(|r| (r.code, r.message.as_str()));
        outcomes.push(outcome(&c.reference_id, refused, u64::from(result.is_ok())));
        items.push(item);
    }
    let all_refused = !outcomes.is_empty() && outcomes.iter().all(|o| o.status == "rjct");
    let mut header = CallbackHeader::answering(&a.header, answer_action, our_id(state), a.now);
    header.status = if all_refused { "rjct" } else { "succ" }.into();
    header.completed_count = outcomes.len() as u64;
    let status = match (all_refused, pending) {
        (true, _) => "rjct",
        (false, true) => "pdng",
        (false, false) => "succ",
    };
    let head = (
        a.correlation_id.as_str(),
        a.message.transaction_id.as_str(),
        a.header.message_id.as_str(),
        "receipt",
        a.now,
    );
    record(state, principal, &mut a.uow, head, status, outcomes).await?;
    let answer = Answer {
        signature: None,
        header,
        message: json!({
            "transaction_id": a.message.transaction_id,
            "correlation_id": a.correlation_id,
            "enrolled_response": items,
        }),
    };
    Ok(Ran {
        answer,
        audit: Vec::new(),
    })
}

/// The one living person of the caller's area with this national ID.
async fn person_by_nid(
    state: &AppState,
    principal: &Principal,
    u: &Update,
    today: chrono::NaiveDate,
) -> ApiResult<Option<PersonRecord>> {
    let criteria = json!({"query_type": "idtype-value",
        "query": {"type": "UIN", "value": u.national_id.as_str()}});
    let search = prepare(Some(&criteria), today).map_err(|r| ApiError::internal(r.message))?;
    let page = state
        .store
        .registry()
        .find_people(&principal.scope, &search.query)
        .await?;
    Ok(page.items.into_iter().find(|p| p.person.died_on.is_none()))
}

/// Applies one reported enrolment within the message's transaction: moves the subject's open
/// enrolment to the reported status, or enrols them when the programme's rule finds them
/// eligible. Refusals the lifecycle or the rule gives are the item's; database failures fail
/// the message.
async fn apply(
    state: &AppState,
    principal: &Principal,
    uow: &mut UnitOfWork,
    u: &Update,
    sender: &str,
) -> ApiResult<Result<String, ItemRejection>> {
    let today = Utc::now().date_naive();
    let Some(p) = person_by_nid(state, principal, u, today).await? else {
        return Ok(Err(item_rejection(
            "rjct.member_identifier.not_found",
            "no living person with this national ID in your area",
        )));
    };
    let Some(household) = p.person.household_id else {
        return Ok(Err(item_rejection(
            "rjct.member_identifier.not_found",
            "the person belongs to no household",
        )));
    };
    let programmes = state.store.programmes();
    let Some(prog) = programmes.programme(&u.programme).await? else {
        return Ok(Err(item_rejection(
            "rjct.programme.invalid",
            format!("no programme '{}' in this registry", u.programme),
        )));
    };
    let person = (prog.programme.target == TargetType::Individual).then_some(p.person.id);
    let open = household_enrolments(
        state,
        principal,
        household,
        std::slice::from_ref(&u.programme),
    )
    .await?
    .into_iter()
    .find(|e| !e.status.is_closed() && e.person_id == person);
    let actor = principal.username.as_str();
    let reason = u
        .reason
        .clone()
        .or_else(|| Some(format!("reported by {sender} over DCI")));
    let area = p.person.village.clone();
    let Some(e) = open else {
        return enrol(state, principal, uow, (&prog, household, person), u, area).await;
    };
    if e.status == u.status {
        return Ok(Ok(format!("unchanged: already {}", e.status)));
    }
    let moved = programmes
        .transition(uow, &principal.scope, e.id, None, u.status, reason, actor)
        .await;
    match moved {
        Ok((e2, _)) => {
            let fields = vec![
                format!("programme={}", e2.programme),
                format!("status={}", e2.status),
                format!("via=dci:{sender}"),
            ];
            audit_change(
                state,
                uow,
                principal,
                "enrolment.transition",
                ("household", household),
                area,
                fields,
            )
            .await?;
            Ok(Ok(format!("{} → {}", e.status, e2.status)))
        }
        Err(StoreError::Invalid(m)) | Err(StoreError::Conflict(m)) => {
            Ok(Err(item_rejection("rjct.enrolment_status.invalid", m)))
        }
        Err(other) => Err(other.into()),
    }
}

/// Enrols a subject without an open enrolment, when the report says they are in.
async fn enrol(
    state: &AppState,
    principal: &Principal,
    uow: &mut UnitOfWork,
    subject: (&StoredProgramme, Uuid, Option<Uuid>),
    u: &Update,
    area: Option<inkingi_domain::areas::AreaCode>,
) -> ApiResult<Result<String, ItemRejection>> {
    let (prog, household, person) = subject;
    if !matches!(
        u.status,
        EnrolmentStatus::Enrolled | EnrolmentStatus::Waiting | EnrolmentStatus::Eligible
    ) {
        return Ok(Err(item_rejection(
            "rjct.enrolment.not_found",
            format!(
                "no open enrolment in {} to move to {}",
                u.programme, u.status
            ),
        )));
    }
    let programmes = state.store.programmes();
    let a = match programmes
        .evaluate(&prog.programme, household, person, false)
        .await?
    {
        Ok(a) => a,
        Err(NotEvaluated::HouseholdInactive) => {
            return Ok(Err(item_rejection(
                "rjct.member_identifier.not_found",
                "the person's household is not active",
            )))
        }
        Err(NotEvaluated::NotALivingMember) => {
            return Ok(Err(item_rejection(
                "rjct.member_identifier.not_found",
                "the person is not a living member of their household",
            )))
        }
    };
    if !a.eligible {
        return Ok(Err(item_rejection(
            "rjct.eligibility.invalid",
            a.explanation,
        )));
    }
    let new = NewEnrolment {
        household_id: household,
        person_id: person,
        village: a.village.clone(),
        score: a.score,
        amount: a.amount,
        decision: a.explanation,
        actor: principal.username.as_str().to_string(),
        reason: u.reason.clone(),
    };
    let e = programmes.enrol(uow, &prog.programme.code, &new).await?;
    let fields = vec![
        format!("programme={}", e.programme),
        format!("status={}", e.status),
        "via=dci".to_string(),
    ];
    audit_change(
        state,
        uow,
        principal,
        "enrolment.create",
        ("household", household),
        area,
        fields,
    )
    .await?;
    Ok(Ok(match e.status {
        EnrolmentStatus::Waiting => "waiting: the programme is full".to_string(),
        s => format!("enrolled: {s}"),
    }))
}
