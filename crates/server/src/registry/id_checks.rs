//! Verifications of people against the national ID registry (run by the worker's `id.verify`
//! jobs): a person's checks, and the people of an area whose current check found a mismatch or
//! no record — the worklist of officers who correct the registry or send people to NIDA.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use inkingi_domain::identity::Permission;
use inkingi_domain::jobs::IdempotencyKey;
use inkingi_interop::national_id::IdVerifyJob;
use inkingi_store::id_checks::{CheckStatus, IdCheck};
use inkingi_store::jobs::NewJob;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{audit_change, not_visible, reader};
use crate::audit::record_read;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{page_limit, Query};
use crate::AppState;

/// What an audit entry of a read of checks records.
const CHECK_FIELDS: &[&str] = &["national_id", "id_checks"];

/// Checks of one person, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonChecks {
    pub person_id: Uuid,
    #[schema(value_type = Vec<Object>)]
    pub checks: Vec<IdCheck>,
}

/// A person's verifications against the national ID registry, newest first.
#[utoipa::path(get, path = "/api/v1/individuals/{id}/id-checks", tag = "registry", operation_id = "people_id_checks",
    params(("id" = Uuid, Path), ("X-Purpose-Of-Use" = String, Header, description = "Why personal data is read")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The checks", body = PersonChecks),
        (status = 404, description = "No such person in your area scope")))]
pub async fn for_person(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<PersonChecks>> {
    let purpose = reader(&state, &principal)?;
    let Some(p) = state.store.registry().person(&principal.scope, id).await? else {
        return Err(not_visible(&state, &principal, "person", id).await);
    };
    let checks = state
        .store
        .id_checks()
        .for_person(&principal.scope, id)
        .await?;
    record_read(
        &state,
        &principal,
        purpose,
        ("person", &id.to_string()),
        p.person.village.clone(),
        CHECK_FIELDS,
    )
    .await?;
    Ok(Json(PersonChecks {
        person_id: id,
        checks,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorklistParams {
    /// `mismatch` (default), `not_found` or `verified`.
    pub status: Option<String>,
    /// At most this many, 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

/// People whose current check has the status asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct Worklist {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<IdCheck>,
}

/// People in the caller's area whose current verification against the national ID registry
/// found a mismatch (or no record), newest first: what officers correct or refer.
#[utoipa::path(get, path = "/api/v1/id-checks", tag = "registry", operation_id = "id_checks_worklist",
    params(WorklistParams, ("X-Purpose-Of-Use" = String, Header, description = "Why personal data is read")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The worklist", body = Worklist),
        (status = 400, description = "A bad parameter, named in the problem")))]
pub async fn worklist(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<WorklistParams>,
) -> ApiResult<Json<Worklist>> {
    let purpose = reader(&state, &principal)?;
    let status = match params.status.as_deref() {
        None => CheckStatus::Mismatch,
        Some(s) => CheckStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                "status",
                format!("query parameter 'status': '{s}' is not mismatch, not_found or verified"),
            )
        })?,
    };
    let limit = page_limit(params.limit, 100, 1000)?;
    let items = state
        .store
        .id_checks()
        .current_with_status(&principal.scope, status, limit)
        .await?;
    if state.auth.settings.audit_reads && !items.is_empty() {
        let records = items
            .iter()
            .map(|c| {
                let mut r = principal.audit_record("person.read", "person");
                r.subject_id = Some(c.person_id.to_string());
                r.area = c.village.clone();
                r.fields = CHECK_FIELDS.iter().map(|f| f.to_string()).collect();
                r.purpose = Some(purpose.to_string());
                r
            })
            .collect();
        state.audit.record_reads(records).await?;
    }
    Ok(Json(Worklist { items }))
}

/// Runs before the sweep's jobs: an officer is waiting for it.
const VERIFY_NOW_PRIORITY: i16 = 10;

/// A check asked for now.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyQueued {
    pub person_id: Uuid,
    /// The `id.verify` job; the same one while it has not produced a check.
    pub job_id: String,
    /// The job's status now (`queued`, `running`; `dead` when the ID registry refused it:
    /// see `inkingi jobs retry`).
    pub job_status: String,
}

/// Queues an immediate `id.verify` job for a person of the caller's area. While that job has
/// not stored a check, asking again returns it (its idempotency key names the person's latest
/// check). Audited as `person.id_verify_request`.
pub(crate) async fn queue_check(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> ApiResult<VerifyQueued> {
    principal.require(Permission::WritePersonalData)?;
    let Some(p) = state.store.registry().person(&principal.scope, id).await? else {
        return Err(not_visible(state, principal, "person", id).await);
    };
    let Some((subject, latest)) = state.store.id_checks().verify_target(id).await? else {
        return Err(ApiError {
            field: Some("national_id".into()),
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("person {id} has no national ID or has died: nothing to verify"),
            )
        });
    };
    let latest = latest.map_or_else(|| "none".to_string(), |c| c.to_string());
    let key = IdempotencyKey::parse(&format!("id-verify-now:{id}:{latest}"))
        .map_err(ApiError::internal)?;
    let job = NewJob::of(&IdVerifyJob {
        person_id: id,
        subject,
    })?
    .idempotency_key(key)
    .priority(VERIFY_NOW_PRIORITY);
    let mut uow = state.store.begin().await?;
    let job_id = state.store.jobs().enqueue(&mut uow, job).await?;
    audit_change(
        state,
        &mut uow,
        principal,
        "person.id_verify_request",
        ("person", id),
        p.person.village.clone(),
        vec!["national_id".into()],
    )
    .await?;
    uow.commit().await?;
    let job_status = state
        .store
        .jobs()
        .get(job_id)
        .await?
        .map_or_else(|| "queued".to_string(), |j| j.status.as_str().to_string());
    Ok(VerifyQueued {
        person_id: id,
        job_id: job_id.to_string(),
        job_status,
    })
}

/// Verify a person against the national ID registry now, ahead of the sweep.
#[utoipa::path(post, path = "/api/v1/individuals/{id}/id-checks", tag = "registry", operation_id = "people_id_check_now",
    params(("id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 202, description = "Queued (or already queued): the check appears in GET …/id-checks when done", body = VerifyQueued),
        (status = 404, description = "No such person in your area scope"),
        (status = 422, description = "The person has no national ID or has died", body = crate::error::ProblemBody)))]
pub async fn verify_now(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<(StatusCode, Json<VerifyQueued>)> {
    let queued = queue_check(&state, &principal, id).await?;
    Ok((StatusCode::ACCEPTED, Json(queued)))
}
