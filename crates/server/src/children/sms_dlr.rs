//! Delivery reports from the SMS gateways, updating the status of the message they are about.
//!
//! - Kannel calls the `dlr-url` given with each message: `GET /sms/dlr/kannel?id=MESSAGE&
//!   token=SECRET&type=%d`. The per-message token (only Inkingi and the gateway know it)
//!   authenticates the report.
//! - Africa's Talking POSTs a form to the callback URL set in its dashboard
//!   (`/sms/dlr/africastalking`): `id` (its messageId, which only it and Inkingi know),
//!   `status`, `phoneNumber`, `networkCode`, `failureReason`.
//!
//! Malformed reports are refused with 400 naming the field; reports of no known message with
//! 404. Neither route needs a sign-in: gateways cannot hold one.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use inkingi_interop::sms::gateways::{at_dlr, kannel_dlr};
use inkingi_store::sms::{DlrTarget, SmsMessage};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{parse_query, Query};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
pub struct KannelReport {
    /// Inkingi's message id.
    pub id: String,
    /// The message's delivery-report secret.
    pub token: String,
    /// Kannel's report type: 1 delivered, 2 not delivered, 4 queued on the SMSC, 8 delivered
    /// to the SMSC, 16 not delivered to the SMSC.
    #[serde(rename = "type")]
    pub kind: String,
}

/// A message's status after a report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportAnswer {
    pub id: Uuid,
    /// `sent`, `delivered` or `undelivered`.
    pub status: String,
}

fn answer(m: SmsMessage) -> Json<ReportAnswer> {
    Json(ReportAnswer {
        id: m.id,
        status: m.status.as_str().to_string(),
    })
}

/// A delivery report from Kannel (the `dlr-url` of a message).
#[utoipa::path(get, path = "/sms/dlr/kannel", tag = "children", operation_id = "sms_dlr_kannel",
    params(KannelReport),
    responses((status = 200, description = "Report applied", body = ReportAnswer),
        (status = 400, description = "A parameter is missing or malformed (named)"),
        (status = 404, description = "No message with this id and token")))]
pub async fn kannel(
    State(state): State<AppState>,
    Query(q): Query<KannelReport>,
) -> ApiResult<Json<ReportAnswer>> {
    let id = Uuid::parse_str(q.id.trim()).map_err(|e| {
        ApiError::invalid_field("id", format!("'{}' is not a message id: {e}", q.id))
    })?;
    let outcome = kannel_dlr(&q.kind).map_err(|e| ApiError::invalid_field("type", e))?;
    let target = DlrTarget::Ours {
        id,
        token: &q.token,
    };
    let detail = format!("kannel report type {}", q.kind.trim());
    state
        .store
        .sms()
        .report(target, outcome, &detail)
        .await?
        .map(answer)
        .ok_or_else(|| ApiError::not_found(format!("no SMS message {id} with this token")))
}

/// The form Africa's Talking posts.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AtReport {
    pub id: String,
    pub status: String,
    #[serde(default, rename = "phoneNumber")]
    pub phone_number: Option<String>,
    #[serde(default, rename = "networkCode")]
    pub network_code: Option<String>,
    #[serde(default, rename = "failureReason")]
    pub failure_reason: Option<String>,
    #[serde(default, rename = "retryCount")]
    pub retry_count: Option<String>,
}

/// A delivery report from Africa's Talking (its dashboard's delivery-report callback).
#[utoipa::path(post, path = "/sms/dlr/africastalking", tag = "children", operation_id = "sms_dlr_africastalking",
    request_body(content = AtReport, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Report applied", body = ReportAnswer),
        (status = 400, description = "A field is missing or malformed (named)"),
        (status = 404, description = "No message with this id")))]
pub async fn africastalking(
    State(state): State<AppState>,
    body: Bytes,
) -> ApiResult<Json<ReportAnswer>> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the report is not UTF-8 form data"))?;
    let r: AtReport = parse_query(text)?;
    if r.id.trim().is_empty() {
        return Err(ApiError::invalid_field("id", "empty message id"));
    }
    let outcome = at_dlr(&r.status).map_err(|e| ApiError::invalid_field("status", e))?;
    let mut detail = format!("africastalking {}", r.status.trim());
    if let Some(f) = r.failure_reason.as_deref().filter(|f| !f.is_empty()) {
        detail.push_str(&format!(" ({f})"));
    }
    let target = DlrTarget::Provider {
        provider: "africastalking",
        id: r.id.trim(),
    };
    state
        .store
        .sms()
        .report(target, outcome, &detail)
        .await?
        .map(answer)
        .ok_or_else(|| ApiError::not_found(format!("no SMS message with id '{}'", r.id.trim())))
}
