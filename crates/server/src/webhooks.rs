//! `/api/v1/webhooks`: partners subscribe an HTTPS endpoint to registry events in their area
//! scope and receive each event as JSON signed with HMAC-SHA256 (see
//! `inkingi_interop::dci::webhook`). Deliveries share the DCI notifications' outbox, order per
//! household, retries, circuit breaker and dead letters (`inkingi jobs retry` replays them).
//! A webhook belongs to the user who made it: others neither see nor delete it.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use inkingi_domain::areas::AreaCode;
use inkingi_domain::identity::Permission;
use inkingi_interop::dci::notify::EventType;
use inkingi_store::dci_notify::{Subscription, WebhookSecret, KIND_WEBHOOK};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::registry::input::parse_body;
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    paths(create, list, delete),
    components(schemas(NewWebhook, Webhook, CreatedWebhook))
)]
struct WebhooksApi;

pub fn api() -> utoipa::openapi::OpenApi {
    WebhooksApi::openapi()
}

/// Most webhooks one user may keep: each costs a notification per matching event.
const MAX_PER_USER: i64 = 20;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where events are POSTed: `https://…` (or `http://` on loopback, for trials).
    url: String,
    /// Event types: household_registered, household_updated, member_added, member_removed,
    /// live_birth, death.
    event_types: Vec<String>,
    /// Area codes within the caller's scope; empty or absent for the whole scope.
    #[serde(default)]
    areas: Vec<String>,
    /// `Group` (the household with its members, the default) or `Member` (the person).
    #[serde(default)]
    record_type: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    id: String,
    url: String,
    event_types: Vec<String>,
    areas: Vec<String>,
    record_type: String,
    /// `active` or `deleted`.
    status: String,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    webhook: Webhook,
    /// The HMAC-SHA256 key of `X-Inkingi-Signature`; shown only now.
    secret: String,
}

impl From<&Subscription> for Webhook {
    fn from(s: &Subscription) -> Self {
        Webhook {
            id: s.code.clone(),
            url: s.notify_url.clone(),
            event_types: s.event_types.clone(),
            areas: s.areas.clone(),
            record_type: s.record_type.clone(),
            status: if s.status == "subscribe" {
                "active"
            } else {
                "deleted"
            }
            .into(),
            created_at: s.created_at,
        }
    }
}

/// A 422 naming the body field at fault, as the registry's bodies answer.
fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
    ApiError::validation(vec![FieldError {
        field: field.into(),
        reason: reason.into(),
    }])
}

fn check_url(url: &str) -> ApiResult<()> {
    let bad = |why: &str| invalid("url", why);
    let rest = match url.split_once("://") {
        Some(("https", rest)) => rest,
        Some(("http", rest)) => {
            let host = rest.split(['/', ':']).next().unwrap_or_default();
            if !matches!(host, "127.0.0.1" | "localhost") {
                return Err(bad("must be https:// (plain http only on loopback)"));
            }
            rest
        }
        _ => return Err(bad("must be an absolute https:// URL")),
    };
    if rest.is_empty() || url.len() > 2000 || url.chars().any(char::is_whitespace) {
        return Err(bad("needs a host, at most 2000 characters, no spaces"));
    }
    Ok(())
}

/// The checked request as a subscription of `principal`.
fn subscription(
    principal: &Principal,
    req: NewWebhook,
    purpose: String,
) -> ApiResult<Subscription> {
    check_url(&req.url)?;
    if req.event_types.is_empty() {
        return Err(invalid("event_types", "name at least one event type"));
    }
    for (i, t) in req.event_types.iter().enumerate() {
        if EventType::parse(t).is_none() {
            return Err(invalid(
                format!("event_types[{i}]"),
                format!("unknown event type '{t}'"),
            ));
        }
    }
    for (i, a) in req.areas.iter().enumerate() {
        let field = format!("areas[{i}]");
        let code = AreaCode::parse(a).map_err(|e| invalid(field.clone(), e.to_string()))?;
        if !principal.scope.contains(&code) {
            return Err(invalid(
                field,
                format!("area {a} is outside your area scope"),
            ));
        }
    }
    let record_type = match req.record_type.as_deref() {
        None | Some("Group") => "Group",
        Some("Member") => "Member",
        Some(other) => {
            return Err(invalid(
                "record_type",
                format!("'{other}' is neither Group nor Member"),
            ))
        }
    };
    let now = Utc::now();
    let code = Uuid::now_v7().to_string();
    Ok(Subscription {
        client: principal.username.to_string(),
        sender_id: principal.username.to_string(),
        notify_url: req.url,
        event_types: req.event_types,
        areas: req.areas,
        record_type: record_type.into(),
        purpose,
        status: "subscribe".into(),
        transaction_id: code.clone(),
        reference_id: code.clone(),
        criteria: json!({}),
        created_at: now,
        updated_at: now,
        kind: KIND_WEBHOOK.into(),
        secret: Some(WebhookSecret(new_secret())),
        code,
    })
}

