use thiserror::Error;

/// Errors of the storage port. Adapters map driver errors into these, so callers (the HTTP error
/// type, the CLI) can answer 404/409/503 without knowing which database is underneath.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot connect to the database at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("database URL '{url}' is not supported: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// An update against a version that is no longer current (optimistic concurrency).
    #[error("{what} was changed by someone else: expected version {expected}, now {current}")]
    Stale {
        what: String,
        expected: i64,
        current: i64,
    },
    #[error("invalid data: {0}")]
    Invalid(String),
    /// A search that would examine more rows than it may (the message says which bound).
    #[error("too broad: {0}")]
    TooBroad(String),
    #[error("migration failed: {0}")]
    Migrate(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound("row".into()),
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            sqlx::Error::Database(db)
                if db.is_foreign_key_violation() || db.is_check_violation() =>
            {
                StoreError::Invalid(db.message().to_string())
            }
            _ => StoreError::Database(e),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A database URL with its password replaced, safe to print in logs and error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_password() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
