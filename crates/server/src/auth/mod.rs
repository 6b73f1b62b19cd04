//! Authentication and authorisation.
//!
//! Every handler that is not public names a [`Principal`] (API: session cookie or
//! `Authorization: Bearer ink_…`) or a [`PagePrincipal`] (web pages: session cookie) among its
//! arguments, so who is calling is resolved explicitly at the top of the handler, and then asks
//! for what it needs: [`Principal::require`] (role → 403) and, for reads of personal data,
//! [`Principal::purpose`]. Store calls that return personal data take [`Principal::scope`].

pub mod account;
pub mod jwt;
pub mod login;
pub mod password;
mod principal;
pub mod rate_limit;
pub mod secrets;
pub mod service;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use inkingi_domain::identity::PurposePolicy;

pub use password::{Argon2Settings, Passwords};
pub(crate) use principal::{active_token, viewer, AuthRejection};
pub use principal::{Credential, PagePrincipal, Principal, XRoad};
pub use rate_limit::{RateLimit, RateLimiter};

/// Settings of sign-in, sessions, tokens and purposes.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Mark cookies `Secure` (and use the `__Host-` name prefix). Turn off only to try the
    /// system over plain HTTP on a non-localhost address.
    pub cookie_secure: bool,
    /// A session unused this long ends.
    pub session_idle: Duration,
    /// A session ends this long after sign-in, however active.
    pub session_absolute: Duration,
    /// Consecutive failed sign-ins that lock an account…
    pub lockout_threshold: u32,
    /// …for this long.
    pub lockout_duration: Duration,
    /// Sign-in attempts per client address.
    pub login_rate: RateLimit,
    /// Failed bearer-token authentications per client address.
    pub token_rate: RateLimit,
    pub argon2: Argon2Settings,
    /// Which purposes of use each role may declare.
    pub purposes: PurposePolicy,
    /// Take the client address from the last `X-Forwarded-For` entry (only behind a proxy that
    /// sets it; otherwise clients could choose their own address).
    pub trust_forwarded_for: bool,
    /// Record reads in the audit log. Always on in service; off only to measure its cost.
    pub audit_reads: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            cookie_secure: true,
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 3600),
            lockout_threshold: 5,
            lockout_duration: Duration::from_secs(15 * 60),
            login_rate: RateLimit {
                per_minute: 20,
                burst: 20,
            },
            token_rate: RateLimit {
                per_minute: 60,
                burst: 30,
            },
            argon2: Argon2Settings::default(),
            purposes: PurposePolicy::default(),
            trust_forwarded_for: false,
            audit_reads: true,
        }
    }
}

/// What the authentication code keeps between requests.
#[derive(Debug)]
pub struct AuthState {
    pub settings: AuthSettings,
    pub passwords: Passwords,
    pub login_limiter: RateLimiter,
    pub token_limiter: RateLimiter,
}

impl AuthState {
    pub fn new(settings: AuthSettings) -> Result<AuthState, password::PasswordError> {
        Ok(AuthState {
            passwords: Passwords::new(settings.argon2)?,
            login_limiter: RateLimiter::new(settings.login_rate),
            token_limiter: RateLimiter::new(settings.token_rate),
            settings,
        })
    }

    /// Name of the session cookie; `__Host-` makes browsers refuse it unless Secure, host-only
    /// and path `/`.
    pub fn session_cookie(&self) -> &'static str {
        if self.settings.cookie_secure {
            "__Host-inkingi_session"
        } else {
            "inkingi_session"
        }
    }

    pub fn login_csrf_cookie(&self) -> &'static str {
        if self.settings.cookie_secure {
            "__Host-inkingi_login"
        } else {
            "inkingi_login"
        }
    }

    /// A `Set-Cookie` value with the attributes every cookie of ours carries.
    pub fn cookie(&self, name: &str, value: &str, max_age: Option<Duration>) -> String {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if self.settings.cookie_secure {
            c.push_str("; Secure");
        }
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={}", age.as_secs()));
        }
        c
    }

    /// Tells the browser to forget a cookie.
    pub fn clear_cookie(&self, name: &str) -> String {
        self.cookie(name, "", Some(Duration::ZERO))
    }

    /// The client's address: the socket peer, or the proxy's `X-Forwarded-For` when trusted.
    pub fn client_ip(&self, parts: &Parts) -> Option<IpAddr> {
        if self.settings.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok());
            if forwarded.is_some() {
                return forwarded;
            }
        }
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    }
}

/// The value of cookie `name` in the request, if present.
pub fn cookie_value<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Declares the two ways to authenticate in the OpenAPI document.
pub fn add_security_schemes(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::{
        ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
    };
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("An API token `ink_…` from `inkingi tokens create`"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            "__Host-inkingi_session",
            "The web session cookie set by POST /login; state-changing calls also send X-CSRF-Token",
        ))),
    );
}
