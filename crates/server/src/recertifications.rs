//! Re-certification decisions: `GET /api/v1/programmes/{code}/recertifications` (the review
//! queue) and `POST /api/v1/recertifications/{id}/decision` (keep enrolled, or exit with a
//! reason). Decisions are opened by the `programmes.recertify` job when a beneficiary's data
//! changed and the programme's rule no longer holds; nobody is exited without a person deciding.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::{Permission, Purpose};
use inkingi_store::recertification::{Decided, RecertDecision, RecertStatus, Recertification};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::extract::{page_limit, Query};
use crate::registry::{audit_change, input::parse_body};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(list, decide),
    components(schemas(DecisionRequest)),
    tags((name = "programmes", description = "Agencies, programmes, enrolment and the consolidated beneficiary registry"))
)]
struct RecertApi;

pub fn api() -> utoipa::openapi::OpenApi {
    RecertApi::openapi()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `open` (default), `kept` or `exited`.
    status: Option<String>,
    /// 1 to 1000, default 100.
    limit: Option<u32>,
}

/// Re-certification decisions of a programme within the caller's area scope, oldest first.
#[utoipa::path(get, path = "/api/v1/programmes/{code}/recertifications", tag = "programmes", operation_id = "recertifications_list",
    params(("code" = String, Path), ListParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Decisions with the rule's finding", body = Vec<Object>),
        (status = 404, description = "No such programme")))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Vec<Recertification>>> {
    principal.require(Permission::ManageProgrammes)?;
    let purpose = principal.purpose_or(
        Purpose::ProgrammeAdministration,
        &state.auth.settings.purposes,
    )?;
    if state.store.programmes().programme(&code).await?.is_none() {
        return Err(ApiError::not_found(format!("no programme {code}")));
    }
    let status = match params.status.as_deref().filter(|s| !s.is_empty()) {
        None => RecertStatus::Open,
        Some(s) => RecertStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                "status",
                format!("query parameter 'status': '{s}' is not one of open, kept, exited"),
            )
        })?,
    };
    let limit = page_limit(params.limit, 100, 1000)?;
    let rows = state
        .store
        .recertifications()
        .list(&principal.scope, Some(&code), Some(status), limit)
        .await?;
    if state.auth.settings.audit_reads && !rows.is_empty() {
        let records = rows
            .iter()
            .map(|r| {
                let mut a = principal.audit_record("recertification.read", "household");
                a.subject_id = Some(r.household_id.to_string());
                a.area = AreaCode::parse(&r.village).ok();
                a.fields = vec![format!("programme={code}"), "finding".into()];
                a.purpose = Some(purpose.to_string());
                a
            })
            .collect();
        state.audit.append(records).await?;
    }
    Ok(Json(rows))
}

/// A reviewer's decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// `keep` (stays enrolled) or `exit` (leaves the programme; a reason is required).
    pub decision: String,
    pub reason: Option<String>,
}

/// Decide an open re-certification: keep the beneficiary enrolled, or exit them with a reason
/// (the freed place goes to the first of the waiting list). Deciding twice is 409.
#[utoipa::path(post, path = "/api/v1/recertifications/{id}/decision", tag = "programmes", operation_id = "recertifications_decide",
    params(("id" = Uuid, Path)),
    request_body = DecisionRequest,
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Decided; for an exit, the enrolment and any promoted", body = Object),
        (status = 404, description = "No such decision in your area scope"),
        (status = 409, description = "Decided already"),
        (status = 422, description = "Unknown decision, or an exit without a reason", body = crate::error::ProblemBody)))]
pub async fn decide(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> ApiResult<Json<Decided>> {
    principal.require(Permission::ManageProgrammes)?;
    // Outside the caller's scope the decision does not exist, whatever the body says.
    if state
        .store
        .recertifications()
        .get(&principal.scope, id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "no re-certification {id} in your area scope"
        )));
    }
    let req: DecisionRequest = parse_body(&body)?;
    let decision = match req.decision.as_str() {
        "keep" => RecertDecision::Keep,
        "exit" => RecertDecision::Exit,
        other => {
            return Err(ApiError::validation(vec![FieldError {
                field: "decision".into(),
                reason: format!("'{other}' is not one of keep, exit"),
            }]))
        }
    };
    let reason = req.reason.filter(|r| !r.trim().is_empty());
    if decision == RecertDecision::Exit && reason.is_none() {
        return Err(ApiError::validation(vec![FieldError {
            field: "reason".into(),
            reason: "a reason is required to exit a beneficiary".into(),
        }]));
    }
    let mut uow = state.store.begin().await?;
    let done = state
        .store
        .recertifications()
        .decide(
            &mut uow,
            &principal.scope,
            id,
            decision,
            reason,
            principal.username.as_str(),
        )
        .await?;
    let r = &done.recertification;
    audit_change(
        &state,
        &mut uow,
        &principal,
        "recertification.decide",
        ("household", r.household_id),
        AreaCode::parse(&r.village).ok(),
        vec![
            format!("programme={}", r.programme),
            format!("decision={}", r.status.as_str()),
        ],
    )
    .await?;
    uow.commit().await?;
    Ok(Json(done))
}
