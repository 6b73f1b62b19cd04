//! `/api/v1/individuals`: read one, update identity fields with If-Match, and search by
//! registry number, national ID, phone or name.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use inkingi_domain::identity::Permission;
use inkingi_domain::registry::history::Channel;
use inkingi_domain::registry::{NationalId, PhoneNumber, RegistryNumber};
use inkingi_store::registry::{
    EventMeta, PersonChange, PersonHit, PersonRecord, PersonSearch, Relatives,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::IntoParams;
use uuid::Uuid;

use super::input::{self, Errors, MemberFields};
use super::memberships::{relative_ids, rule_error};
use super::{audit_change, current_form, etag, event_meta, if_match, not_visible, reader, reason};
use crate::audit::record_read;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{page_limit, Query};
use crate::AppState;

/// The fields a person read returns, as the audit entry records them.
pub const PERSON_FIELDS: &[&str] = &[
    "given_name",
    "family_name",
    "sex",
    "birth_date",
    "national_id",
    "other_identifiers",
    "phones",
    "answers",
    "membership",
];

/// One person with their current membership.
#[utoipa::path(get, path = "/api/v1/individuals/{id}", tag = "registry", operation_id = "people_get_one",
    params(("id" = Uuid, Path), ("X-Purpose-Of-Use" = String, Header, description = "Why personal data is read")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The person; ETag is their version", body = Object),
        (status = 404, description = "No such person in your area scope")))]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    let purpose = reader(&state, &principal)?;
    let Some(p) = state.store.registry().person(&principal.scope, id).await? else {
        return Err(not_visible(&state, &principal, "person", id).await);
    };
    record_read(
        &state,
        &principal,
        purpose,
        ("person", &id.to_string()),
        p.person.village.clone(),
        PERSON_FIELDS,
    )
    .await?;
    Ok((StatusCode::OK, [etag(p.person.version)], Json(p)).into_response())
}

/// Applies a merge patch to a person's identity fields, validates, and writes it with its
/// event and audit entry.
pub async fn update(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    expected: i64,
    patch: Map<String, Value>,
    meta: &EventMeta,
) -> ApiResult<PersonRecord> {
    for k in ["role", "since"] {
        if patch.contains_key(k) {
            return Err(ApiError::validation(vec![FieldError {
                field: k.into(),
                reason: format!("memberships change through /api/v1/memberships/{id}"),
            }]));
        }
    }
    let Some(current) = state.store.registry().person(&principal.scope, id).await? else {
        return Err(not_visible(state, principal, "person", id).await);
    };
    let keys: Vec<String> = patch.keys().cloned().collect();
    let merged: MemberFields =
        input::merge_patch(&input::person_fields(&current.person.data), patch)?;
    let form = current_form(state).await?;
    let mut e = Errors::default();
    let person = input::person("", &merged, &form, &mut e);
    let [mother, father, guardian] = relative_ids(state, principal, &merged, None, &mut e).await?;
    e.into_result()?;
    let person = person.ok_or_else(|| ApiError::internal("validated person missing"))?;
    // A relative the patch does not name stays; `null` removes the link.
    let was = current.relatives();
    let pick = |key: &str, sent: Option<Uuid>, kept: Option<Uuid>| {
        if keys.iter().any(|k| k == key) {
            sent
        } else {
            kept
        }
    };
    let change = PersonChange {
        input: person,
        relatives: Relatives {
            mother: pick("mother", mother, was.mother),
            father: pick("father", father, was.father),
            guardian: pick("guardian", guardian, was.guardian),
        },
    };
    let mut uow = state.store.begin().await?;
    let p = state
        .store
        .registry()
        .update_person(&mut uow, &principal.scope, id, expected, &change, meta)
        .await
        .map_err(rule_error)?;
    audit_change(
        state,
        &mut uow,
        principal,
        "person.update",
        ("person", id),
        p.person.village.clone(),
        keys,
    )
    .await?;
    uow.commit().await?;
    Ok(p)
}

/// Update identity fields (names, sex, birth date, identifiers, phones, member answers).
#[utoipa::path(patch, path = "/api/v1/individuals/{id}", tag = "registry", operation_id = "people_patch",
    params(("id" = Uuid, Path), ("If-Match" = String, Header, description = "ETag of the version changed"),
        ("X-Change-Reason" = Option<String>, Header, description = "Why, when the body has no reason")),
    request_body(content = MemberFields, description = "Fields to change (merge patch); `reason` allowed"),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Updated; ETag is the new version", body = Object),
        (status = 404, description = "No such person in your area scope"),
        (status = 409, description = "The national ID belongs to someone else"),
        (status = 412, description = "Changed by someone else since your version"),
        (status = 422, description = "Field errors", body = crate::error::ProblemBody),
        (status = 428, description = "If-Match is missing")))]
