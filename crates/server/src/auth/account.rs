//! `GET/POST /account/password`: a signed-in user changes their password. A user who signed in
//! with a one-time password is sent here first and can open no other signed-in page until done
//! (see `PagePrincipal`); bearer tokens are not affected.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::login::{safe_next, RequestHead};
use super::password::MIN_PASSWORD_LEN;
use super::secrets::digest;
use super::service::{self, AdminError};
use super::{cookie_value, PagePrincipal};
use crate::error::ApiError;
use crate::extract::Query;
use crate::web::i18n::Messages;
use crate::web::page::{render, Chrome, PageCtx, Section};
use crate::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(password_page, password_submit))]
struct AccountApi;

pub fn api() -> utoipa::openapi::OpenApi {
    <AccountApi as utoipa::OpenApi>::openapi()
}

/// What is wrong with a proposed new password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    TooShort,
    IsUsername,
    SameAsCurrent,
}

/// Checks a new password against the rules people are told: long enough, not the username,
/// not the current password.
pub fn weakness(username: &str, current: &str, new: &str) -> Option<Weakness> {
    if new.chars().count() < MIN_PASSWORD_LEN {
        Some(Weakness::TooShort)
    } else if new.trim().to_lowercase() == username.to_lowercase() {
        Some(Weakness::IsUsername)
    } else if new == current {
        Some(Weakness::SameAsCurrent)
    } else {
        None
    }
}

/// Messages shown next to the fields, in the page's language.
#[derive(Debug, Default)]
struct FieldErrors {
    general: Option<String>,
    current: Option<String>,
    new: Option<String>,
    again: Option<String>,
}

impl FieldErrors {
    fn any(&self) -> bool {
        self.general.is_some()
            || self.current.is_some()
            || self.new.is_some()
            || self.again.is_some()
    }
}

fn weakness_text(t: &Messages, w: Weakness) -> String {
    match w {
        Weakness::TooShort => with_min(&t.password_error_too_short),
        Weakness::IsUsername => t.password_error_username.clone(),
        Weakness::SameAsCurrent => t.password_error_same.clone(),
    }
}

fn with_min(s: &str) -> String {
    s.replace("{min}", &MIN_PASSWORD_LEN.to_string())
}

#[derive(Template)]
#[template(path = "auth/password.html")]
struct PasswordPage<'a> {
    chrome: Chrome,
    csrf_token: &'a str,
    next: &'a str,
    /// Signed in with a one-time password: the change is not optional.
    required: bool,
    rules: String,
    min_len: usize,
    /// The field the cursor starts in: the first one at fault, else the first.
    focus: &'static str,
    errors: FieldErrors,
}

fn form_page(
    ctx: &PageCtx,
    principal: &PagePrincipal,
    status: StatusCode,
    next: &str,
    errors: FieldErrors,
) -> Response {
    let t = ctx.t();
    let page = PasswordPage {
        chrome: ctx.chrome(Section::Account, &t.password_title),
        csrf_token: principal.csrf_token(),
        next,
        required: ctx.viewer.as_ref().is_some_and(|v| v.must_change_password),
        rules: with_min(&t.password_rules),
        min_len: MIN_PASSWORD_LEN,
        focus: if errors.current.is_none() && errors.new.is_some() {
            "new_password"
        } else if errors.current.is_none() && errors.again.is_some() {
            "new_password_again"
        } else {
            "current_password"
        },
        errors,
    };
    let mut res = render(ctx, status, &page);
    // The page carries a CSRF token and follows a sign-in: keep it out of every cache.
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    res
}

#[derive(Debug, Deserialize, Default)]
pub struct PasswordQuery {
    next: Option<String>,
}

#[utoipa::path(get, path = "/account/password", tag = "identity",
    params(("next" = Option<String>, Query, description = "Where to go after the change")),
    responses(
        (status = 200, description = "The change-password page (HTML)", content_type = "text/html"),
        (status = 303, description = "Not signed in: redirected to the sign-in page")))]
pub async fn password_page(
    ctx: PageCtx,
    principal: PagePrincipal,
    Query(q): Query<PasswordQuery>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    form_page(
        &ctx,
        &principal,
        StatusCode::OK,
        next,
        FieldErrors::default(),
    )
}

/// No `Debug`: passwords must not reach a log by accident.
#[derive(Deserialize, Default)]
pub struct PasswordForm {
    csrf_token: Option<String>,
    next: Option<String>,
    current_password: Option<String>,
    new_password: Option<String>,
    new_password_again: Option<String>,
}

