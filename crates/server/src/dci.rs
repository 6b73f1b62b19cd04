//! `/dci/registry/…`: the DCI Social Registry API (v1.0.0) over the registry.
//!
//! Synchronous endpoints answer with the result envelope; asynchronous ones acknowledge at once
//! (`ACK`, HTTP 202) and a `dci.callback` job, enqueued in the same transaction as the message
//! id, POSTs the result to the caller's `sender_uri`. A message that cannot be read is an `ERR`
//! (HTTP 400); one that is read but refused (replayed id, stale timestamp, wrong action or
//! count) is a `NACK` (async) or a `rjct` header (sync), HTTP 422; nothing is stored for either.
//! Each request of a valid batch succeeds or is refused on its own with the spec's reason code.
//!
//! Callers authenticate as API clients (`Authorization: Bearer ink_…`) whose role may read
//! personal data; searches run within their area scope and every record returned is audited
//! with the declared purpose of use.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use inkingi_domain::audit::AuditRecord;
use inkingi_domain::identity::{Permission, Purpose};
use inkingi_domain::registry::Household;
use inkingi_interop::dci::callback::{callback_url, CallbackJob};
use inkingi_interop::dci::envelope::{
    short, Ack, Answer, CallbackHeader, Envelope, ErrorCode, HeaderReason, HeaderRejection,
    HeaderRules,
};
use inkingi_interop::dci::records;
use inkingi_interop::dci::search::{
    check_batch, CheckedItem, Entity, PreparedSearch, SearchMessage, SearchReason,
};
use inkingi_interop::dci::signing::{self, KeyPair, MessageSigner, PublicKey, SenderKeys};
use inkingi_interop::dci::txn::{self, TxnStatusMessage};
use inkingi_store::dci::{InboundMessage, JournalEntry, RequestOutcome, Transaction};
use inkingi_store::jobs::NewJob;
use inkingi_store::registry::PersonRecord;
use inkingi_store::{StoreError, StoreResult, UnitOfWork};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use utoipa::OpenApi;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Settings of the DCI API.
#[derive(Debug, Clone)]
pub struct DciSettings {
    /// This registry's `sender_id` in answers.
    pub registry_id: String,
    /// How far a message's `message_ts` may be from this server's clock.
    pub max_clock_skew: Duration,
    /// Most requests in one message.
    pub max_batch: u64,
    /// Most people a structured search counts and sorts; a request matching more is refused
    /// (`rjct.sort.invalid` when it asks for a sort, else `rjct.search_criteria.invalid`).
    pub max_candidates: u64,
    /// Signs the access tokens of `/dci/oauth2/client/token`; its public half is published at
    /// `/dci/.well-known/jwks.json`. Without a configured key file each process draws its own,
    /// so tokens then hold only on the node that issued them and until it restarts.
    pub signing_key: KeyPair,
    /// Earlier signing keys, still published and accepted until their tokens have expired.
    pub previous_keys: Vec<PublicKey>,
    /// Lifetime of an access token.
    pub token_ttl: Duration,
    /// Partners' published keys: a signed message from a sender listed here is verified.
    pub sender_keys: SenderKeys,
    /// Refuse unsigned messages, and signed ones whose sender has no published key.
    pub require_signatures: bool,
    /// Signs synchronous answers; set when a signing key is configured, so that every node
    /// signs with the key the partners hold.
    pub message_signer: Option<MessageSigner>,
}

impl DciSettings {
    /// The keys access tokens are checked against: the current one, then the earlier ones.
    pub fn verification_keys(&self) -> Vec<PublicKey> {
        let mut keys = vec![self.signing_key.public()];
        keys.extend(self.previous_keys.iter().cloned());
        keys
    }
}

impl Default for DciSettings {
    fn default() -> Self {
        DciSettings {
            registry_id: "inkingi".into(),
            max_clock_skew: Duration::minutes(5),
            max_batch: 10,
            max_candidates: inkingi_store::registry::query::MAX_CANDIDATES,
            signing_key: KeyPair::generate(format!("node-{}", Uuid::now_v7().simple())),
            previous_keys: Vec::new(),
            token_ttl: Duration::minutes(15),
            sender_keys: SenderKeys::default(),
            require_signatures: false,
            message_signer: None,
        }
    }
}

