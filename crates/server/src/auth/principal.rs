//! The caller of a request, resolved from a session cookie or a bearer token.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use inkingi_domain::audit::AuditRecord;
use inkingi_domain::identity::{
    may, AreaScope, Permission, Purpose, PurposePolicy, Role, TokenScope, Username,
};
use inkingi_store::identity::{SessionRecord, TokenInfo};
use secrecy::SecretString;
use uuid::Uuid;

use super::secrets::{digest, matches_digest, same_secret, token_prefix};
use super::{cookie_value, AuthState};
use crate::error::{problem_response, ApiError, ApiResult};
use crate::AppState;

/// How the principal proved who it is.
#[derive(Clone)]
pub enum Credential {
    Session {
        csrf_token: String,
    },
    Token {
        id: Uuid,
        prefix: String,
        scopes: Vec<TokenScope>,
        /// Presented as an access token from the DCI token endpoint rather than itself.
        exchanged: bool,
    },
}

/// Leaves the CSRF token out of logs.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Session { .. } => f.write_str("Session"),
            Credential::Token { prefix, scopes, .. } => {
                write!(f, "Token({prefix}, {scopes:?})")
            }
        }
    }
}

/// Who is calling: a user (through a web session) or an API token acting for its user.
#[derive(Debug, Clone)]
pub struct Principal {
    pub username: Username,
    pub role: Role,
    /// Where the principal may look; pass it to every store call touching personal data.
    pub scope: AreaScope,
    pub credential: Credential,
    pub client_addr: Option<String>,
    pub request_id: Option<String>,
    /// The X-Road (or GovStack information mediator) client and message id, when the request
    /// came through one; recorded in the audit log.
    pub xroad: XRoad,
    declared_purpose: Option<String>,
}

/// The `X-Road-Client` and `X-Road-Id` headers of a request relayed by an X-Road security
/// server. They are recorded, not trusted: access still rests on the caller's own credential.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XRoad {
    /// `INSTANCE/CLASS/MEMBER/SUBSYSTEM` of the calling member.
    pub client: Option<String>,
    /// The message id the security servers log.
    pub id: Option<String>,
}

pub const XROAD_CLIENT_HEADER: &str = "x-road-client";
pub const XROAD_ID_HEADER: &str = "x-road-id";

impl XRoad {
    /// Reads both headers, keeping printable ASCII only and at most 255 characters: they go
    /// into the audit log as they are.
    pub fn from_headers(headers: &axum::http::HeaderMap) -> XRoad {
        let read = |name: &str| {
            headers.get(name).and_then(|v| {
                let s: String = v
                    .as_bytes()
                    .iter()
                    .filter(|b| b.is_ascii_graphic() || **b == b' ')
                    .take(255)
                    .map(|b| char::from(*b))
                    .collect();
                let s = s.trim();
                (!s.is_empty()).then(|| s.to_string())
            })
        };
        XRoad {
            client: read(XROAD_CLIENT_HEADER),
            id: read(XROAD_ID_HEADER),
        }
    }
}

/// Header declaring why personal data is read.
pub const PURPOSE_HEADER: &str = "x-purpose-of-use";
/// Header carrying the session's CSRF token on state-changing API calls made with a cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

impl Principal {
    /// A connector of Inkingi's own acting with national scope (the DHIS2 sync job): no caller
    /// behind it, so its audit entries say `via: connector:<name>`.
    pub fn connector(username: Username) -> Principal {
        Principal {
            credential: Credential::Token {
                id: Uuid::nil(),
                prefix: format!("connector:{}", username.as_str()),
                scopes: Vec::new(),
                exchanged: false,
            },
            username,
            role: Role::MachineClient,
            scope: AreaScope::national(),
            client_addr: None,
            request_id: None,
            xroad: XRoad::default(),
            declared_purpose: None,
        }
    }

