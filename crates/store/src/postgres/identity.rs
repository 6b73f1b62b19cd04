use chrono::{DateTime, Utc};
use inkingi_domain::identity::Username;
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use super::PgAdapter;
use crate::identity::{
    parse_stored_user_parts, scopes_from_stored, scopes_to_stored, FailedLogin, IdentityStore,
    NewSession, NewToken, NewUser, SessionRecord, TokenInfo, TokenRecord, User, UserCredentials,
};
use crate::StoreResult;

const USER_COLS: &str = "u.id, u.username, u.role, u.scope, u.disabled, u.failed_logins, \
                         u.locked_until, u.created_at, u.last_login_at, \
                         u.must_change_password";

fn user_from(row: &PgRow) -> StoreResult<User> {
    let (username, role, scope) = parse_stored_user_parts(
        row.try_get("username")?,
        row.try_get("role")?,
        row.try_get("scope")?,
    )?;
    Ok(User {
        id: row.try_get("id")?,
        username,
        role,
        scope,
        disabled: row.try_get("disabled")?,
        failed_logins: row.try_get("failed_logins")?,
        locked_until: row.try_get("locked_until")?,
        created_at: row.try_get("created_at")?,
        last_login_at: row.try_get("last_login_at")?,
        must_change_password: row.try_get("must_change_password")?,
    })
}

const TOKEN_COLS: &str = "t.id AS t_id, t.prefix, t.hash, t.scopes, t.area_scope, \
                          t.created_at AS t_created_at, t.expires_at, t.revoked_at, \
                          t.last_used_at, u.username, u.role, u.scope, u.disabled";

fn token_from(row: &PgRow) -> StoreResult<TokenRecord> {
    let (username, role, user_scope) = parse_stored_user_parts(
        row.try_get("username")?,
        row.try_get("role")?,
        row.try_get("scope")?,
    )?;
    let area: &str = row.try_get("area_scope")?;
    let area_scope = inkingi_domain::identity::AreaScope::parse(area)
        .map_err(|e| crate::StoreError::Invalid(format!("stored token area scope: {e}")))?;
    Ok(TokenRecord {
        info: TokenInfo {
            id: row.try_get("t_id")?,
            prefix: row.try_get("prefix")?,
            username,
            role,
            scopes: scopes_from_stored(row.try_get("scopes")?)?,
            area_scope,
            created_at: row.try_get("t_created_at")?,
            expires_at: row.try_get("expires_at")?,
            revoked_at: row.try_get("revoked_at")?,
            last_used_at: row.try_get("last_used_at")?,
            user_disabled: row.try_get("disabled")?,
        },
        hash: row.try_get("hash")?,
        user_scope,
    })
}

#[async_trait::async_trait]
impl IdentityStore for PgAdapter {
    async fn create_user(&self, new: &NewUser) -> StoreResult<User> {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO users (id, username, role, scope, password_hash, created_at, \
             must_change_password) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(new.username.as_str())
        .bind(new.role.as_str())
        .bind(new.scope.to_stored())
        .bind(&new.password_hash)
        .bind(Utc::now())
        .bind(new.must_change_password)
        .execute(&self.pool)
        .await
        .map_err(|e| taken(e, &new.username))?;
        self.user_by_name(&new.username)
            .await?
            .ok_or_else(|| crate::StoreError::NotFound(format!("user {}", new.username)))
    }

