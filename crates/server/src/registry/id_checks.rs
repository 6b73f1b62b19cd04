//! Verifications of people against the national ID registry (run by the worker's `id.verify`
//! jobs): a person's checks, and the people of an area whose current check found a mismatch or
//! no record — the worklist of officers who correct the registry or send people to NIDA.

use axum::extract::{Path, State};
use axum::Json;
use inkingi_store::id_checks::{CheckStatus, IdCheck};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{not_visible, reader};
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