#[utoipa::path(post, path = "/account/password", tag = "identity",
    request_body(content_type = "application/x-www-form-urlencoded",
        description = "csrf_token, current_password, new_password, new_password_again, next"),
    responses(
        (status = 303, description = "Changed: other sessions ended, redirected to `next`"),
        (status = 403, description = "The form's CSRF token is missing or wrong"),
        (status = 422, description = "Refused; each field at fault says why", content_type = "text/html"),
        (status = 429, description = "Too many attempts from this address", content_type = "text/html")))]
pub async fn password_submit(
    State(state): State<AppState>,
    ctx: PageCtx,
    principal: PagePrincipal,
    head: RequestHead,
    Form(form): Form<PasswordForm>,
) -> Response {
    if let Err(e) = principal.check_csrf(form.csrf_token.as_deref()) {
        return e.into_response();
    }
    let next = safe_next(form.next.as_deref()).to_string();
    let t = ctx.t();
    // Guessing the current password from a stolen session counts like guessing at sign-in.
    if let Some(ip) = state.auth.client_ip(&head.parts) {
        if state.auth.login_limiter.hit(ip).is_err() {
            let errors = FieldErrors {
                general: Some(t.password_error_limited.clone()),
                ..FieldErrors::default()
            };
            return form_page(
                &ctx,
                &principal,
                StatusCode::TOO_MANY_REQUESTS,
                &next,
                errors,
            );
        }
    }
    let current = SecretString::from(form.current_password.unwrap_or_default());
    let new = SecretString::from(form.new_password.unwrap_or_default());
    let again = form.new_password_again.unwrap_or_default();
    match change(&state, &principal, &head, &current, &new, &again, t).await {
        Ok(None) => Redirect::to(&next).into_response(),
        Ok(Some(errors)) => form_page(
            &ctx,
            &principal,
            StatusCode::UNPROCESSABLE_ENTITY,
            &next,
            errors,
        ),
        Err(e) => e.into_response(),
    }
}

/// Checks the form and, when it passes, stores the new password; `Ok(Some(_))` names what is
/// wrong, field by field.
async fn change(
    state: &AppState,
    principal: &PagePrincipal,
    head: &RequestHead,
    current: &SecretString,
    new: &SecretString,
    again: &str,
    t: &Messages,
) -> Result<Option<FieldErrors>, ApiError> {
    let store = state.store.identity();
    let creds = store
        .credentials(&principal.username)
        .await?
        .ok_or_else(|| ApiError::internal("the signed-in user no longer exists"))?;
    let passwords = state.auth.passwords.clone();
    let (typed, phc) = (current.clone(), creds.password_hash.clone());
    let current_ok = tokio::task::spawn_blocking(move || passwords.verify(&typed, &phc))
        .await
        .map_err(ApiError::internal)?;

    let mut errors = FieldErrors::default();
    if !current_ok {
        errors.current = Some(t.password_error_current.clone());
    }
    let (cur, newp) = (current.expose_secret(), new.expose_secret());
    errors.new = weakness(principal.username.as_str(), cur, newp).map(|w| weakness_text(t, w));
    if errors.new.is_none() && again != newp {
        errors.again = Some(t.password_error_mismatch.clone());
    }
    let mut rec = principal.audit_record("user.password_change", "user");
    rec.subject_id = Some(principal.username.to_string());
    rec.fields = vec!["password".into()];
    if errors.any() {
        errors.general = Some(t.password_error_summary.clone());
        rec.outcome = if current_ok { "refused" } else { "failed" }.into();
        state.audit.append(vec![rec]).await?;
        return Ok(Some(errors));
    }
    let session = cookie_value(&head.parts, state.auth.session_cookie()).map(digest);
    service::change_password(
        &state.store,
        &state.auth.passwords,
        creds.user.id,
        new,
        session.as_deref(),
    )
    .await
    .map_err(admin_error)?;
    state.audit.append(vec![rec]).await?;
    Ok(None)
}

fn admin_error(e: AdminError) -> ApiError {
    match e {
        AdminError::Store(s) => s.into(),
        other => ApiError::internal(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_named() {
        let w = |new: &str| weakness("ada.auditor", "the current one!", new);
        assert_eq!(w("short"), Some(Weakness::TooShort));
        assert_eq!(w("elevenchars"), Some(Weakness::TooShort));
        assert_eq!(w("twelve chars"), None);
        assert_eq!(w("ADA.auditor "), Some(Weakness::IsUsername));
        assert_eq!(
            weakness("long.username.x", "x", "Long.Username.X"),
            Some(Weakness::IsUsername)
        );
        assert_eq!(w("the current one!"), Some(Weakness::SameAsCurrent));
        // Characters, not bytes: twelve Kinyarwanda or French letters suffice.
        assert_eq!(w("éééééééééééé"), None);
    }
}