    /// 403 unless the role has `permission` and, for a token, its scopes allow it.
    pub fn require(&self, permission: Permission) -> ApiResult<()> {
        if !may(self.role, permission) {
            return Err(forbidden(format!(
                "role {} may not {}",
                self.role,
                permission_text(permission)
            )));
        }
        if let Credential::Token { scopes, prefix, .. } = &self.credential {
            let needed = permission.token_scope();
            let ok = scopes.contains(&needed)
                || (needed == TokenScope::Read && scopes.contains(&TokenScope::Write));
            if !ok {
                return Err(forbidden(format!(
                    "token {prefix} lacks the '{needed}' scope needed to {}",
                    permission_text(permission)
                )));
            }
        }
        Ok(())
    }

    /// The declared purpose of use (header, else the token's `purpose:` scope), checked against
    /// what the role may declare. Reads of personal data must call this.
    pub fn purpose(&self, policy: &PurposePolicy) -> ApiResult<Purpose> {
        match self.declared()? {
            Some(p) => self.allowed(p, policy),
            None => Err(ApiError::invalid_field(
                "X-Purpose-Of-Use",
                format!(
                    "reading personal data needs a declared purpose: send the X-Purpose-Of-Use \
                     header with one of: {}",
                    purpose_list(&policy.allowed(self.role))
                ),
            )),
        }
    }

    /// Like [`Principal::purpose`], with a purpose implied when none is declared (e.g. `audit`
    /// for reading the audit log).
    pub fn purpose_or(&self, implied: Purpose, policy: &PurposePolicy) -> ApiResult<Purpose> {
        let p = self.declared()?.unwrap_or(implied);
        self.allowed(p, policy)
    }

    fn declared(&self) -> ApiResult<Option<Purpose>> {
        if let Some(raw) = &self.declared_purpose {
            return raw
                .parse()
                .map(Some)
                .map_err(|e: inkingi_domain::identity::UnknownPurpose| {
                    ApiError::invalid_field("X-Purpose-Of-Use", e.to_string())
                });
        }
        if let Credential::Token { scopes, .. } = &self.credential {
            return Ok(scopes.iter().find_map(|s| match s {
                TokenScope::Purpose(p) => Some(*p),
                _ => None,
            }));
        }
        Ok(None)
    }

    fn allowed(&self, p: Purpose, policy: &PurposePolicy) -> ApiResult<Purpose> {
        if policy.allows(self.role, p) {
            Ok(p)
        } else {
            Err(forbidden(format!(
                "purpose '{p}' is not allowed for role {}; allowed: {}",
                self.role,
                purpose_list(&policy.allowed(self.role))
            )))
        }
    }

    /// An audit record with the actor, credential, role, request id and client address filled.
    pub fn audit_record(&self, action: &str, subject_type: &str) -> AuditRecord {
        let mut r = AuditRecord::new(self.username.as_str(), action, subject_type);
        r.role = Some(self.role.to_string());
        r.via = Some(match &self.credential {
            Credential::Session { .. } => "session".to_string(),
            Credential::Token {
                prefix,
                exchanged: false,
                ..
            } => format!("token:{prefix}"),
            Credential::Token { prefix, .. } => format!("jwt:{prefix}"),
        });
        r.request_id = self.request_id.clone();
        r.client_addr = self.client_addr.clone();
        r.xroad_client = self.xroad.client.clone();
        r.xroad_id = self.xroad.id.clone();
        r
    }
}

fn permission_text(p: Permission) -> String {
    format!("{p:?}")
        .chars()
        .flat_map(|c| {
            if c.is_uppercase() {
                vec![' ', c.to_ascii_lowercase()]
            } else {
                vec![c]
            }
        })
        .collect::<String>()
        .trim()
        .to_string()
}

fn purpose_list(ps: &[Purpose]) -> String {
    if ps.is_empty() {
        return "none".into();
    }
    ps.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
}

fn forbidden(detail: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", detail)
}

