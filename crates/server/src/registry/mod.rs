//! `/api/v1` of the registry: households, individuals, memberships and form versions.
//!
//! Every handler checks its permission first, passes the principal's area scope to the store
//! (a record outside it answers 404, so existence does not leak, and the refusal is audited),
//! records reads of personal data with their declared purpose, and writes each change with its
//! event (actor, channel, reason) in one transaction.

pub mod changes;
pub mod forms;
pub mod households;
pub mod id_checks;
pub mod imports;
pub mod input;
pub mod matching;
pub mod memberships;
pub mod pages;
pub mod people;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use chrono::Utc;
use inkingi_domain::identity::{Permission, Purpose};
use inkingi_domain::registry::form::FormSchema;
use inkingi_domain::registry::history::Channel;
use inkingi_store::registry::EventMeta;
use inkingi_store::UnitOfWork;
use utoipa::OpenApi;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Header carrying why a change is made, when the body has no `reason`.
pub const REASON_HEADER: &str = "x-change-reason";
/// The form new answers are validated against.
pub const FORM_ID: &str = "rw-socioeconomic";

#[derive(OpenApi)]
#[openapi(
    paths(
        households::create,
        households::list,
        households::get_one,
        households::patch,
        households::history,
        people::get_one,
        people::patch,
        people::search,
        id_checks::for_person,
        id_checks::worklist,
        id_checks::verify_now,
        matching::match_person,
        matching::status,
        memberships::add,
        memberships::end,
        memberships::change_role,
        forms::latest,
        forms::by_version,
        forms::publish,
        changes::create,
        changes::list,
        changes::get_one,
        changes::decide_api,
        imports::start,
        imports::get_one,
        imports::errors,
    ),
    components(schemas(crate::error::FieldError, input::MemberFields, input::HouseholdFields,
        households::CreateHousehold, changes::ChangeView, changes::ChangePage,
        changes::Decision, imports::ImportView, id_checks::PersonChecks, id_checks::Worklist, id_checks::VerifyQueued,
        matching::MatchRequest, matching::MatchResponse,
        matching::MatchCandidate, matching::OutsideScope, crate::lookup::LookupStatus)),
    tags((name = "registry", description = "Households, individuals, memberships, history and the questionnaire"))
)]
struct RegistryApi;

pub fn api() -> utoipa::openapi::OpenApi {
    RegistryApi::openapi()
}

/// Who changes the registry, through which door and why.
pub fn event_meta(principal: &Principal, channel: Channel, reason: Option<String>) -> EventMeta {
    EventMeta {
        actor: principal.username.as_str().to_string(),
        channel,
        reason,
        change_request_id: None,
        at: Utc::now(),
    }
}

/// The reason of a change: the body's `reason`, else the `X-Change-Reason` header.
pub fn reason(body: Option<String>, headers: &HeaderMap) -> Option<String> {
    body.filter(|r| !r.trim().is_empty()).or_else(|| {
        headers
            .get(REASON_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().chars().take(500).collect::<String>())
            .filter(|s| !s.is_empty())
    })
}

/// The permission and the declared purpose of a read of personal data.
pub fn reader(state: &AppState, principal: &Principal) -> ApiResult<Purpose> {
    principal.require(Permission::ReadPersonalData)?;
    principal.purpose(&state.auth.settings.purposes)
}

/// The version a write expects, from `If-Match` (428 when missing, 400 when malformed).
pub fn if_match(headers: &HeaderMap) -> ApiResult<i64> {
    let Some(raw) = headers.get(header::IF_MATCH) else {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition-required",
            "send If-Match with the ETag of the version you changed (GET the record first)",
        ));
    };
    raw.to_str()
        .ok()
        .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| {
            ApiError::invalid_field("If-Match", "If-Match: expected an ETag such as \"3\"")
        })
}

pub fn etag(version: i64) -> (header::HeaderName, HeaderValue) {
    let v = HeaderValue::from_str(&format!("\"{version}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    (header::ETAG, v)
}

/// The 404 for a record the principal may not see. When it exists elsewhere the attempt is
/// audited as denied, with the record's area, so an auditor of that area sees it.
pub async fn not_visible(
    state: &AppState,
    principal: &Principal,
    subject_type: &str,
    id: Uuid,
) -> ApiError {
    let missing = ApiError::not_found(format!("no {subject_type} {id} in your area scope"));
    let area = match state.store.registry().locate(id).await {
        Ok(Some(area)) => area,
        Ok(None) => return missing,
        Err(e) => return e.into(),
    };
    let mut rec = principal.audit_record(&format!("{subject_type}.read"), subject_type);
    rec.outcome = "denied".into();
    rec.subject_id = Some(id.to_string());
    rec.area = Some(area);
    match state.audit.record_reads(vec![rec]).await {
        Ok(()) => missing,
        Err(e) => e,
    }
}

/// The latest version of the registry's form.
pub async fn current_form(state: &AppState) -> ApiResult<FormSchema> {
    state
        .store
        .registry()
        .latest_form(FORM_ID)
        .await?
        .map(|f| f.schema)
        .ok_or_else(|| ApiError::internal(format!("form {FORM_ID} is not published")))
}

/// Records a change in the audit log inside the change's unit of work.
pub async fn audit_change(
    state: &AppState,
    uow: &mut UnitOfWork,
    principal: &Principal,
    action: &str,
    subject: (&str, Uuid),
    area: Option<inkingi_domain::areas::AreaCode>,
    fields: Vec<String>,
) -> ApiResult<()> {
    let mut rec = principal.audit_record(action, subject.0);
    rec.subject_id = Some(subject.1.to_string());
    rec.area = area;
    rec.fields = fields;
    state.store.audit().append_in(uow, vec![rec]).await?;
    Ok(())
}
