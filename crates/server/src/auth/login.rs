//! Web sign-in and sign-out: `GET /login`, `POST /login`, `POST /logout`.
//!
//! Failures all read the same and cost the same (an unknown user is verified against a dummy
//! argon2 hash), so neither the message nor the time tells whether an account exists.

use std::net::IpAddr;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use inkingi_domain::audit::AuditRecord;
use inkingi_domain::identity::Username;
use inkingi_store::identity::{NewSession, UserCredentials};
use secrecy::SecretString;
use serde::Deserialize;

use super::principal::PagePrincipal;
use super::secrets::{digest, random_hex, same_secret};
use super::{cookie_value, AuthState};
use crate::error::ApiError;
use crate::extract::Query;
use crate::web::page::{render, Chrome, PageCtx, Section};
use crate::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(login_page, login_submit, logout))]
struct LoginApi;

pub fn api() -> utoipa::openapi::OpenApi {
    <LoginApi as utoipa::OpenApi>::openapi()
}

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage<'a> {
    chrome: Chrome,
    csrf_token: &'a str,
    next: &'a str,
    username: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

#[derive(Debug, Deserialize, Default)]
pub struct LoginQuery {
    next: Option<String>,
    expired: Option<u8>,
    signed_out: Option<u8>,
}

/// No `Debug`: the password must not reach a log by accident.
#[derive(Deserialize, Default)]
pub struct LoginForm {
    username: Option<String>,
    password: Option<String>,
    csrf_token: Option<String>,
    next: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct LogoutForm {
    csrf_token: Option<String>,
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Only same-site paths, so the login page cannot be used to send people elsewhere.
pub(crate) fn safe_next(next: Option<&str>) -> &str {
    match next {
        // Browsers drop tabs and newlines from URLs, so "/\t/evil.example" would become the
        // protocol-relative "//evil.example": refuse any control or space character.
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            n
        }
        _ => "/",
    }
}

/// Renders the page with a fresh login CSRF cookie (double-submit: the form field must equal
/// the cookie, which another site can neither read nor set). Every failure shows one message
/// (`login_failed`), whatever the reason.
fn page(
    auth: &AuthState,
    ctx: &PageCtx,
    status: StatusCode,
    next: &str,
    username: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let csrf = random_hex();
    let t = ctx.t();
    let html = LoginPage {
        chrome: ctx.chrome(Section::Account, &t.login_title),
        csrf_token: &csrf,
        next,
        username,
        notice,
        error,
    };
    let mut res = render(ctx, status, &html);
    if res.status() != status {
        // The template failed: an error page, without a form to protect.
        return res;
    }
    let cookie = auth.cookie(
        auth.login_csrf_cookie(),
        &csrf,
        Some(Duration::from_secs(3600)),
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[utoipa::path(get, path = "/login", tag = "identity",
    params(("next" = Option<String>, Query, description = "Where to go after signing in"),
           ("expired" = Option<u8>, Query, description = "1 when sent here by an expired session")),
    responses((status = 200, description = "The sign-in page (HTML)", content_type = "text/html")))]
pub async fn login_page(
    State(state): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<LoginQuery>,
) -> Response {
    let t = ctx.t();
    let notice = if q.expired == Some(1) {
        Some(t.login_expired.as_str())
    } else if q.signed_out == Some(1) {
        Some(t.login_signed_out.as_str())
    } else {
        None
    };
    page(
        &state.auth,
        &ctx,
        StatusCode::OK,
        safe_next(q.next.as_deref()),
        "",
        notice,
        None,
    )
}

/// The request head (cookies, client address) for handlers that also take a form body, which
/// must be the last extractor.
pub struct RequestHead {
    pub(crate) parts: Parts,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestHead {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestHead {
            parts: parts.clone(),
        })
    }
}

#[utoipa::path(post, path = "/login", tag = "identity",
    request_body(content_type = "application/x-www-form-urlencoded",
        description = "username, password, csrf_token (from the page), next"),
    responses(
        (status = 303, description = "Signed in: session cookie set, redirected to `next`"),
        (status = 401, description = "Sign-in failed (one message for every reason)", content_type = "text/html"),
        (status = 403, description = "The form's CSRF token is missing or wrong", content_type = "text/html"),
        (status = 429, description = "Too many attempts from this address", content_type = "text/html")))]
pub async fn login_submit(
    State(state): State<AppState>,
    ctx: PageCtx,
    attempt: RequestHead,
    Form(form): Form<LoginForm>,
) -> Response {
    let auth = &state.auth;
    let t = ctx.t();
    let parts = &attempt.parts;
    let next = safe_next(form.next.as_deref()).to_string();
    let typed = form.username.as_deref().unwrap_or_default();
    let shown: String = typed.chars().take(64).collect();
    let ip = auth.client_ip(parts);
    if let Some(ip) = ip {
        if auth.login_limiter.hit(ip).is_err() {
            return page(
                auth,
                &ctx,
                StatusCode::TOO_MANY_REQUESTS,
                &next,
                &shown,
                None,
                Some(t.login_limited.as_str()),
            );
        }
    }
    let cookie = cookie_value(parts, auth.login_csrf_cookie()).unwrap_or_default();
    let sent = form.csrf_token.as_deref().unwrap_or_default();
    if cookie.is_empty() || !same_secret(cookie, sent) {
        return page(
            auth,
            &ctx,
            StatusCode::FORBIDDEN,
            &next,
            &shown,
            None,
            Some(t.login_stale_form.as_str()),
        );
    }
    let password = SecretString::from(form.password.unwrap_or_default());
    match authenticate(&state, typed, password, ip).await {
        Ok(Some(creds)) => match start_session(&state, &creds, ip).await {
            // A one-time password is changed before anything else, then on to `next`.
            Ok(cookie) if creds.user.must_change_password => {
                let to = format!("/account/password?next={}", encode(&next));
                signed_in(auth, &to, &cookie)
            }
            Ok(cookie) => signed_in(auth, &next, &cookie),
            Err(e) => e.into_response(),
        },
        Ok(None) => page(
            auth,
            &ctx,
            StatusCode::UNAUTHORIZED,
            &next,
            &shown,
            None,
            Some(t.login_failed.as_str()),
        ),
        Err(e) => e.into_response(),
    }
}

