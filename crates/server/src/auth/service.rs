//! Administration of users and tokens, shared by the CLI and the server. Every change is
//! written to the audit log.

use chrono::Utc;
use inkingi_domain::areas::AreaCode;
use inkingi_domain::audit::AuditRecord;
use inkingi_domain::identity::{AreaScope, Role, TokenScope, Username};
use inkingi_store::identity::{NewToken, NewUser, TokenInfo, User};
use inkingi_store::{Store, StoreError};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::password::{generate_password, PasswordError, Passwords, MIN_PASSWORD_LEN};
use super::secrets::generate_token;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The request itself is wrong (unknown area, bad scope, short password…).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

/// Who is making a change, as the audit log records it.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub via: Option<String>,
    pub role: Option<Role>,
}

impl Actor {
    /// The operator at the command line, named by the operating-system account.
    pub fn cli() -> Actor {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Actor {
            name: format!("cli:{user}"),
            via: Some("cli".into()),
            role: None,
        }
    }

    fn record(&self, action: &str, subject_type: &str, subject_id: &str) -> AuditRecord {
        let mut r = AuditRecord::new(&self.name, action, subject_type);
        r.via = self.via.clone();
        r.role = self.role.map(|r| r.to_string());
        r.subject_id = Some(subject_id.to_string());
        r
    }
}

/// Checks that every area of `scope` exists in the loaded reference data. When no area data
/// is loaded yet only the syntax (already checked by parsing) can be vouched for, and the
/// answer says so.
pub async fn check_areas_exist(
    store: &Store,
    scope: &AreaScope,
) -> Result<Option<String>, AdminError> {
    if scope.is_national() {
        return Ok(None);
    }
    if store.system().reference_version("areas").await?.is_none() {
        return Ok(Some(
            "area reference data is not loaded: only the syntax of the area codes was checked"
                .into(),
        ));
    }
    for code in scope.codes() {
        if store.areas().get_area(code).await?.is_none() {
            return Err(AdminError::Invalid(format!(
                "unknown area '{code}': no {} has this code",
                code.level()
            )));
        }
    }
    Ok(None)
}

