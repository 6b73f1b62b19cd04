//! `/api/v1/imports`: bulk import through the API. A multipart upload of `households.csv` and
//! `members.csv` is stored with a `registry.import` job in one transaction and answered at once
//! (202); the job (on any worker node) imports it exactly as `inkingi import` does, and
//! `GET /api/v1/imports/{id}` shows its progress, summary and the per-row error report.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use inkingi_domain::identity::Permission;
use inkingi_interop::registry_io::upload_job::ImportUploadJob;
use inkingi_store::jobs::NewJob;
use inkingi_store::uploads::{NewUpload, UploadStatus};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Largest upload accepted: about 250,000 households with their members. Larger loads belong
/// to `inkingi import` on the server, which streams files of any size.
pub const MAX_UPLOAD_BYTES: usize = 256 * 1024 * 1024;

/// An upload and the state of its import.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    pub id: Uuid,
    pub source: String,
    /// queued, running, done or failed.
    pub status: String,
    /// bytes, households_written, people_written, households_rejected.
    #[schema(value_type = Object)]
    pub progress: Option<serde_json::Value>,
    /// The importer's one-line summary, when done (or why it failed).
    pub summary: Option<String>,
    /// Where the per-row error report is, when there is one.
    pub errors_href: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn view(s: UploadStatus) -> ImportView {
    ImportView {
        errors_href: s
            .has_errors
            .then(|| format!("/api/v1/imports/{}/errors", s.id)),
        id: s.id,
        source: s.source,
        status: s.status,
        progress: s.progress,
        summary: s.summary,
        created_by: s.created_by,
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

/// Imports write anywhere in the country: only a national scope may start one.
fn may_import(principal: &Principal) -> ApiResult<()> {
    principal.require(Permission::WritePersonalData)?;
    if principal.scope.is_national() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "bulk imports need a national area scope; officers register households one by one",
        ))
    }
}

async fn read_parts(mut form: Multipart) -> ApiResult<(String, Vec<u8>, Vec<u8>)> {
    let (mut source, mut households, mut members) = (None, None, None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("multipart body: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::invalid_field(name.clone(), format!("part '{name}': {e}")))?;
        match name.as_str() {
            "source" => source = Some(String::from_utf8_lossy(&bytes).trim().to_string()),
            "households" => households = Some(bytes.to_vec()),
            "members" => members = Some(bytes.to_vec()),
            other => {
                return Err(ApiError::invalid_field(
                    other.to_string(),
                    format!(
                        "unknown part '{other}': send households, members and optionally source"
                    ),
                ))
            }
        }
    }
    let need = |v: Option<Vec<u8>>, part: &str| {
        v.ok_or_else(|| {
            ApiError::invalid_field(
                part.to_string(),
                format!("part '{part}' (a CSV file) is missing"),
            )
        })
    };
    Ok((
        source
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "api".into()),
        need(households, "households")?,
        need(members, "members")?,
    ))
}

/// Upload households.csv and members.csv (multipart/form-data) to import them in the background.
#[utoipa::path(post, path = "/api/v1/imports", tag = "registry", operation_id = "start_import",
    request_body(content_type = "multipart/form-data", description = "Parts: households (file), members (file), source (text, optional)"),
    security(("bearer" = []), ("session" = [])),
    responses((status = 202, description = "Accepted; poll the returned import", body = ImportView),
        (status = 403, description = "Needs a national scope"),
        (status = 413, description = "Larger than 256 MiB: use `inkingi import`")))]
pub async fn start(
    State(state): State<AppState>,
    principal: Principal,
    request: Request,
) -> ApiResult<(StatusCode, Json<ImportView>)> {
    // Who may import is decided before the body is read.
    may_import(&principal)?;
    let form = Multipart::from_request(request, &state)
        .await
        .map_err(|e| ApiError::bad_request(format!("expected a multipart/form-data body: {e}")))?;
    let (source, households, members) = read_parts(form).await?;
    let id = Uuid::now_v7();
    let actor = principal.username.as_str().to_string();
    let job = ImportUploadJob {
        upload_id: id,
        actor: actor.clone(),
    };
    let mut uow = state.store.begin().await?;
    state
        .store
        .uploads()
        .insert_upload(
            &mut uow,
            &NewUpload {
                id,
                source,
                households,
                members,
                created_by: actor,
            },
        )
        .await?;
    let new = NewJob::of(&job).map_err(ApiError::internal)?;
    state.store.jobs().enqueue(&mut uow, new).await?;
    super::audit_change(
        &state,
        &mut uow,
        &principal,
        "registry.import",
        ("import", id),
        None,
        Vec::new(),
    )
    .await?;
    uow.commit().await?;
    let status = status_of(&state, id).await?;
    Ok((StatusCode::ACCEPTED, Json(view(status))))
}

async fn status_of(state: &AppState, id: Uuid) -> ApiResult<UploadStatus> {
    state
        .store
        .uploads()
        .upload_status(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no import {id}")))
}

/// The state of an import: queued, running (with progress), done or failed.
#[utoipa::path(get, path = "/api/v1/imports/{id}", tag = "registry", operation_id = "get_import",
    params(("id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The import", body = ImportView),
        (status = 404, description = "No such import")))]
pub async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<ImportView>> {
    may_import(&principal)?;
    Ok(Json(view(status_of(&state, id).await?)))
}

/// The per-row error report of an import (CSV: file, row, column, value, reason).
#[utoipa::path(get, path = "/api/v1/imports/{id}/errors", tag = "registry", operation_id = "get_import_errors",
    params(("id" = Uuid, Path)),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The error report", content_type = "text/csv"),
        (status = 404, description = "No such import, or no report yet")))]
pub async fn errors(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    may_import(&principal)?;
    // The report quotes rejected rows: personal data, so reading it is audited.
    let Some(report) = state.store.uploads().upload_errors(id).await? else {
        return Err(ApiError::not_found(format!(
            "import {id} has no error report"
        )));
    };
    let purpose = principal.purpose(&state.auth.settings.purposes)?;
    crate::audit::record_read(
        &state,
        &principal,
        purpose,
        ("import", &id.to_string()),
        None,
        &["errors"],
    )
    .await?;
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        Body::from(report),
    )
        .into_response())
}