/// Why a request was not authenticated.
#[derive(Debug)]
pub enum AuthRejection {
    /// No credentials at all.
    Missing,
    /// Credentials that do not authenticate: malformed, unknown, expired, revoked.
    Invalid(&'static str),
    /// Too many failed attempts from this client.
    Limited(Duration),
    /// Authenticated, but the request is refused (CSRF token missing or wrong).
    Refused(ApiError),
}

impl From<ApiError> for AuthRejection {
    fn from(e: ApiError) -> Self {
        AuthRejection::Refused(e)
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let (detail, challenge) = match self {
            AuthRejection::Refused(e) => return e.into_response(),
            AuthRejection::Limited(retry) => {
                let mut res = problem_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate-limited",
                    "too many failed authentication attempts from this address; wait and retry",
                    None,
                );
                if let Ok(v) = HeaderValue::from_str(&retry.as_secs().max(1).to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return res;
            }
            AuthRejection::Missing => (
                "authentication required: sign in, or send Authorization: Bearer <token>",
                "Bearer realm=\"inkingi\"",
            ),
            AuthRejection::Invalid(why) => {
                (why, "Bearer realm=\"inkingi\", error=\"invalid_token\"")
            }
        };
        let mut res = problem_response(StatusCode::UNAUTHORIZED, "unauthorized", detail, None);
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        res
    }
}

/// Context read from every request.
struct RequestCtx {
    client_ip: Option<std::net::IpAddr>,
    request_id: Option<String>,
    purpose: Option<String>,
    xroad: XRoad,
}

fn ctx(auth: &AuthState, parts: &Parts) -> RequestCtx {
    RequestCtx {
        client_ip: auth.client_ip(parts),
        request_id: crate::request_id::current().filter(|s| !s.is_empty()),
        purpose: parts.headers.get(PURPOSE_HEADER).map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(64)
                .collect()
        }),
        xroad: XRoad::from_headers(&parts.headers),
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let auth = &state.auth;
        let c = ctx(auth, parts);
        if let Some(h) = parts.headers.get(header::AUTHORIZATION) {
            let h = h.to_str().unwrap_or_default().to_string();
            return bearer(state, &h, c).await;
        }
        match session(state, parts).await? {
            SessionOutcome::Valid(rec) => {
                if !parts.method.is_safe() {
                    let sent = parts
                        .headers
                        .get(CSRF_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    if !same_secret(sent, &rec.csrf_token) {
                        return Err(AuthRejection::Refused(forbidden(
                            "missing or wrong X-CSRF-Token header for a request made with a \
                             session cookie"
                                .into(),
                        )));
                    }
                }
                if rec.user.must_change_password {
                    return Err(AuthRejection::Refused(forbidden(
                        "this account still has a one-time password: change it at \
                         /account/password before using the API with this session"
                            .into(),
                    )));
                }
                Ok(from_session(*rec, c))
            }
            SessionOutcome::Expired => Err(AuthRejection::Invalid(
                "your session has expired; sign in again",
            )),
            SessionOutcome::None => Err(AuthRejection::Missing),
        }
    }
}

fn from_session(rec: SessionRecord, c: RequestCtx) -> Principal {
    Principal {
        username: rec.user.username,
        role: rec.user.role,
        scope: rec.user.scope,
        credential: Credential::Session {
            csrf_token: rec.csrf_token,
        },
        client_addr: c.client_ip.map(|ip| ip.to_string()),
        request_id: c.request_id,
        xroad: c.xroad,
        declared_purpose: c.purpose,
    }
}