/// Parses `--area` values into a scope (`national` allowed alone).
pub fn parse_scope(areas: &[String]) -> Result<AreaScope, AdminError> {
    if areas
        .iter()
        .any(|a| a.trim().eq_ignore_ascii_case("national"))
    {
        if areas.len() > 1 {
            return Err(AdminError::Invalid(
                "'national' already covers every area; give it alone".into(),
            ));
        }
        return Ok(AreaScope::national());
    }
    let codes = areas
        .iter()
        .map(|a| AreaCode::parse(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    AreaScope::areas(codes).map_err(|e| AdminError::Invalid(e.to_string()))
}

/// A new user; without a password, a one-time password is generated and returned (once).
pub async fn create_user(
    store: &Store,
    passwords: &Passwords,
    actor: &Actor,
    username: Username,
    role: Role,
    scope: AreaScope,
    password: Option<SecretString>,
) -> Result<(User, Option<SecretString>), AdminError> {
    role.check_scope(&scope)
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    let (password, generated) = match password {
        Some(p) if p.expose_secret().chars().count() < MIN_PASSWORD_LEN => {
            return Err(AdminError::Invalid(format!(
                "the password is too short: use at least {MIN_PASSWORD_LEN} characters"
            )))
        }
        Some(p) => (p, false),
        None => (generate_password(), true),
    };
    let hasher = passwords.clone();
    let pw = password.clone();
    let password_hash = tokio::task::spawn_blocking(move || hasher.hash(&pw))
        .await
        .map_err(|e| AdminError::Password(PasswordError::Hash(e.to_string())))??;
    let user = store
        .identity()
        .create_user(&NewUser {
            username,
            role,
            scope,
            password_hash,
            must_change_password: generated,
        })
        .await?;
    let mut rec = actor.record("user.create", "user", user.username.as_str());
    rec.fields = vec!["role".into(), "scope".into(), "password".into()];
    store.audit().append(vec![rec]).await?;
    Ok((user, generated.then_some(password)))
}

pub async fn set_disabled(
    store: &Store,
    actor: &Actor,
    username: &Username,
    disabled: bool,
) -> Result<(), AdminError> {
    if !store
        .identity()
        .set_user_disabled(username, disabled)
        .await?
    {
        return Err(AdminError::NotFound(format!("no user named '{username}'")));
    }
    let action = if disabled {
        "user.disable"
    } else {
        "user.enable"
    };
    let mut rec = actor.record(action, "user", username.as_str());
    rec.fields = vec!["disabled".into()];
    store.audit().append(vec![rec]).await?;
    Ok(())
}

/// A new API token for `username`. Its area scope defaults to the user's and may only narrow
/// it; scopes default to `read`. Returns the token text, to be shown once.
pub async fn create_token(
    store: &Store,
    actor: &Actor,
    username: &Username,
    scopes: Vec<TokenScope>,
    area: Option<AreaScope>,
    expires_in: Option<chrono::Duration>,
) -> Result<(TokenInfo, SecretString), AdminError> {
    let user = store
        .identity()
        .user_by_name(username)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no user named '{username}'")))?;
    if user.disabled {
        return Err(AdminError::Invalid(format!(
            "user '{username}' is disabled"
        )));
    }
    let area_scope = area.unwrap_or_else(|| user.scope.clone());
    if !user.scope.covers(&area_scope) {
        return Err(AdminError::Invalid(format!(
            "the token's areas ({area_scope}) must lie within the user's ({})",
            user.scope
        )));
    }
    let mut scopes = if scopes.is_empty() {
        vec![TokenScope::Read]
    } else {
        scopes
    };
    scopes.sort();
    scopes.dedup();
    let now = Utc::now();
    // The prefix is 47 random bits; on the rare clash, draw again.
    for _ in 0..3 {
        let t = generate_token();
        let created = store
            .identity()
            .create_token(&NewToken {
                id: Uuid::now_v7(),
                prefix: t.prefix.clone(),
                hash: t.hash,
                user_id: user.id,
                scopes: scopes.clone(),
                area_scope: area_scope.clone(),
                created_at: now,
                expires_at: expires_in.map(|d| now + d),
            })
            .await;
        match created {
            Ok(info) => {
                let mut rec = actor.record("token.create", "token", &info.prefix);
                rec.fields = vec![format!("user={username}"), "scopes".into()];
                store.audit().append(vec![rec]).await?;
                return Ok((info, t.token));
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AdminError::Invalid(
        "could not draw an unused token prefix; try again".into(),
    ))
}

/// Revokes a token named by its id (UUID) or prefix (`ink_XXXXXXXX`).
pub async fn revoke_token(
    store: &Store,
    actor: &Actor,
    id_or_prefix: &str,
) -> Result<TokenInfo, AdminError> {
    let wanted = id_or_prefix.trim();
    let tokens = store.identity().list_tokens().await?;
    let token = tokens
        .into_iter()
        .find(|t| t.prefix == wanted || t.id.to_string() == wanted.to_ascii_lowercase())
        .ok_or_else(|| AdminError::NotFound(format!("no token with id or prefix '{wanted}'")))?;
    if !store.identity().revoke_token(token.id, Utc::now()).await? {
        return Err(AdminError::Invalid(format!(
            "token {} was already revoked",
            token.prefix
        )));
    }
    store
        .audit()
        .append(vec![actor.record("token.revoke", "token", &token.prefix)])
        .await?;
    Ok(token)
}

/// Hashes off the async threads: argon2 takes tens of milliseconds of CPU.
async fn hash(passwords: &Passwords, password: &SecretString) -> Result<String, AdminError> {
    let hasher = passwords.clone();
    let pw = password.clone();
    tokio::task::spawn_blocking(move || hasher.hash(&pw))
        .await
        .map_err(|e| AdminError::Password(PasswordError::Hash(e.to_string())))?
        .map_err(AdminError::from)
}

/// Issues a new one-time password for `username` (returned, to be shown once): the user must
/// change it at the next sign-in, and every session of theirs ends now.
pub async fn reset_password(
    store: &Store,
    passwords: &Passwords,
    actor: &Actor,
    username: &Username,
) -> Result<SecretString, AdminError> {
    let user = store
        .identity()
        .user_by_name(username)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no user named '{username}'")))?;
    if !user.role.may_sign_in() {
        return Err(AdminError::Invalid(format!(
            "user '{username}' (role {}) cannot sign in; it uses API tokens",
            user.role
        )));
    }
    let password = generate_password();
    let phc = hash(passwords, &password).await?;
    store
        .identity()
        .set_password(user.id, &phc, true, None)
        .await?;
    let mut rec = actor.record("user.password_reset", "user", username.as_str());
    rec.fields = vec!["password".into(), "must_change_password".into()];
    store.audit().append(vec![rec]).await?;
    Ok(password)
}

/// Stores a password the user chose (already checked by the caller), clears the must-change
/// flag and ends the user's other sessions, keeping `keep` (the one making the change).
pub async fn change_password(
    store: &Store,
    passwords: &Passwords,
    user_id: Uuid,
    password: &SecretString,
    keep: Option<&[u8]>,
) -> Result<(), AdminError> {
    let phc = hash(passwords, password).await?;
    if !store
        .identity()
        .set_password(user_id, &phc, false, keep)
        .await?
    {
        return Err(AdminError::NotFound("the user no longer exists".into()));
    }
    Ok(())
}
