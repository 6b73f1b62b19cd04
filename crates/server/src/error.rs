//! The one API error type. Internals are logged; callers get an RFC 9457
//! `application/problem+json` body with a safe message and the request id.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use inkingi_store::StoreError;
use serde::Serialize;

use crate::request_id;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// Short, stable slug that becomes the problem `type` (`urn:inkingi:problem:<slug>`).
    pub kind: &'static str,
    pub detail: String,
    /// The query/body field at fault, when there is one.
    pub field: Option<String>,
    /// Every field error of a rejected body (422), each with its path, e.g.
    /// `members[2].national_id`.
    pub errors: Vec<FieldError>,
}

/// One rejected field of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Path of the field in the body, e.g. `members[2].national_id` or `answers.rooms`.
    pub field: String,
    pub reason: String,
}

/// An RFC 9457 problem document (`application/problem+json`): the body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemBody<'a> {
    /// `urn:inkingi:problem:<slug>`, e.g. `urn:inkingi:problem:invalid-parameter`.
    #[serde(rename = "type")]
    kind: String,
    /// The HTTP status's reason phrase.
    title: &'a str,
    status: u16,
    /// What went wrong, for people.
    detail: &'a str,
    /// The query parameter or body field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    /// Every field error, for a rejected body (422).
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
    /// Quote it when reporting a problem; it is also in the `x-request-id` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            detail: detail.into(),
            field: None,
            errors: Vec::new(),
        }
    }

    /// A body with field errors: 422, listing each.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => format!("1 field is invalid: {}", errors[0].field),
            n => format!("{n} fields are invalid"),
        };
        ApiError {
            errors,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", detail)
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// A malformed query parameter or body field, named so the caller can fix it.
    pub fn invalid_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let field = field.into();
        ApiError {
            field: Some(field),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid-parameter", detail)
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// An unexpected failure. The cause is logged with the request id; the caller sees neither.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an unexpected error occurred; quote the request id when reporting it",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.kind, self.detail)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            StoreError::Conflict(what) => ApiError::conflict(what),
            e @ StoreError::Stale { .. } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "stale-version",
                format!("{e}; fetch it again and reapply your change"),
            ),
            StoreError::Invalid(what) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", what)
            }
            StoreError::TooBroad(why) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too-broad", why)
            }
            StoreError::Unavailable(why) => {
                tracing::warn!(error = %why, "database unavailable");
                ApiError::unavailable("the database is unavailable; try again shortly")
            }
            other => ApiError::internal(other),
        }
    }
}

/// Builds a problem response; used by [`ApiError`] and by the fallback that rewrites plain-text
/// errors produced by the framework (unknown route, wrong method, body too large…).
pub fn problem_response(
    status: StatusCode,
    kind: &str,
    detail: &str,
    field: Option<&str>,
) -> Response {
    problem_with_errors(status, kind, detail, field, &[])
}

fn problem_with_errors(
    status: StatusCode,
    kind: &str,
    detail: &str,
    field: Option<&str>,
    errors: &[FieldError],
) -> Response {
    let body = ProblemBody {
        kind: format!("urn:inkingi:problem:{kind}"),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        field,
        errors,
        request_id: request_id::current(),
    };
    let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
    let mut res = (status, json).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        problem_with_errors(
            self.status,
            self.kind,
            &self.detail,
            self.field.as_deref(),
            &self.errors,
        )
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