/// Authenticates `Authorization: Bearer ink_…` or an access token from the DCI token endpoint.
/// Every failure counts against the client's token rate limit, checked before any database
/// work.
async fn bearer(state: &AppState, header: &str, c: RequestCtx) -> Result<Principal, AuthRejection> {
    let auth = &state.auth;
    if let Some(ip) = c.client_ip {
        auth.token_limiter
            .check(ip)
            .map_err(AuthRejection::Limited)?;
    }
    let fail = |why: &'static str| {
        if let Some(ip) = c.client_ip {
            let _ = auth.token_limiter.hit(ip);
        }
        AuthRejection::Invalid(why)
    };
    let Some((scheme, token)) = header.trim().split_once(' ') else {
        return Err(fail(
            "malformed Authorization header: expected 'Bearer <token>'",
        ));
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(fail(
            "malformed Authorization header: expected 'Bearer <token>'",
        ));
    }
    let token = token.trim();
    let (prefix, secret, exchanged) = if super::jwt::is_jwt(token) {
        let dci = &state.settings.dci;
        let claims = super::jwt::verify(
            token,
            &dci.verification_keys(),
            &dci.registry_id,
            Utc::now().timestamp(),
            dci.max_clock_skew.num_seconds(),
        )
        .map_err(fail)?;
        (claims.sub, None, true)
    } else {
        let Some(prefix) = token_prefix(token) else {
            return Err(fail("malformed bearer token"));
        };
        let secret = SecretString::from(token.to_string());
        (prefix.to_string(), Some(secret), false)
    };
    let info = active_token(state, &prefix, secret.as_ref())
        .await?
        .map_err(fail)?;
    Ok(Principal {
        username: info.username,
        role: info.role,
        scope: info.area_scope,
        credential: Credential::Token {
            id: info.id,
            prefix: info.prefix,
            scopes: info.scopes,
            exchanged,
        },
        client_addr: c.client_ip.map(|ip| ip.to_string()),
        request_id: c.request_id,
        xroad: c.xroad,
        declared_purpose: c.purpose,
    })
}

/// The API token named by `prefix` when it may be used now: its secret matches (when one is
/// presented; an access token's signature stands in for it), it is neither revoked nor
/// expired, its user is enabled and its scope within the user's. The inner error says why not.
pub(crate) async fn active_token(
    state: &AppState,
    prefix: &str,
    secret: Option<&SecretString>,
) -> Result<Result<TokenInfo, &'static str>, AuthRejection> {
    let record = state
        .store
        .identity()
        .token_by_prefix(prefix)
        .await
        .map_err(|e| AuthRejection::Refused(e.into()))?;
    let Some(record) = record.filter(|r| secret.is_none_or(|s| matches_digest(s, &r.hash))) else {
        return Ok(Err("invalid bearer token"));
    };
    let now = Utc::now();
    let info = record.info;
    if info.revoked_at.is_some() {
        return Ok(Err("this token has been revoked"));
    }
    if info.expires_at.is_some_and(|t| t <= now) {
        return Ok(Err("this token has expired"));
    }
    if info.user_disabled {
        return Ok(Err("this token's user is disabled"));
    }
    if !record.user_scope.covers(&info.area_scope) {
        return Ok(Err("this token's area scope is wider than its user's"));
    }
    let stale = info
        .last_used_at
        .is_none_or(|t| now - t > chrono::Duration::seconds(60));
    if stale {
        if let Err(e) = state.store.identity().touch_token(info.id, now).await {
            tracing::warn!(error = %e, "cannot record token use");
        }
    }
    Ok(Ok(info))
}

pub(crate) enum SessionOutcome {
    None,
    Expired,
    Valid(Box<SessionRecord>),
}

/// Finds the session named by the cookie and enforces idle and absolute expiry; an ended
/// session is deleted.
pub(crate) async fn session(
    state: &AppState,
    parts: &Parts,
) -> Result<SessionOutcome, AuthRejection> {
    let auth = &state.auth;
    let Some(id) = cookie_value(parts, auth.session_cookie()) else {
        return Ok(SessionOutcome::None);
    };
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(SessionOutcome::Expired);
    }
    let hash = digest(id);
    let store = state.store.identity();
    let rec = store
        .session(&hash)
        .await
        .map_err(|e| AuthRejection::Refused(e.into()))?;
    let Some(rec) = rec else {
        return Ok(SessionOutcome::Expired);
    };
    let now = Utc::now();
    let idle = chrono::Duration::from_std(auth.settings.session_idle).unwrap_or_default();
    if now >= rec.expires_at || now - rec.last_seen_at > idle || rec.user.disabled {
        if let Err(e) = store.delete_session(&hash).await {
            tracing::warn!(error = %e, "cannot delete an ended session");
        }
        return Ok(SessionOutcome::Expired);
    }
    // Writing on every request would make reads cost a write; a minute's slack in the idle
    // timer is harmless.
    if now - rec.last_seen_at > chrono::Duration::seconds(60) {
        if let Err(e) = store.touch_session(&hash, now).await {
            tracing::warn!(error = %e, "cannot refresh a session");
        }
    }
    Ok(SessionOutcome::Valid(Box::new(rec)))
}