    async fn user_by_name(&self, username: &Username) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users u WHERE u.username = $1"
        ))
        .bind(username.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from).transpose()
    }

    async fn credentials(&self, username: &Username) -> StoreResult<Option<UserCredentials>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS}, u.password_hash FROM users u WHERE u.username = $1"
        ))
        .bind(username.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(UserCredentials {
            user: user_from(&row)?,
            password_hash: row.try_get("password_hash")?,
        }))
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users u ORDER BY u.username"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from).collect()
    }

    async fn set_user_disabled(&self, username: &Username, disabled: bool) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE users SET disabled = $1 WHERE username = $2")
            .bind(disabled)
            .bind(username.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if disabled {
            sqlx::query(
                "DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = $1)",
            )
            .bind(username.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn record_login_failure(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        threshold: u32,
        lock_for: chrono::Duration,
    ) -> StoreResult<FailedLogin> {
        let row = sqlx::query(
            // A lock that has run out starts the count afresh, so one typo after a lockout
            // does not lock the account again at once.
            "UPDATE users SET \
             failed_logins = CASE WHEN locked_until <= $4 THEN 1 ELSE failed_logins + 1 END, \
             locked_until = CASE \
               WHEN locked_until <= $4 THEN CASE WHEN $2 <= 1 THEN $3 END \
               WHEN failed_logins + 1 >= $2 THEN $3 \
               ELSE locked_until END \
             WHERE id = $1 RETURNING failed_logins, locked_until",
        )
        .bind(user_id)
        .bind(i64::from(threshold))
        .bind(now + lock_for)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(FailedLogin {
            failed_logins: row.try_get("failed_logins")?,
            locked_until: row.try_get("locked_until")?,
        })
    }

    async fn record_login_success(&self, user_id: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = $2 \
             WHERE id = $1",
        )
        .bind(user_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        must_change: bool,
        keep: Option<&[u8]>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE users SET password_hash = $2, must_change_password = $3 WHERE id = $1",
        )
        .bind(user_id)
        .bind(password_hash)
        .bind(must_change)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        // Whoever knew the old password must not keep a way in.
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash IS DISTINCT FROM $2")
            .bind(user_id)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn create_session(&self, new: &NewSession) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, last_seen_at, \
             expires_at, client_addr) VALUES ($1, $2, $3, $4, $4, $5, $6)",
        )
        .bind(&new.id_hash)
        .bind(new.user_id)
        .bind(&new.csrf_token)
        .bind(new.created_at)
        .bind(new.expires_at)
        .bind(&new.client_addr)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn session(&self, id_hash: &[u8]) -> StoreResult<Option<SessionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS}, s.id_hash, s.csrf_token, s.created_at AS s_created_at, \
             s.last_seen_at, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = $1"
        ))
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SessionRecord {
            id_hash: row.try_get("id_hash")?,
            csrf_token: row.try_get("csrf_token")?,
            created_at: row.try_get("s_created_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
            expires_at: row.try_get("expires_at")?,
            user: user_from(&row)?,
        }))
    }

    async fn touch_session(&self, id_hash: &[u8], now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
            .bind(id_hash)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &[u8]) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_sessions(
        &self,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at < $2")
            .bind(now)
            .bind(idle_cutoff)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn create_token(&self, new: &NewToken) -> StoreResult<TokenInfo> {
        sqlx::query(
            "INSERT INTO api_tokens (id, prefix, hash, user_id, scopes, area_scope, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new.id)
        .bind(&new.prefix)
        .bind(&new.hash)
        .bind(new.user_id)
        .bind(scopes_to_stored(&new.scopes))
        .bind(new.area_scope.to_stored())
        .bind(new.created_at)
        .bind(new.expires_at)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.id = $1"
        ))
        .bind(new.id)
        .fetch_one(&self.pool)
        .await?;
        Ok(token_from(&row)?.info)
    }

    async fn token_by_prefix(&self, prefix: &str) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.prefix = $1"
        ))
        .bind(prefix)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from).transpose()
    }

    async fn touch_token(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn revoke_token(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenInfo>> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
             ORDER BY t.created_at, t.prefix"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| token_from(r).map(|t| t.info)).collect()
    }
}

/// A unique violation on insert means the username is taken; say so by name.
fn taken(e: sqlx::Error, username: &Username) -> crate::StoreError {
    match crate::StoreError::from(e) {
        crate::StoreError::Conflict(_) => {
            crate::StoreError::Conflict(format!("username '{username}' is already taken"))
        }
        other => other,
    }
}
