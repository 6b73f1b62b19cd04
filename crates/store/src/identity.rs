//! Port of the `identity` context: users, web sessions and API tokens.
//!
//! Secrets never reach the database in clear: passwords are argon2id PHC strings, session ids
//! and API tokens are stored as SHA-256 digests (they are long random values, so a fast hash is
//! enough; it only has to make a stolen table useless for signing in).

use chrono::{DateTime, Utc};
use inkingi_domain::identity::{AreaScope, Role, TokenScope, Username};
use uuid::Uuid;

use crate::StoreResult;

/// A user as shown to administrators (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub username: Username,
    pub role: Role,
    pub scope: AreaScope,
    pub disabled: bool,
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// Signed in with a generated password: must choose their own before using any page.
    pub must_change_password: bool,
}

/// A user with the password hash, for sign-in only.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub user: User,
    /// argon2id PHC string.
    pub password_hash: String,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub role: Role,
    pub scope: AreaScope,
    pub password_hash: String,
    /// True when the password was generated (a one-time password).
    pub must_change_password: bool,
}

/// A web session as stored: looked up by the digest of the id in the cookie.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id_hash: Vec<u8>,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The absolute end, whatever the activity.
    pub expires_at: DateTime<Utc>,
    pub user: User,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub id_hash: Vec<u8>,
    pub user_id: Uuid,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub client_addr: Option<String>,
}

/// An API token as listed (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: Uuid,
    /// The first characters of the token (`ink_XXXXXXXX`), enough to recognise it.
    pub prefix: String,
    pub username: Username,
    pub role: Role,
    pub scopes: Vec<TokenScope>,
    /// Never wider than the user's scope at creation.
    pub area_scope: AreaScope,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The owning user is disabled, which disables the token too.
    pub user_disabled: bool,
}

/// A token with its digest, for authentication only.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub info: TokenInfo,
    pub hash: Vec<u8>,
    /// The owning user's current scope; a token is refused if it no longer lies within it.
    pub user_scope: AreaScope,
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: Uuid,
    pub prefix: String,
    pub hash: Vec<u8>,
    pub user_id: Uuid,
    pub scopes: Vec<TokenScope>,
    pub area_scope: AreaScope,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// What happened to a user's failure counter after a failed sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedLogin {
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
}

#[async_trait::async_trait]
pub trait IdentityStore: Send + Sync {
    /// Conflict when the username is taken.
    async fn create_user(&self, new: &NewUser) -> StoreResult<User>;
    async fn user_by_name(&self, username: &Username) -> StoreResult<Option<User>>;
    async fn credentials(&self, username: &Username) -> StoreResult<Option<UserCredentials>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// False when no such user. Disabling also ends the user's sessions.
    async fn set_user_disabled(&self, username: &Username, disabled: bool) -> StoreResult<bool>;
    /// Counts a failure; from the `threshold`-th consecutive one the account is locked until
    /// `now + lock_for`.
    async fn record_login_failure(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        threshold: u32,
        lock_for: chrono::Duration,
    ) -> StoreResult<FailedLogin>;
    /// Resets the failure counter and records the time.
    async fn record_login_success(&self, user_id: Uuid, now: DateTime<Utc>) -> StoreResult<()>;
    /// Replaces the password hash and the must-change flag, and ends every session of the user
    /// except `keep` (the session that made the change, if any). False when no such user.
    async fn set_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        must_change: bool,
        keep: Option<&[u8]>,
    ) -> StoreResult<bool>;

    async fn create_session(&self, new: &NewSession) -> StoreResult<()>;
    async fn session(&self, id_hash: &[u8]) -> StoreResult<Option<SessionRecord>>;
    async fn touch_session(&self, id_hash: &[u8], now: DateTime<Utc>) -> StoreResult<()>;
    async fn delete_session(&self, id_hash: &[u8]) -> StoreResult<()>;
    /// Removes sessions past their absolute expiry or idle since before `idle_cutoff`.
    async fn purge_sessions(
        &self,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> StoreResult<u64>;

    /// Conflict when the prefix is taken (the caller draws another token).
    async fn create_token(&self, new: &NewToken) -> StoreResult<TokenInfo>;
    async fn token_by_prefix(&self, prefix: &str) -> StoreResult<Option<TokenRecord>>;
    /// Records use; cheap enough per request because callers throttle it.
    async fn touch_token(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<()>;
    /// False when no such token or already revoked.
    async fn revoke_token(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<bool>;
    async fn list_tokens(&self) -> StoreResult<Vec<TokenInfo>>;
}

/// Stored forms of token scopes: space-separated.
pub(crate) fn scopes_to_stored(scopes: &[TokenScope]) -> String {
    scopes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn scopes_from_stored(s: &str) -> StoreResult<Vec<TokenScope>> {
    s.split_whitespace()
        .map(|p| {
            p.parse()
                .map_err(|e: inkingi_domain::identity::UnknownTokenScope| {
                    crate::StoreError::Invalid(format!("stored token scope: {e}"))
                })
        })
        .collect()
}

pub(crate) fn parse_stored_user_parts(
    username: &str,
    role: &str,
    scope: &str,
) -> StoreResult<(Username, Role, AreaScope)> {
    let bad = |what: &str, e: String| crate::StoreError::Invalid(format!("stored {what}: {e}"));
    Ok((
        Username::parse(username).map_err(|e| bad("username", e.to_string()))?,
        role.parse()
            .map_err(|e: inkingi_domain::identity::UnknownRole| bad("role", e.to_string()))?,
        AreaScope::parse(scope).map_err(|e| bad("area scope", e.to_string()))?,
    ))
}