#[derive(OpenApi)]
#[openapi(paths(
    sync_search,
    search,
    sync_txn_status,
    txn_status,
    crate::dci_events::subscribe,
    crate::dci_events::unsubscribe
))]
struct DciApi;

pub fn api() -> utoipa::openapi::OpenApi {
    DciApi::openapi()
}

/// Fields of a person a DCI answer discloses (for the audit log).
const PERSON_FIELDS: &[&str] = &[
    "name",
    "sex",
    "birth_date",
    "death_date",
    "identifiers",
    "phone",
    "address",
    "role",
];

/// A read message, checked, its id recorded in `uow` (not yet committed).
pub(crate) struct Accepted<M> {
    pub(crate) header: inkingi_interop::dci::envelope::Header,
    pub(crate) message: M,
    pub(crate) purpose: Purpose,
    pub(crate) uow: UnitOfWork,
    pub(crate) correlation_id: String,
    pub(crate) now: DateTime<Utc>,
}

/// Why a message is not processed, and how to say so.
pub(crate) enum Refusal {
    /// Authorisation failed: a problem document.
    Api(ApiError),
    /// Not understood.
    Err(ErrorCode, String),
    /// Understood, refused as a whole.
    Rejected(Box<inkingi_interop::dci::envelope::Header>, HeaderRejection),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

impl Refusal {
    /// As a synchronous endpoint answers it.
    pub(crate) fn sync(
        self,
        state: &AppState,
        action: &str,
        cid: &str,
        now: DateTime<Utc>,
    ) -> Response {
        match self {
            Refusal::Rejected(h, r) => {
                let mut header = CallbackHeader::answering(&h, action, our_id(state), now);
                header.status = "rjct".into();
                header.status_reason_code = Some(r.reason.code().into());
                header.status_reason_message = Some(r.message);
                let body = Answer {
                    signature: None,
                    header,
                    message: json!({"correlation_id": cid, "transaction_id": Value::Null}),
                };
                (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
            }
            other => other.ack(cid, now),
        }
    }

    /// As an asynchronous endpoint answers it.
    pub(crate) fn ack(self, cid: &str, now: DateTime<Utc>) -> Response {
        match self {
            Refusal::Api(e) => e.into_response(),
            Refusal::Err(code, msg) => {
                (StatusCode::BAD_REQUEST, Json(Ack::err(code, msg, cid, now))).into_response()
            }
            Refusal::Rejected(_, r) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(Ack::nack(&r, cid, now)),
            )
                .into_response(),
        }
    }
}

pub(crate) fn our_id(state: &AppState) -> &str {
    &state.settings.dci.registry_id
}

/// A read and checked message, nothing recorded yet.
pub(crate) struct Checked<M> {
    pub(crate) header: inkingi_interop::dci::envelope::Header,
    pub(crate) message: M,
    pub(crate) purpose: Purpose,
    pub(crate) inbound: InboundMessage,
    pub(crate) now: DateTime<Utc>,
}

/// Reads and checks a message (authorisation, envelope, signature, header rules); records
/// nothing.
pub(crate) fn check<M: DeserializeOwned>(
    state: &AppState,
    principal: &Principal,
    body: &Bytes,
    action: &str,
    count: impl Fn(&M) -> usize,
) -> Result<Checked<M>, Refusal> {
    principal.require(Permission::ReadPersonalData)?;
    let purpose = principal.purpose(&state.auth.settings.purposes)?;
    let now = Utc::now();
    let env = read_envelope(&state.settings.dci, body, now)?;
    if env.header.is_msg_encrypted == Some(true) {
        return Err(Refusal::Err(
            ErrorCode::EncryptionInvalid,
            "encrypted messages are not accepted by this registry; send is_msg_encrypted false \
             over TLS"
                .into(),
        ));
    }
    let id = env.header.message_id.trim();
    if id.is_empty() || id.chars().count() > 99 {
        return Err(Refusal::Err(
            ErrorCode::RequestBad,
            "header.message_id: required, 1 to 99 characters".into(),
        ));
    }
    let message: M = serde_json::from_value(env.message)
        .map_err(|e| Refusal::Err(ErrorCode::RequestBad, format!("message: {e}")))?;
    let rules = HeaderRules {
        action,
        max_skew: state.settings.dci.max_clock_skew,
        max_batch: state.settings.dci.max_batch,
        now,
    };
    if let Err(r) = env.header.check(&rules, count(&message)) {
        return Err(Refusal::Rejected(Box::new(env.header), r));
    }
    Ok(Checked {
        inbound: InboundMessage {
            client: principal.username.to_string(),
            message_id: id.to_string(),
            sender_id: env.header.sender_id.clone(),
            action: action.to_string(),
            received_at: now,
        },
        header: env.header,
        message,
        purpose,
        now,
    })
}

/// Reads and checks a message; records its id in a new unit of work. `count` is how many
/// requests it holds.
pub(crate) async fn accept<M: DeserializeOwned>(
    state: &AppState,
    principal: &Principal,
    body: &Bytes,
    action: &str,
    count: impl Fn(&M) -> usize,
) -> Result<Accepted<M>, Refusal> {
    let c = check(state, principal, body, action, count)?;
    let mut uow = state.store.begin().await.map_err(ApiError::from)?;
    let fresh = state
        .store
        .dci()
        .accept_message(&mut uow, &c.inbound)
        .await
        .map_err(ApiError::from)?;
    if !fresh {
        return Err(duplicate(c.header));
    }
    Ok(Accepted {
        header: c.header,
        message: c.message,
        purpose: c.purpose,
        uow,
        correlation_id: Uuid::now_v7().to_string(),
        now: c.now,
    })
}

/// The refusal of a replayed message id.
fn duplicate(header: inkingi_interop::dci::envelope::Header) -> Refusal {
    let r = HeaderRejection::new(
        HeaderReason::MessageIdDuplicate,
        format!(
            "header.message_id '{}' was already received",
            short(header.message_id.trim())
        ),
    );
    Refusal::Rejected(Box::new(header), r)
}

/// A synchronous answer, signed when the registry has a configured signing key.
pub(crate) fn signed<T: serde::Serialize>(state: &AppState, answer: &T) -> Response {
    let Some(signer) = &state.settings.dci.message_signer else {
        return Json(answer).into_response();
    };
    match serde_json::to_value(answer) {
        Ok(mut body) => {
            signer.sign(&mut body, Utc::now());
            Json(body).into_response()
        }
        Err(e) => ApiError::internal(format!("serialising a DCI answer: {e}")).into_response(),
    }
}

/// Reads a DCI envelope and checks its signature (see [`check_signature`]); every inbound DCI
/// endpoint reads its body through this.
pub(crate) fn read_envelope(
    dci: &DciSettings,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Envelope, Refusal> {
    let raw: Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::Err(ErrorCode::RequestBad, format!("envelope: {e}")))?;
    check_signature(dci, &raw, now)?;
    serde_json::from_value(raw)
        .map_err(|e| Refusal::Err(ErrorCode::RequestBad, format!("envelope: {e}")))
}

/// Verifies a signed message when its sender's keys are known, and insists on a verified
/// signature when the registry requires them. An empty `signature` (the samples send "") counts
/// as none.
fn check_signature(dci: &DciSettings, raw: &Value, now: DateTime<Utc>) -> Result<(), Refusal> {
    let signed = raw
        .get("signature")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.trim().is_empty());
    let sender = raw
        .pointer("/header/sender_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !signed {
        return match dci.require_signatures {
            true => Err(Refusal::Err(
                ErrorCode::SignatureInvalid,
                "signature: this registry accepts signed messages only".into(),
            )),
            false => Ok(()),
        };
    }
    if !dci.require_signatures && !dci.sender_keys.knows(sender) {
        // Nothing to check it against; the bearer token still authenticates the caller.
        return Ok(());
    }
    signing::verify(raw, &dci.sender_keys, now, dci.max_clock_skew)
        .map(|_| ())
        .map_err(|e| Refusal::Err(ErrorCode::SignatureInvalid, e.to_string()))
}