/// Verifies the password; `Ok(None)` for every kind of failure. Each path does one argon2
/// verification.
async fn authenticate(
    state: &AppState,
    typed: &str,
    password: SecretString,
    ip: Option<IpAddr>,
) -> Result<Option<UserCredentials>, ApiError> {
    let store = state.store.identity();
    let username = Username::parse(typed).ok();
    let creds = match &username {
        Some(u) => store.credentials(u).await?,
        None => None,
    };
    let passwords = state.auth.passwords.clone();
    let phc = creds.as_ref().map(|c| c.password_hash.clone());
    let matched = tokio::task::spawn_blocking(move || match phc {
        Some(h) => passwords.verify(&password, &h),
        None => {
            passwords.verify_dummy(&password);
            false
        }
    })
    .await
    .map_err(ApiError::internal)?;

    let now = Utc::now();
    let mut rec = AuditRecord::new("anonymous", "auth.login", "user");
    rec.client_addr = ip.map(|i| i.to_string());
    rec.request_id = crate::request_id::current().filter(|s| !s.is_empty());
    rec.subject_id = Some(
        username
            .as_ref()
            .map_or("(invalid)".to_string(), |u| u.to_string()),
    );
    let Some(creds) = creds else {
        rec.outcome = "failed".into();
        state.audit.append(vec![rec]).await?;
        return Ok(None);
    };
    let user = &creds.user;
    rec.actor = user.username.to_string();
    rec.role = Some(user.role.to_string());
    let locked = user.locked_until.is_some_and(|t| t > now);
    let usable = !user.disabled && !locked && user.role.may_sign_in();
    if !(matched && usable) {
        if !matched {
            let s = &state.auth.settings;
            let lock_for = chrono::Duration::from_std(s.lockout_duration).unwrap_or_default();
            store
                .record_login_failure(user.id, now, s.lockout_threshold, lock_for)
                .await?;
        }
        rec.outcome = if matched { "denied" } else { "failed" }.into();
        state.audit.append(vec![rec]).await?;
        return Ok(None);
    }
    store.record_login_success(user.id, now).await?;
    // Sign-ins are rare next to requests: a fine moment to drop sessions that have ended.
    let idle = chrono::Duration::from_std(state.auth.settings.session_idle).unwrap_or_default();
    store.purge_sessions(now, now - idle).await?;
    rec.via = Some("session".into());
    state.audit.append(vec![rec]).await?;
    Ok(Some(creds))
}

/// Stores a new session; returns the session id for the cookie.
async fn start_session(
    state: &AppState,
    creds: &UserCredentials,
    ip: Option<IpAddr>,
) -> Result<String, ApiError> {
    let id = random_hex();
    let now = Utc::now();
    let absolute =
        chrono::Duration::from_std(state.auth.settings.session_absolute).unwrap_or_default();
    state
        .store
        .identity()
        .create_session(&NewSession {
            id_hash: digest(&id),
            user_id: creds.user.id,
            csrf_token: random_hex(),
            created_at: now,
            expires_at: now + absolute,
            client_addr: ip.map(|i| i.to_string()),
        })
        .await?;
    Ok(id)
}

fn signed_in(auth: &AuthState, next: &str, session_id: &str) -> Response {
    let mut res = Redirect::to(next).into_response();
    let cookies = [
        auth.cookie(
            auth.session_cookie(),
            session_id,
            Some(auth.settings.session_absolute),
        ),
        auth.clear_cookie(auth.login_csrf_cookie()),
    ];
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

#[utoipa::path(post, path = "/logout", tag = "identity",
    request_body(content_type = "application/x-www-form-urlencoded", description = "csrf_token"),
    responses(
        (status = 303, description = "Signed out (or not signed in): redirected to the sign-in page"),
        (status = 403, description = "The form's CSRF token is missing or wrong")))]
pub async fn logout(
    State(state): State<AppState>,
    principal: PagePrincipal,
    attempt: RequestHead,
    Form(form): Form<LogoutForm>,
) -> Response {
    if let Err(e) = principal.check_csrf(form.csrf_token.as_deref()) {
        return e.into_response();
    }
    let auth = &state.auth;
    if let Some(id) = cookie_value(&attempt.parts, auth.session_cookie()) {
        if let Err(e) = state.store.identity().delete_session(&digest(id)).await {
            return ApiError::from(e).into_response();
        }
    }
    let rec = principal.audit_record("auth.logout", "user");
    if let Err(e) = state.audit.append(vec![rec]).await {
        return e.into_response();
    }
    let mut res = Redirect::to("/login?signed_out=1").into_response();
    if let Ok(v) = HeaderValue::from_str(&auth.clear_cookie(auth.session_cookie())) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/audit?limit=5")), "/audit?limit=5");
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "evil",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