/// The signed-in user of a web page. Without a valid session the browser is sent to the login
/// page, which returns it here afterwards (and, when the session had expired, says so and asks
/// to resubmit what was being sent).
#[derive(Debug, Clone)]
pub struct PagePrincipal(pub Principal);

impl PagePrincipal {
    pub fn csrf_token(&self) -> &str {
        match &self.0.credential {
            Credential::Session { csrf_token } => csrf_token,
            Credential::Token { .. } => "",
        }
    }

    /// 403 unless the form carried this session's CSRF token.
    pub fn check_csrf(&self, sent: Option<&str>) -> ApiResult<()> {
        if same_secret(sent.unwrap_or_default(), self.csrf_token()) && !self.csrf_token().is_empty()
        {
            Ok(())
        } else {
            Err(forbidden(
                "the form's CSRF token is missing or wrong; reload the page and resubmit".into(),
            ))
        }
    }
}

impl std::ops::Deref for PagePrincipal {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl FromRequestParts<AppState> for PagePrincipal {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let c = ctx(&state.auth, parts);
        let outcome = session(state, parts)
            .await
            .map_err(IntoResponse::into_response)?;
        let expired = match outcome {
            SessionOutcome::Valid(rec) if rec.user.must_change_password => {
                if PASSWORD_CHANGE_PATHS.contains(&parts.uri.path()) {
                    return Ok(PagePrincipal(from_session(*rec, c)));
                }
                return Err(to_password_change(parts));
            }
            SessionOutcome::Valid(rec) => return Ok(PagePrincipal(from_session(*rec, c))),
            SessionOutcome::Expired => true,
            SessionOutcome::None => false,
        };
        // A form posted after expiry comes back to the page it was on: GET that page again.
        let next = if parts.method.is_safe() {
            parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "/".into())
        } else {
            parts.uri.path().to_string()
        };
        let mut to = format!("/login?next={}", encode(&next));
        if expired {
            to.push_str("&expired=1");
        }
        let mut res = Redirect::to(&to).into_response();
        if expired {
            let clear = state.auth.clear_cookie(state.auth.session_cookie());
            if let Ok(v) = HeaderValue::from_str(&clear) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        Err(res)
    }
}

/// The pages a user with a one-time password may open: the one to change it, and signing out.
const PASSWORD_CHANGE_PATHS: &[&str] = &["/account/password", "/logout"];

/// Sends a user who still has a one-time password to change it, then on to where they were
/// going.
fn to_password_change(parts: &Parts) -> Response {
    let next = if parts.method.is_safe() {
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into())
    } else {
        parts.uri.path().to_string()
    };
    Redirect::to(&format!("/account/password?next={}", encode(&next))).into_response()
}

/// The signed-in user, as the header of any page shows them.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub username: String,
    pub role: Role,
    pub csrf_token: String,
    pub must_change_password: bool,
}

/// The signed-in user of a request to a public page, if any. A session that cannot be read
/// (expired, or the database failing) just leaves the page anonymous: it is public anyway.
pub(crate) async fn viewer(state: &AppState, parts: &Parts) -> Option<Viewer> {
    match session(state, parts).await {
        Ok(SessionOutcome::Valid(rec)) => Some(Viewer {
            username: rec.user.username.to_string(),
            role: rec.user.role,
            csrf_token: rec.csrf_token,
            must_change_password: rec.user.must_change_password,
        }),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = ?e, "cannot read the session of a public page");
            None
        }
    }
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
