//! `/api/v1/forms`: the questionnaire's versions. Anyone signed in may read a form (it holds no
//! personal data); publishing a new version needs `manage_forms`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use inkingi_domain::identity::Permission;
use inkingi_domain::registry::form::FormSchema;
use inkingi_store::registry::FormRecord;

use super::etag;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::AppState;

fn form_response(status: StatusCode, f: FormRecord) -> Response {
    (status, [etag(i64::from(f.schema.version))], Json(f.schema)).into_response()
}

/// The latest version of a form.
#[utoipa::path(get, path = "/api/v1/forms/{form_id}", tag = "registry",
    params(("form_id" = String, Path, description = "e.g. rw-socioeconomic")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The schema; ETag is its version", body = Object),
        (status = 404, description = "No such form")))]
pub async fn latest(
    State(state): State<AppState>,
    _principal: Principal,
    Path(form_id): Path<String>,
) -> ApiResult<Response> {
    let f = state.store.registry().latest_form(&form_id).await?;
    f.map(|f| form_response(StatusCode::OK, f))
        .ok_or_else(|| ApiError::not_found(format!("no form {form_id}")))
}

/// One version of a form (answers record the version they were given against).
#[utoipa::path(get, path = "/api/v1/forms/{form_id}/versions/{version}", tag = "registry",
    params(("form_id" = String, Path), ("version" = u32, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The schema", body = Object),
        (status = 404, description = "No such form version")))]
pub async fn by_version(
    State(state): State<AppState>,
    _principal: Principal,
    Path((form_id, version)): Path<(String, u32)>,
) -> ApiResult<Response> {
    let f = state.store.registry().form(&form_id, version).await?;
    f.map(|f| form_response(StatusCode::OK, f))
        .ok_or_else(|| ApiError::not_found(format!("no version {version} of form {form_id}")))
}

/// Publish a new version of a form: the body is the whole schema with `version` one above
/// the latest.
#[utoipa::path(post, path = "/api/v1/forms", tag = "registry", request_body = Object,
    security(("bearer" = []), ("session" = [])),
    responses((status = 201, description = "Published", body = Object),
        (status = 403, description = "The role may not manage forms"),
        (status = 409, description = "The version is not the next one"),
        (status = 422, description = "The schema is invalid", body = crate::error::ProblemBody)))]
pub async fn publish(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> ApiResult<Response> {
    principal.require(Permission::ManageForms)?;
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    let schema = FormSchema::from_json(text).map_err(|e| {
        ApiError::validation(vec![FieldError {
            field: "schema".into(),
            reason: e.to_string(),
        }])
    })?;
    let rec = state
        .store
        .registry()
        .publish_form(&schema, principal.username.as_str())
        .await?;
    let mut audit = principal.audit_record("form.publish", "form");
    audit.subject_id = Some(format!("{}/{}", rec.schema.id, rec.schema.version));
    state.audit.append(vec![audit]).await?;
    Ok(form_response(StatusCode::CREATED, rec))
}
