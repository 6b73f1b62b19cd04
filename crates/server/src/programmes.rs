//! `/api/v1/agencies`, `/api/v1/programmes`, enrolments and the consolidated beneficiary
//! registry (`/api/v1/beneficiaries`).
//!
//! Enrolling evaluates the programme's eligibility rule on the household's facts and current
//! score; an ineligible subject is refused with the explanation. An eligible one is enrolled
//! when the programme has room, else put on the waiting list (served poorest score first).
//! Every transition is an event with its actor and time, and an audit entry.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use inkingi_domain::identity::{Permission, Purpose};
use inkingi_domain::programmes::{Agency, EnrolmentStatus, Programme};
use inkingi_store::programmes::{
    Enrolment, EnrolmentEvent, EnrolmentQuery, Evaluation, NewEnrolment, NotEvaluated,
    StoredProgramme,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::audit::record_read;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{page_limit, Query};
use crate::registry::{audit_change, etag, if_match, input::parse_body, not_visible, reader};
use crate::AppState;

pub mod pages;

#[derive(OpenApi)]
#[openapi(
    paths(list_agencies, list_programmes, create_programme, update_programme, get_programme, enrol,
        list_enrolments, get_enrolment, transition, beneficiaries, pages::list_page,
        pages::new_page, pages::create_page, pages::edit_page, pages::update_page,
        pages::rule_check_fragment, pages::simulate_fragment, pages::enrolments_page),
    components(schemas(EnrolRequest, TransitionRequest, BeneficiaryView, Overlap)),
    tags((name = "programmes", description = "Agencies, programmes, enrolment and the consolidated beneficiary registry"))
)]
struct ProgrammesApi;

pub fn api() -> utoipa::openapi::OpenApi {
    ProgrammesApi::openapi()
}

/// Agencies that run programmes.
#[utoipa::path(get, path = "/api/v1/agencies", tag = "programmes", operation_id = "agencies_list",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Agencies", body = Vec<Object>)))]
pub async fn list_agencies(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Vec<Agency>>> {
    principal.require(Permission::ManageProgrammes)?;
    Ok(Json(state.store.programmes().agencies().await?))
}

/// Programmes with their rules, benefit formulas, capacity or budget and frequency.
#[utoipa::path(get, path = "/api/v1/programmes", tag = "programmes", operation_id = "programmes_list",
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Programmes", body = Vec<Object>)))]
pub async fn list_programmes(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Vec<StoredProgramme>>> {
    principal.require(Permission::ManageProgrammes)?;
    Ok(Json(state.store.programmes().programmes(None).await?))
}

/// Create a programme. Unknown fields are refused; the eligibility rule must parse and
/// type-check (a failure names `eligibility` with line and column) and the agency must exist.
#[utoipa::path(post, path = "/api/v1/programmes", tag = "programmes", operation_id = "programmes_create",
    request_body = Object,
    security(("bearer" = []), ("session" = [])),
    responses((status = 201, description = "Created; ETag is its version", body = Object),
        (status = 409, description = "A programme with this code exists"),
        (status = 422, description = "Invalid field, named", body = crate::error::ProblemBody)))]
pub async fn create_programme(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::ManageProgrammes)?;
    let p = programme_from_body(&body)?;
    let saved = save_programme(&state, &principal, &p, None).await?;
    Ok((StatusCode::CREATED, [etag(saved.version)], Json(saved)).into_response())
}

/// Replace a programme (same JSON as create; `code` must match the path), with `If-Match`
/// holding the ETag of the version changed: 412 when someone changed it since.
#[utoipa::path(put, path = "/api/v1/programmes/{code}", tag = "programmes", operation_id = "programmes_update",
    params(("code" = String, Path), ("If-Match" = String, Header, description = "ETag of the version changed")),
    request_body = Object,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Saved; ETag is the new version", body = Object),
        (status = 404, description = "No such programme"),
        (status = 412, description = "The programme changed since that version"),
        (status = 422, description = "Invalid field, named", body = crate::error::ProblemBody),
        (status = 428, description = "If-Match is missing")))]
pub async fn update_programme(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::ManageProgrammes)?;
    let expected = if_match(&headers)?;
    let p = programme_from_body(&body)?;
    if p.code != code {
        return Err(ApiError::invalid_field(
            "code",
            format!("'{}' is not the programme of this URL ({code})", p.code),
        ));
    }
    programme_or_404(&state, &code).await?;
    let saved = save_programme(&state, &principal, &p, Some(expected)).await?;
    Ok((StatusCode::OK, [etag(saved.version)], Json(saved)).into_response())
}