/// `whsec_` and 43 random letters and digits (about 256 bits).
fn new_secret() -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..43)
        .map(|_| char::from(ALNUM[rng.random_range(0..ALNUM.len())]))
        .collect();
    format!("whsec_{tail}")
}

async fn own_webhooks(state: &AppState, principal: &Principal) -> ApiResult<Vec<Subscription>> {
    Ok(state
        .store
        .dci_notify()
        .active_of_kind(principal.username.as_str(), KIND_WEBHOOK)
        .await?)
}

/// Subscribe a webhook; the answer holds its secret, shown this once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "create_webhook",
    request_body = NewWebhook,
    responses(
        (status = 201, description = "Created, with the secret", body = CreatedWebhook),
        (status = 422, description = "Fields that are wrong, each named", body = Object),
        (status = 409, description = "Too many active webhooks", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    principal.require(Permission::ReadPersonalData)?;
    let purpose = principal.purpose(&state.auth.settings.purposes)?;
    let req: NewWebhook = parse_body(&body)?;
    let sub = subscription(&principal, req, purpose.to_string())?;
    let mut uow = state.store.begin().await?;
    let notify = state.store.dci_notify();
    let active = notify
        .count_active_locked(&mut uow, principal.username.as_str(), KIND_WEBHOOK)
        .await?;
    if active >= MAX_PER_USER {
        return Err(ApiError::conflict(format!(
            "you already have {active} active webhooks (at most {MAX_PER_USER}); delete one first"
        )));
    }
    notify.create_subscription(&mut uow, &sub).await?;
    uow.commit().await?;
    let mut record = principal.audit_record("webhook.create", "webhook");
    record.subject_id = Some(sub.code.clone());
    record.purpose = Some(purpose.to_string());
    state.audit.append(vec![record]).await?;
    let secret = sub.secret.as_ref().map(|k| k.0.clone()).unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: Webhook::from(&sub),
            secret,
        }),
    ))
}

/// The caller's active webhooks (without their secrets); deleted ones are not listed.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", operation_id = "list_webhooks",
    responses((status = 200, description = "The caller's webhooks", body = [Webhook])),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Vec<Webhook>>> {
    principal.require(Permission::ReadPersonalData)?;
    let subs = own_webhooks(&state, &principal).await?;
    Ok(Json(subs.iter().map(Webhook::from).collect()))
}

/// Stop a webhook: nothing more is queued for it, and queued deliveries are dropped.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", operation_id = "delete_webhook",
    params(("id" = String, Path, description = "The webhook's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No webhook of yours has this id", body = Object),
    ),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    principal.require(Permission::ReadPersonalData)?;
    let mine = own_webhooks(&state, &principal)
        .await?
        .into_iter()
        .any(|s| s.code == id);
    if !mine {
        return Err(ApiError::not_found(
            "no active webhook of yours has this id",
        ));
    }
    let mut uow = state.store.begin().await?;
    state
        .store
        .dci_notify()
        .set_subscription_status(
            &mut uow,
            principal.username.as_str(),
            &id,
            "unsubscribe",
            Utc::now(),
        )
        .await?;
    uow.commit().await?;
    let mut record = principal.audit_record("webhook.delete", "webhook");
    record.subject_id = Some(id);
    state.audit.append(vec![record]).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_except_on_loopback() {
        assert!(check_url("https://partner.example/hooks/inkingi").is_ok());
        assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(check_url("http://partner.example/hook").is_err());
        assert!(check_url("ftp://partner.example").is_err());
        assert!(check_url("https://").is_err());
        assert!(check_url("partner.example").is_err());
    }

    #[test]
    fn secrets_are_long_and_distinct() {
        let (a, b) = (new_secret(), new_secret());
        assert_eq!(a.len(), 49);
        assert_ne!(a, b);
    }
}
