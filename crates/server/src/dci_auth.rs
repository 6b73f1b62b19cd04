//! The DCI authorisation endpoints: `POST /dci/oauth2/client/token` (OAuth 2.0 client
//! credentials, RFC 6749 §4.4, as the DCI authz spec asks) and `GET /dci/.well-known/jwks.json`
//! (the keys that verify the access tokens and this registry's signed messages).
//!
//! A partner system's client is an API token: `client_id` is its prefix (`ink_XXXXXXXX`),
//! `client_secret` the whole token, sent in the form or as HTTP Basic credentials. The access
//! token it receives acts with exactly that API token's user, role, scopes and area, and ends
//! when the API token is revoked.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::Utc;
use inkingi_domain::audit::AuditRecord;
use inkingi_interop::dci::signing::jwks;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use utoipa::OpenApi;
use uuid::Uuid;

use crate::auth::jwt::{self, Claims};
use crate::auth::secrets::token_prefix;
use crate::auth::{active_token, AuthRejection, XRoad};
use crate::error::ApiError;
use crate::AppState;

#[derive(OpenApi)]
#[openapi(paths(token, jwks_json))]
struct DciAuthApi;

pub fn api() -> utoipa::openapi::OpenApi {
    DciAuthApi::openapi()
}

/// The form of a token request (`application/x-www-form-urlencoded`).
#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

/// An RFC 6749 §5.2 error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut res = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    no_store(res.headers_mut());
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"inkingi\""),
        );
    }
    res
}

/// Token answers must not be cached (RFC 6749 §5.1).
fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// `client_id` and `client_secret` from HTTP Basic credentials, when sent.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let text = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// Issues an access token for an API token's credentials.
#[utoipa::path(post, path = "/dci/oauth2/client/token", tag = "dci",
    request_body(content_type = "application/x-www-form-urlencoded", content = Object,
        description = "grant_type=client_credentials, client_id (the API token's ink_ prefix), client_secret (the whole API token), scope (optional); or the client credentials as HTTP Basic"),
    responses(
        (status = 200, description = "{access_token, token_type: bearer, expires_in}: an EdDSA-signed JWT", body = Object),
        (status = 400, description = "RFC 6749 error: invalid_request, unsupported_grant_type", body = Object),
        (status = 401, description = "RFC 6749 error: invalid_client", body = Object),
        (status = 429, description = "Too many failed attempts from this address", body = Object),
    ))]
pub async fn token(State(state): State<AppState>, parts: Parts, body: Bytes) -> Response {
    let auth = &state.auth;
    let ip = auth.client_ip(&parts);
    if let Some(ip) = ip {
        if let Err(retry) = auth.token_limiter.check(ip) {
            return AuthRejection::Limited(retry).into_response();
        }
    }
    let form: TokenForm = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the body is not a form: {e}"),
            )
        }
    };
    match form.grant_type.as_deref() {
        Some("client_credentials") => {}
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required: client_credentials",
            )
        }
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "only grant_type=client_credentials is supported",
            )
        }
    }
    let credentials = basic_credentials(&parts.headers)
        .or_else(|| form.client_id.clone().zip(form.client_secret.clone()));
    let Some((client_id, secret)) = credentials else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id and client_secret are required (in the form or as HTTP Basic)",
        );
    };
    let fail = |why: &str| {
        if let Some(ip) = ip {
            let _ = auth.token_limiter.hit(ip);
        }
        oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why)
    };
    // The id must be the secret's own prefix, so one token cannot stand in for another.
    if token_prefix(&secret) != Some(client_id.as_str()) {
        return fail("unknown client or wrong secret");
    }
    let secret = SecretString::from(secret);
    let info = match active_token(&state, &client_id, Some(&secret)).await {
        Ok(Ok(info)) => info,
        Ok(Err(why)) => return fail(why),
        Err(rejection) => return rejection.into_response(),
    };
    issue(&state, &parts, info, form.scope).await
}

async fn issue(
    state: &AppState,
    parts: &Parts,
    info: inkingi_store::identity::TokenInfo,
    scope: Option<String>,
) -> Response {
    let dci = &state.settings.dci;
    let now = Utc::now();
    let claims = Claims {
        iss: dci.registry_id.clone(),
        sub: info.prefix.clone(),
        aud: dci.registry_id.clone(),
        iat: now.timestamp(),
        exp: (now + dci.token_ttl).timestamp(),
        jti: Uuid::now_v7().to_string(),
        scope: scope.map(|s| s.chars().take(512).collect()),
    };
    let access_token = match jwt::issue(&dci.signing_key, &claims) {
        Ok(t) => t,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let mut record = AuditRecord::new(info.username.as_str(), "auth.token_issue", "api_token");
    record.via = Some(format!("token:{}", info.prefix));
    record.role = Some(info.role.to_string());
    record.subject_id = Some(claims.jti.clone());
    record.request_id = crate::request_id::current().filter(|s| !s.is_empty());
    record.client_addr = state.auth.client_ip(parts).map(|ip| ip.to_string());
    let xroad = XRoad::from_headers(&parts.headers);
    record.xroad_client = xroad.client;
    record.xroad_id = xroad.id;
    if let Err(e) = state.audit.append(vec![record]).await {
        return e.into_response();
    }
    let mut res = Json(json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": dci.token_ttl.num_seconds(),
        "scope": claims.scope,
    }))
    .into_response();
    no_store(res.headers_mut());
    res
}

/// The public keys of this registry: access tokens and signed messages verify with them.
#[utoipa::path(get, path = "/dci/.well-known/jwks.json", tag = "dci",
    responses((status = 200, description = "JSON Web Key Set (RFC 7517) of Ed25519 keys", body = Object)))]
pub async fn jwks_json(State(state): State<AppState>) -> Response {
    let keys = state.settings.dci.verification_keys();
    let mut res = Json(jwks(keys.iter())).into_response();
    // Short enough that a rotated key reaches partners within the token lifetime.
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}