fn programme_from_body(body: &[u8]) -> ApiResult<Programme> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    Programme::from_json(text).map_err(|e| {
        let reason = match &e.rule_error {
            Some(r) => format!("{}\n{}", e.reason, r.excerpt),
            None => e.reason.clone(),
        };
        ApiError::validation(vec![FieldError {
            field: e.field,
            reason,
        }])
    })
}

/// Stores a checked programme (a new one when `expected` is `None`) and audits the change.
pub(crate) async fn save_programme(
    state: &AppState,
    principal: &Principal,
    p: &Programme,
    expected: Option<i64>,
) -> ApiResult<StoredProgramme> {
    let saved = state
        .store
        .programmes()
        .put_programme(p, expected, principal.username.as_str())
        .await?;
    let action = if expected.is_some() {
        "programme.update"
    } else {
        "programme.create"
    };
    let mut audit = principal.audit_record(action, "programme");
    audit.subject_id = Some(p.code.clone());
    audit.fields = vec![format!("version={}", saved.version)];
    state.audit.append(vec![audit]).await?;
    Ok(saved)
}

/// A programme by its code, or a 404 naming it.
pub(crate) async fn programme_or_404(state: &AppState, code: &str) -> ApiResult<StoredProgramme> {
    state
        .store
        .programmes()
        .programme(code)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no programme {code}")))
}

/// One programme.
#[utoipa::path(get, path = "/api/v1/programmes/{code}", tag = "programmes", operation_id = "programmes_get",
    params(("code" = String, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The programme; ETag is its version", body = Object),
        (status = 404, description = "No such programme")))]
pub async fn get_programme(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
) -> ApiResult<Response> {
    principal.require(Permission::ManageProgrammes)?;
    let p = programme_or_404(&state, &code).await?;
    Ok(([etag(p.version)], Json(p)).into_response())
}

/// Whom to enrol: a household, and for individual programmes one of its members.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    pub household: Uuid,
    /// Required for individual programmes, refused for household programmes.
    pub person: Option<Uuid>,
    pub reason: Option<String>,
}

/// Evaluates `p`'s rule on the household (and person) as the registry holds them now.
async fn assess(
    state: &AppState,
    principal: &Principal,
    p: &Programme,
    household: Uuid,
    person: Option<Uuid>,
) -> ApiResult<Evaluation> {
    let field = |f: &str, r: String| {
        ApiError::validation(vec![FieldError {
            field: f.into(),
            reason: r,
        }])
    };
    let individual = p.target == inkingi_domain::programmes::TargetType::Individual;
    if individual && person.is_none() {
        return Err(field(
            "person",
            format!("programme {} enrols individuals: name the person", p.code),
        ));
    }
    if !individual && person.is_some() {
        return Err(field(
            "person",
            format!("programme {} enrols whole households", p.code),
        ));
    }
    if state
        .store
        .registry()
        .household(&principal.scope, household)
        .await?
        .is_none()
    {
        return Err(not_visible(state, principal, "household", household).await);
    }
    match state
        .store
        .programmes()
        .evaluate(p, household, person, false)
        .await?
    {
        Ok(e) => Ok(e),
        Err(NotEvaluated::HouseholdInactive) => Err(field(
            "household",
            format!("household {household} is not active"),
        )),
        Err(NotEvaluated::NotALivingMember) => Err(field(
            "person",
            format!(
                "person {} is not a living member of household {household}",
                person.unwrap_or_default()
            ),
        )),
    }
}

/// Enrol a household (or a member, for individual programmes). The eligibility rule decides;
/// an eligible subject is enrolled when the programme has room, else put on the waiting list.
#[utoipa::path(post, path = "/api/v1/programmes/{code}/enrolments", tag = "programmes", operation_id = "enrolments_create",
    params(("code" = String, Path)),
    request_body = EnrolRequest,
    security(("bearer" = []), ("session" = [])),
    responses((status = 201, description = "Enrolled or waiting; the decision is explained", body = Object),
        (status = 404, description = "No such programme, or household not in your area scope"),
        (status = 409, description = "Already has an open enrolment in this programme"),
        (status = 422, description = "Not eligible (with the explanation), or an invalid field", body = crate::error::ProblemBody)))]