pub async fn patch(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::WritePersonalData)?;
    // Existence (within scope) first, so a caller elsewhere learns nothing from 428 or 422.
    if state
        .store
        .registry()
        .person(&principal.scope, id)
        .await?
        .is_none()
    {
        return Err(not_visible(&state, &principal, "person", id).await);
    }
    let expected = if_match(&headers)?;
    let mut patch: Map<String, Value> = input::parse_body(&body)?;
    let why = input::take_reason(&mut patch)?;
    let meta = event_meta(&principal, Channel::Api, reason(why, &headers));
    let p = update(&state, &principal, id, expected, patch, &meta).await?;
    Ok((StatusCode::OK, [etag(p.person.version)], Json(p)).into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// One box: a registry number, national ID, phone number or name (fuzzy, ranked).
    pub q: Option<String>,
    pub national_id: Option<String>,
    pub phone: Option<String>,
    pub registry_number: Option<String>,
    /// 1 to 200, default 20.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct SearchResults {
    pub results: Vec<PersonHit>,
}

fn some(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Reads the search parameters; `q` is classified as a registry number, national ID, phone
/// number or, failing those, a name.
pub fn to_search(p: &SearchParams) -> ApiResult<PersonSearch> {
    let limit = page_limit(p.limit, 20, 200)?;
    let bad = |f: &'static str| {
        move |e: String| ApiError::invalid_field(f, format!("query parameter '{f}': {e}"))
    };
    let mut s = PersonSearch {
        limit,
        ..Default::default()
    };
    if let Some(v) = some(&p.national_id) {
        s.national_id = Some(NationalId::parse(v).map_err(|e| bad("national_id")(e.to_string()))?);
    }
    if let Some(v) = some(&p.phone) {
        s.phone = Some(PhoneNumber::parse(v).map_err(|e| bad("phone")(e.to_string()))?);
    }
    if let Some(v) = some(&p.registry_number) {
        s.registry_number =
            Some(RegistryNumber::parse(v).map_err(|e| bad("registry_number")(e.to_string()))?);
    }
    if let Some(q) = some(&p.q) {
        if let Ok(n) = RegistryNumber::parse(q) {
            s.registry_number = Some(n);
        } else if let Ok(n) = NationalId::parse(q) {
            s.national_id = Some(n);
        } else if let Ok(n) = PhoneNumber::parse(q) {
            s.phone = Some(n);
        } else {
            s.name = Some(q.chars().take(200).collect());
        }
    }
    if s.name.is_none()
        && s.national_id.is_none()
        && s.phone.is_none()
        && s.registry_number.is_none()
    {
        return Err(ApiError::invalid_field(
            "q",
            "give q (name, number, ID or phone), national_id, phone or registry_number",
        ));
    }
    Ok(s)
}

/// Runs a search in the principal's scope and records the read of each person returned.
pub async fn run_search(
    state: &AppState,
    principal: &Principal,
    s: &PersonSearch,
) -> ApiResult<Vec<PersonHit>> {
    let purpose = reader(state, principal)?;
    search_for(state, principal, s, purpose).await
}

/// Runs a search for a read already allowed with `purpose` (pages imply theirs).
pub async fn search_for(
    state: &AppState,
    principal: &Principal,
    s: &PersonSearch,
    purpose: inkingi_domain::identity::Purpose,
) -> ApiResult<Vec<PersonHit>> {
    let hits = state
        .store
        .registry()
        .search_people(&principal.scope, s)
        .await?;
    if state.auth.settings.audit_reads && !hits.is_empty() {
        let records = hits
            .iter()
            .map(|h| {
                let mut r = principal.audit_record("person.search", "person");
                r.subject_id = Some(h.record.person.id.to_string());
                r.area = h.record.person.village.clone();
                r.fields = PERSON_FIELDS.iter().map(|f| f.to_string()).collect();
                r.purpose = Some(purpose.to_string());
                r
            })
            .collect();
        state.audit.record_reads(records).await?;
    }
    Ok(hits)
}

/// Search people in your scope by registry number, national ID, phone or name (fuzzy:
/// spelling-, diacritic- and case-insensitive), best match first.
#[utoipa::path(get, path = "/api/v1/individuals/search", tag = "registry", operation_id = "people_search",
    params(SearchParams, ("X-Purpose-Of-Use" = String, Header, description = "Why personal data is read")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Ranked results with scores (1 = identifier match)", body = Object),
        (status = 400, description = "A malformed parameter, named in the problem")))]
pub async fn search(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<SearchParams>,
) -> ApiResult<Json<SearchResults>> {
    reader(&state, &principal)?;
    let s = to_search(&params)?;
    let results = run_search(&state, &principal, &s).await?;
    Ok(Json(SearchResults { results }))
}