/// One request's answer and what was read for it.
struct ItemResult {
    response: Value,
    outcome: RequestOutcome,
    audit: Vec<AuditRecord>,
}

async fn run_item(
    state: &AppState,
    principal: &Principal,
    item: CheckedItem,
    now: DateTime<Utc>,
) -> ApiResult<ItemResult> {
    let mut response = json!({
        "reference_id": item.reference_id,
        "timestamp": inkingi_interop::dci::envelope::timestamp(now),
    });
    if let Some(l) = &item.locale {
        response["locale"] = json!(l);
    }
    let mut prepared = match item.outcome {
        Ok(p) => p,
        Err(r) => {
            return Ok(rejected_item(
                response,
                item.reference_id,
                r.reason.code(),
                r.message,
            ))
        }
    };
    prepared.query.max_candidates = state.settings.dci.max_candidates;
    let found = match prepared.entity {
        Entity::Member => members(state, principal, &prepared).await,
        Entity::Group => groups(state, principal, &prepared).await,
    };
    let (records, total, audit) = match found {
        Ok(f) => f,
        Err(StoreError::TooBroad(why)) => {
            // Refused as the spec refuses a request it cannot answer: the item, not the
            // message. With a sort asked for, the sort is what cannot be done.
            let reason = if prepared.query.sort.is_empty() {
                SearchReason::SearchCriteriaInvalid
            } else {
                SearchReason::SortInvalid
            };
            return Ok(rejected_item(
                response,
                item.reference_id,
                reason.code(),
                why,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let count = records.len() as u64;
    response["status"] = json!("succ");
    response["data"] = json!({
        "version": "1.0.0",
        "reg_record_type": match prepared.entity { Entity::Member => "Member", Entity::Group => "Group" },
        "reg_records": records,
    });
    response["pagination"] = json!({
        "page_size": prepared.page_size,
        "page_number": prepared.page_number,
        "total_count": total,
    });
    Ok(ItemResult {
        response,
        outcome: RequestOutcome {
            reference_id: item.reference_id,
            status: "succ".into(),
            reason_code: None,
            reason_message: None,
            record_count: count,
        },
        audit,
    })
}

/// A request of the batch refused with `code`; nothing was read for it.
fn rejected_item(mut response: Value, reference_id: String, code: &str, why: String) -> ItemResult {
    response["status"] = json!("rjct");
    response["status_reason_code"] = json!(code);
    response["status_reason_message"] = json!(why);
    ItemResult {
        response,
        outcome: RequestOutcome {
            reference_id,
            status: "rjct".into(),
            reason_code: Some(code.into()),
            reason_message: Some(why),
            record_count: 0,
        },
        audit: Vec::new(),
    }
}

pub(crate) fn read_record(principal: &Principal, p: &PersonRecord) -> AuditRecord {
    let mut r = principal.audit_record("person.read", "person");
    r.subject_id = Some(p.person.id.to_string());
    r.area = p.person.village.clone();
    r.fields = PERSON_FIELDS.iter().map(|f| format!("dci:{f}")).collect();
    r
}

async fn members(
    state: &AppState,
    principal: &Principal,
    s: &PreparedSearch,
) -> StoreResult<(Vec<Value>, u64, Vec<AuditRecord>)> {
    let reg = state.store.registry();
    let page = reg.find_people(&principal.scope, &s.query).await?;
    let mut households: HashMap<Uuid, Option<Household>> = HashMap::new();
    for p in &page.items {
        if let Some(h) = p.person.household_id {
            if let std::collections::hash_map::Entry::Vacant(e) = households.entry(h) {
                e.insert(reg.household(&principal.scope, h).await?);
            }
        }
    }
    let records = page
        .items
        .iter()
        .map(|p| {
            let h = p
                .person
                .household_id
                .and_then(|h| households.get(&h).and_then(Option::as_ref));
            records::member(p, h)
        })
        .collect();
    let audit = page
        .items
        .iter()
        .map(|p| read_record(principal, p))
        .collect();
    Ok((records, page.total, audit))
}

async fn groups(
    state: &AppState,
    principal: &Principal,
    s: &PreparedSearch,
) -> StoreResult<(Vec<Value>, u64, Vec<AuditRecord>)> {
    let reg = state.store.registry();
    let page = reg
        .find_households(
            &principal.scope,
            &s.query.filter,
            s.query.limit,
            s.query.offset,
            s.query.max_candidates,
        )
        .await?;
    let mut out = Vec::with_capacity(page.items.len());
    let mut audit = Vec::new();
    for id in page.items {
        let Some(h) = reg.household(&principal.scope, id).await? else {
            continue;
        };
        let members = reg.members(&principal.scope, id).await?;
        let mut r = principal.audit_record("household.read", "household");
        r.subject_id = Some(h.id.to_string());
        r.area = Some(h.village.clone());
        r.fields = vec!["dci:place".into(), "dci:member_list".into()];
        audit.push(r);
        audit.extend(members.iter().map(|p| read_record(principal, p)));
        out.push(records::group(&h, &members));
    }
    Ok((out, page.total, audit))
}

/// A search message being answered: what [`run_search`] needs of an accepted or checked one.
struct SearchCall<'a> {
    header: &'a inkingi_interop::dci::envelope::Header,
    message: &'a SearchMessage,
    purpose: &'a Purpose,
    correlation_id: &'a str,
    now: DateTime<Utc>,
}

/// Runs every request of a search message. Returns the answer envelope, the audit entries to
/// write once the transaction is committed, and the transaction to record.
async fn run_search(
    state: &AppState,
    principal: &Principal,
    a: SearchCall<'_>,
    pending: bool,
) -> ApiResult<(Answer<Value>, Vec<AuditRecord>, Transaction)> {
    let items = check_batch(&a.message.search_request, a.now.date_naive());
    let mut responses = Vec::with_capacity(items.len());
    let mut outcomes = Vec::with_capacity(items.len());
    let mut audit = Vec::new();
    for item in items {
        let r = run_item(state, principal, item, a.now).await?;
        responses.push(r.response);
        outcomes.push(r.outcome);
        audit.extend(r.audit);
    }
    for rec in &mut audit {
        rec.purpose = Some(a.purpose.to_string());
    }
    let all_rejected = !outcomes.is_empty() && outcomes.iter().all(|o| o.status == "rjct");
    let mut header = CallbackHeader::answering(a.header, "on-search", our_id(state), a.now);
    header.status = if all_rejected { "rjct" } else { "succ" }.into();
    header.completed_count = outcomes.len() as u64;
    // A request without a usable reference id cannot be asked about later; keep the others.
    let mut seen = std::collections::HashSet::new();
    outcomes.retain(|o| !o.reference_id.trim().is_empty() && seen.insert(o.reference_id.clone()));
    let txn = Transaction {
        correlation_id: a.correlation_id.to_string(),
        client: principal.username.to_string(),
        transaction_id: a.message.transaction_id.clone(),
        message_id: a.header.message_id.clone(),
        action: "search".into(),
        status: if all_rejected {
            "rjct"
        } else if pending {
            "pdng"
        } else {
            "succ"
        }
        .into(),
        created_at: a.now,
        updated_at: a.now,
        requests: outcomes,
    };
    let answer = Answer {
        signature: None,
        header,
        message: json!({
            "transaction_id": a.message.transaction_id,
            "correlation_id": a.correlation_id,
            "search_response": responses,
        }),
    };
    Ok((answer, audit, txn))
}

pub(crate) async fn write_audit(state: &AppState, audit: Vec<AuditRecord>) -> ApiResult<()> {
    if state.auth.settings.audit_reads && !audit.is_empty() {
        state.audit.record_reads(audit).await?;
    }
    Ok(())
}

fn search_count(m: &SearchMessage) -> usize {
    m.search_request.len()
}

/// Synchronous search: the result envelope (`on-search`) in the response.
#[utoipa::path(post, path = "/dci/registry/sync/search", tag = "dci",
    request_body(content = Object, description = "DCI envelope {signature, header, message: SearchRequest}"),
    responses(
        (status = 200, description = "Search response envelope; each request has status succ or rjct with a reason code", body = Object),
        (status = 400, description = "ERR acknowledgement: the message could not be read", body = Object),
        (status = 422, description = "Envelope with header status rjct (replayed message id, stale timestamp, wrong action or count)", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn sync_search(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Response {
    let now = Utc::now();
    let cid = Uuid::now_v7().to_string();
    let c = match check(&state, &principal, &body, "search", search_count) {
        Ok(c) => c,
        Err(r) => return r.sync(&state, "on-search", &cid, now),
    };
    // No write transaction per request: the message id is held in memory while the search
    // runs, then written with the transaction by the journal's next group commit.
    let Some(_claim) = state
        .dci_journal
        .claim(&c.inbound.client, &c.inbound.message_id)
    else {
        return duplicate(c.header).sync(&state, "on-search", &cid, now);
    };
    let call = SearchCall {
        header: &c.header,
        message: &c.message,
        purpose: &c.purpose,
        correlation_id: &cid,
        now: c.now,
    };
    let result = async {
        let (answer, audit, transaction) = run_search(&state, &principal, call, false).await?;
        let entry = JournalEntry {
            message: c.inbound.clone(),
            transaction,
        };
        let fresh = state.dci_journal.record(entry).await?;
        if fresh {
            write_audit(&state, audit).await?;
        }
        Ok::<_, ApiError>(fresh.then_some(answer))
    }
    .await;
    match result {
        Ok(Some(answer)) => signed(&state, &answer),
        // Recorded before (by another node, or by this one before the claim): what was read
        // is not handed out.
        Ok(None) => duplicate(c.header).sync(&state, "on-search", &cid, now),
        Err(e) => e.into_response(),
    }
}

/// Asynchronous search: `ACK` now; the result is POSTed to `sender_uri` + `/on-search`.
#[utoipa::path(post, path = "/dci/registry/search", tag = "dci",
    request_body(content = Object, description = "DCI envelope {signature, header, message: SearchRequest}; header.sender_uri is required"),
    responses(
        (status = 202, description = "ACK with the correlation id", body = Object),
        (status = 400, description = "ERR acknowledgement", body = Object),
        (status = 422, description = "NACK acknowledgement (reason code first in error.message)", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn search(State(state): State<AppState>, principal: Principal, body: Bytes) -> Response {
    let now = Utc::now();
    let fallback = Uuid::now_v7().to_string();
    let mut a = match accept(&state, &principal, &body, "search", search_count).await {
        Ok(a) => a,
        Err(r) => return r.ack(&fallback, now),
    };
    let url = match reply_url(&a.header, "on-search") {
        Ok(u) => u,
        Err(r) => return r.ack(&a.correlation_id, now),
    };
    let cid = a.correlation_id.clone();
    let result = async {
        let call = SearchCall {
            header: &a.header,
            message: &a.message,
            purpose: &a.purpose,
            correlation_id: &cid,
            now: a.now,
        };
        let (answer, audit, txn) = run_search(&state, &principal, call, true).await?;
        state
            .store
            .dci()
            .record_transaction(&mut a.uow, &txn)
            .await?;
        enqueue(&state, &mut a.uow, url, &answer, &cid).await?;
        a.uow.commit().await?;
        write_audit(&state, audit).await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match result {
        Ok(()) => (StatusCode::ACCEPTED, Json(Ack::accepted(&cid, now))).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(crate) fn reply_url(
    h: &inkingi_interop::dci::envelope::Header,
    path: &str,
) -> Result<String, Refusal> {
    callback_url(h.sender_uri.as_deref().unwrap_or(""), path)
        .map_err(|m| Refusal::Err(ErrorCode::SenderUriInvalid, m))
}

pub(crate) async fn enqueue(
    state: &AppState,
    uow: &mut UnitOfWork,
    url: String,
    answer: &Answer<Value>,
    correlation_id: &str,
) -> ApiResult<()> {
    let job = CallbackJob {
        url,
        body: serde_json::to_value(answer).map_err(ApiError::internal)?,
        correlation_id: correlation_id.to_string(),
    };
    state.store.jobs().enqueue(uow, NewJob::of(&job)?).await?;
    Ok(())
}

/// The status answer of a txn-status message (transactions are looked up within the caller's).
async fn status_answer(
    state: &AppState,
    principal: &Principal,
    a: &Accepted<TxnStatusMessage>,
) -> Result<Answer<Value>, Refusal> {
    if a.message.txnstatus_request.txn_type == "subscribe" {
        return crate::dci_events::subscription_status(state, principal, a).await;
    }
    let key = a
        .message
        .txnstatus_request
        .key()
        .map_err(|m| Refusal::Err(ErrorCode::RequestBad, m))?;
    let found = state
        .store
        .dci()
        .transactions(principal.username.as_str(), &key)
        .await
        .map_err(ApiError::from)?;
    let mut header = CallbackHeader::answering(&a.header, "txn-on-status", our_id(state), a.now);
    header.completed_count = 1;
    if found.is_empty() {
        header.status = "rjct".into();
        header.status_reason_message = Some("no such transaction".into());
    }
    Ok(Answer {
        signature: None,
        header,
        message: txn::response(&a.message, &key, &found, &a.correlation_id),
    })
}

/// Synchronous transaction status.
#[utoipa::path(post, path = "/dci/registry/sync/txn/status", tag = "dci",
    request_body(content = Object, description = "DCI envelope {signature, header, message: TxnStatusRequest}"),
    responses(
        (status = 200, description = "Status envelope (txn-on-status)", body = Object),
        (status = 400, description = "ERR acknowledgement", body = Object),
        (status = 422, description = "Envelope with header status rjct", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn sync_txn_status(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Response {
    let now = Utc::now();
    let fallback = Uuid::now_v7().to_string();
    let a = match accept(
        &state,
        &principal,
        &body,
        "txn-status",
        |_: &TxnStatusMessage| 1,
    )
    .await
    {
        Ok(a) => a,
        Err(r) => return r.sync(&state, "txn-on-status", &fallback, now),
    };
    let answer = match status_answer(&state, &principal, &a).await {
        Ok(x) => x,
        Err(r) => return r.sync(&state, "txn-on-status", &a.correlation_id, now),
    };
    match a.uow.commit().await {
        Ok(()) => signed(&state, &answer),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Asynchronous transaction status: `ACK` now; the status is POSTed to `sender_uri` +
/// `/txn/on-status`.
#[utoipa::path(post, path = "/dci/registry/txn/status", tag = "dci",
    request_body(content = Object, description = "DCI envelope {signature, header, message: TxnStatusRequest}; header.sender_uri is required"),
    responses(
        (status = 202, description = "ACK with the correlation id", body = Object),
        (status = 400, description = "ERR acknowledgement", body = Object),
        (status = 422, description = "NACK acknowledgement", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn txn_status(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Response {
    let now = Utc::now();
    let fallback = Uuid::now_v7().to_string();
    let mut a = match accept(
        &state,
        &principal,
        &body,
        "txn-status",
        |_: &TxnStatusMessage| 1,
    )
    .await
    {
        Ok(a) => a,
        Err(r) => return r.ack(&fallback, now),
    };
    let url = match reply_url(&a.header, "txn/on-status") {
        Ok(u) => u,
        Err(r) => return r.ack(&a.correlation_id, now),
    };
    let answer = match status_answer(&state, &principal, &a).await {
        Ok(x) => x,
        Err(r) => return r.ack(&a.correlation_id, now),
    };
    let cid = a.correlation_id.clone();
    let result = async {
        enqueue(&state, &mut a.uow, url, &answer, &cid).await?;
        a.uow.commit().await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match result {
        Ok(()) => (StatusCode::ACCEPTED, Json(Ack::accepted(&cid, now))).into_response(),
        Err(e) => e.into_response(),
    }
}