pub async fn enrol(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::ManageProgrammes)?;
    let body: EnrolRequest = parse_body(&body)?;
    let p = programme_or_404(&state, &code).await?.programme;
    let a = assess(&state, &principal, &p, body.household, body.person).await?;
    if !a.eligible {
        return Err(ApiError {
            field: Some("household".into()),
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not-eligible",
                a.explanation,
            )
        });
    }
    let new = NewEnrolment {
        household_id: body.household,
        person_id: body.person,
        village: a.village.clone(),
        score: a.score,
        amount: a.amount,
        decision: a.explanation,
        actor: principal.username.as_str().to_string(),
        reason: body.reason.filter(|r| !r.trim().is_empty()),
    };
    let mut uow = state.store.begin().await?;
    let e = state
        .store
        .programmes()
        .enrol(&mut uow, &code, &new)
        .await?;
    let area = inkingi_domain::areas::AreaCode::parse(&a.village).ok();
    audit_change(
        &state,
        &mut uow,
        &principal,
        "enrolment.create",
        ("household", body.household),
        area,
        vec![format!("programme={code}"), format!("status={}", e.status)],
    )
    .await?;
    uow.commit().await?;
    Ok((StatusCode::CREATED, [etag(e.version)], Json(e)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EnrolmentParams {
    /// `eligible`, `waiting` (ordered poorest score first), `enrolled`, `suspended`,
    /// `graduated` or `exited`.
    status: Option<String>,
    /// 1 to 1000, default 100.
    limit: Option<u32>,
}

pub(crate) fn status_param(s: Option<&str>) -> ApiResult<Option<EnrolmentStatus>> {
    s.filter(|s| !s.is_empty())
        .map(|s| {
            EnrolmentStatus::parse(s).ok_or_else(|| {
                ApiError::invalid_field(
                    "status",
                    format!("query parameter 'status': '{s}' is not an enrolment status"),
                )
            })
        })
        .transpose()
}

/// Enrolments of a programme within the caller's area scope.
#[utoipa::path(get, path = "/api/v1/programmes/{code}/enrolments", tag = "programmes", operation_id = "enrolments_list",
    params(("code" = String, Path), EnrolmentParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Enrolments", body = Vec<Object>),
        (status = 404, description = "No such programme")))]
pub async fn list_enrolments(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
    Query(params): Query<EnrolmentParams>,
) -> ApiResult<Json<Vec<Enrolment>>> {
    principal.require(Permission::ManageProgrammes)?;
    let purpose = principal.purpose_or(
        Purpose::ProgrammeAdministration,
        &state.auth.settings.purposes,
    )?;
    programme_or_404(&state, &code).await?;
    let limit = page_limit(params.limit, 100, 1000)?;
    let status = status_param(params.status.as_deref())?;
    let list = enrolments_in_scope(&state, &principal, purpose, &code, status, limit).await?;
    Ok(Json(list))
}

/// A programme's enrolments in the caller's area scope, each read audited.
pub(crate) async fn enrolments_in_scope(
    state: &AppState,
    principal: &Principal,
    purpose: Purpose,
    code: &str,
    status: Option<EnrolmentStatus>,
    limit: u32,
) -> ApiResult<Vec<Enrolment>> {
    let q = EnrolmentQuery {
        programme: Some(code.to_string()),
        status,
        household: None,
        limit,
    };
    let list = state
        .store
        .programmes()
        .enrolments(&principal.scope, &q)
        .await?;
    if state.auth.settings.audit_reads && !list.is_empty() {
        let records = list
            .iter()
            .map(|e| {
                let mut r = principal.audit_record("enrolment.read", "household");
                r.subject_id = Some(e.household_id.to_string());
                r.area = inkingi_domain::areas::AreaCode::parse(&e.village).ok();
                r.fields = vec![format!("programme={code}"), "status".into()];
                r.purpose = Some(purpose.to_string());
                r
            })
            .collect();
        state.audit.append(records).await?;
    }
    Ok(list)
}

/// An enrolment with its transitions.
#[derive(Debug, Serialize)]
pub struct EnrolmentView {
    #[serde(flatten)]
    pub enrolment: Enrolment,
    pub events: Vec<EnrolmentEvent>,
}

async fn enrolment_or_404(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> ApiResult<Enrolment> {
    state
        .store
        .programmes()
        .enrolment(&principal.scope, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no enrolment {id} in your area scope")))
}

/// One enrolment and its history (who moved it, when, why).
#[utoipa::path(get, path = "/api/v1/enrolments/{id}", tag = "programmes", operation_id = "enrolments_get",
    params(("id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The enrolment; ETag is its version", body = Object),
        (status = 404, description = "No such enrolment in your area scope")))]
pub async fn get_enrolment(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    principal.require(Permission::ManageProgrammes)?;
    let purpose = principal.purpose_or(
        Purpose::ProgrammeAdministration,
        &state.auth.settings.purposes,
    )?;
    let e = enrolment_or_404(&state, &principal, id).await?;
    let events = state.store.programmes().events(id).await?;
    record_read(
        &state,
        &principal,
        purpose,
        ("enrolment", &id.to_string()),
        inkingi_domain::areas::AreaCode::parse(&e.village).ok(),
        &["status", "history"],
    )
    .await?;
    let version = e.version;
    Ok((
        [etag(version)],
        Json(EnrolmentView {
            enrolment: e,
            events,
        }),
    )
        .into_response())
}

/// A lifecycle move.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// `enrolled`, `suspended`, `graduated` or `exited`.
    pub to: String,
    /// Required to suspend, graduate or exit.
    pub reason: Option<String>,
}

/// Move an enrolment: enrolled ⇄ suspended, → graduated / exited (reason required), waiting →
/// enrolled (if there is room). A freed place goes to the first of the waiting list. Send
/// `If-Match` with the ETag read to guard against a concurrent change.
#[utoipa::path(post, path = "/api/v1/enrolments/{id}/transition", tag = "programmes", operation_id = "enrolments_transition",
    params(("id" = Uuid, Path)),
    request_body = TransitionRequest,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Moved; `promoted` is the enrolment that took the freed place", body = Object),
        (status = 404, description = "No such enrolment in your area scope"),
        (status = 409, description = "The programme is full"),
        (status = 412, description = "Changed since it was read"),
        (status = 422, description = "Move not allowed, or reason missing", body = crate::error::ProblemBody)))]
pub async fn transition(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::ManageProgrammes)?;
    // Outside the caller's scope the enrolment does not exist, whatever the body says.
    enrolment_or_404(&state, &principal, id).await?;
    let body: TransitionRequest = parse_body(&body)?;
    let to = EnrolmentStatus::parse(&body.to).ok_or_else(|| {
        ApiError::validation(vec![FieldError {
            field: "to".into(),
            reason: format!("'{}' is not an enrolment status", body.to),
        }])
    })?;
    let expected = if headers.contains_key(axum::http::header::IF_MATCH) {
        Some(crate::registry::if_match(&headers)?)
    } else {
        None
    };
    let mut uow = state.store.begin().await?;
    let (e, promoted) = state
        .store
        .programmes()
        .transition(
            &mut uow,
            &principal.scope,
            id,
            expected,
            to,
            body.reason,
            principal.username.as_str(),
        )
        .await?;
    let area = inkingi_domain::areas::AreaCode::parse(&e.village).ok();
    audit_change(
        &state,
        &mut uow,
        &principal,
        "enrolment.transition",
        ("household", e.household_id),
        area,
        vec![format!("programme={}", e.programme), format!("status={to}")],
    )
    .await?;
    uow.commit().await?;
    let version = e.version;
    let body = serde_json::json!({"enrolment": e, "promoted": promoted});
    Ok(([etag(version)], Json(body)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BeneficiaryParams {
    /// A person's id: their own enrolments and their household's.
    person: Option<Uuid>,
    /// A household's id: its enrolments and its members'.
    household: Option<Uuid>,
}

/// One programme a subject is (or was) in.
#[derive(Debug, Serialize, ToSchema)]
pub struct BeneficiaryEntry {
    pub enrolment_id: Uuid,
    pub programme: String,
    pub programme_name: String,
    pub agency: String,
    #[schema(value_type = String)]
    pub status: EnrolmentStatus,
    /// The member enrolled, for individual programmes.
    pub person_id: Option<Uuid>,
    /// When first enrolled.
    pub since: Option<DateTime<Utc>>,
    pub amount: i64,
    pub frequency: String,
}

/// Two programmes a household should not be in together.
#[derive(Debug, Serialize, ToSchema)]
pub struct Overlap {
    pub programmes: Vec<String>,
    pub note: String,
}

/// Where a person or household is enrolled, across programmes and agencies.
#[derive(Debug, Serialize, ToSchema)]
pub struct BeneficiaryView {
    pub household_id: Uuid,
    pub person_id: Option<Uuid>,
    /// True when enrolled (or suspended) in at least one programme.
    pub enrolled_anywhere: bool,
    /// Open enrolments first, then closed ones.
    #[schema(value_type = Vec<Object>)]
    pub enrolments: Vec<BeneficiaryEntry>,
    /// Overlap rules the household breaks.
    pub overlaps: Vec<Overlap>,
}

/// Is this person or household enrolled anywhere, in what, since when — with the overlap rules
/// (e.g. Direct Support and Public Works in one household) it breaks.
#[utoipa::path(get, path = "/api/v1/beneficiaries", tag = "programmes", operation_id = "beneficiaries_lookup",
    params(BeneficiaryParams,
        ("X-Purpose-Of-Use" = String, Header, description = "Why personal data is read")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Enrolments across programmes", body = BeneficiaryView),
        (status = 400, description = "Neither or both of person and household"),
        (status = 404, description = "Not in your area scope")))]
pub async fn beneficiaries(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<BeneficiaryParams>,
) -> ApiResult<Json<BeneficiaryView>> {
    let purpose = reader(&state, &principal)?;
    let (household, person) = match (params.household, params.person) {
        (Some(h), None) => (h, None),
        (None, Some(p)) => {
            let Some(rec) = state.store.registry().person(&principal.scope, p).await? else {
                return Err(not_visible(&state, &principal, "person", p).await);
            };
            let h = rec.person.household_id.ok_or_else(|| {
                ApiError::not_found(format!("person {p} belongs to no household"))
            })?;
            (h, Some(p))
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of the query parameters 'person' and 'household'",
            ))
        }
    };
    let Some(h) = state
        .store
        .registry()
        .household(&principal.scope, household)
        .await?
    else {
        return Err(not_visible(&state, &principal, "household", household).await);
    };
    let all = state
        .store
        .programmes()
        .enrolments(
            &principal.scope,
            &EnrolmentQuery {
                household: Some(household),
                limit: 1000,
                ..Default::default()
            },
        )
        .await?;
    // For a person: the household's programmes and their own, not their relatives'.
    let mine: Vec<Enrolment> = all
        .into_iter()
        .filter(|e| person.is_none() || e.person_id.is_none() || e.person_id == person)
        .collect();
    let programmes = state.store.programmes().programmes(None).await?;
    let find = |code: &str| programmes.iter().find(|p| p.programme.code == code);
    let mut entries: Vec<BeneficiaryEntry> = mine
        .iter()
        .map(|e| {
            let p = find(&e.programme);
            BeneficiaryEntry {
                enrolment_id: e.id,
                programme: e.programme.clone(),
                programme_name: p.map(|p| p.programme.name.clone()).unwrap_or_default(),
                agency: p.map(|p| p.programme.agency.clone()).unwrap_or_default(),
                status: e.status,
                person_id: e.person_id,
                since: e.enrolled_since,
                amount: e.amount,
                frequency: p
                    .map(|p| p.programme.frequency.to_string())
                    .unwrap_or_default(),
            }
        })
        .collect();
    entries.sort_by_key(|e| (e.status.is_closed(), e.since));
    let open: Vec<&str> = entries
        .iter()
        .filter(|e| e.status.holds_place())
        .map(|e| e.programme.as_str())
        .collect();
    let overlaps = overlaps(&open, &programmes);
    record_read(
        &state,
        &principal,
        purpose,
        ("household", &household.to_string()),
        Some(h.village.clone()),
        &["enrolments"],
    )
    .await?;
    Ok(Json(BeneficiaryView {
        household_id: household,
        person_id: person,
        enrolled_anywhere: !open.is_empty(),
        enrolments: entries,
        overlaps,
    }))
}

/// Pairs of open programmes that one of them declares as overlapping, each pair once.
fn overlaps(open: &[&str], programmes: &[StoredProgramme]) -> Vec<Overlap> {
    let mut out: Vec<Overlap> = Vec::new();
    for p in programmes
        .iter()
        .filter(|p| open.contains(&p.programme.code.as_str()))
    {
        for other in p
            .programme
            .overlaps_with
            .iter()
            .filter(|o| open.contains(&o.as_str()))
        {
            let mut pair = [p.programme.code.clone(), other.clone()];
            pair.sort();
            if out.iter().all(|o| o.programmes != pair) {
                out.push(Overlap {
                    note: format!(
                        "{} and {} should not serve the same household",
                        pair[0], pair[1]
                    ),
                    programmes: pair.to_vec(),
                });
            }
        }
    }
    out
}
