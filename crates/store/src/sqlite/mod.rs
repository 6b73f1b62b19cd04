//! The SQLite adapter: the embedded default. One file in WAL mode; reads go through a pool of
//! read connections, every write through a single writer connection, so writers queue in the
//! process instead of failing with SQLITE_BUSY.

mod areas;
mod audit;
mod changes;
mod children;
mod dci;
mod dci_notify;
mod identity;
mod jobs;
mod registry;
mod registry_bulk;
mod ts;
mod uploads;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::system::{PoolStats, SystemStore};
use crate::uow::{UnitOfWork, UowInner};
use crate::{redact_url, Adapter, ConnectOptions, StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub(crate) struct SqliteAdapter {
    pub(crate) read: SqlitePool,
    pub(crate) write: SqlitePool,
    read_max: u32,
}

impl SqliteAdapter {
    pub(crate) async fn connect(opts: &ConnectOptions) -> StoreResult<SqliteAdapter> {
        let bad = |reason: String| StoreError::BadUrl {
            url: redact_url(&opts.url),
            reason,
        };
        let base = SqliteConnectOptions::from_str(&opts.url)
            .map_err(|e| bad(e.to_string()))?
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable in WAL mode except for the last transactions before a power
            // loss; it is what WAL is designed for and several times faster than FULL.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-65536");
        let path = base.get_filename().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Connect {
                url: redact_url(&opts.url),
                reason: format!("cannot create directory {}: {e}", dir.display()),
            })?;
        }
        let connect_err = |e: sqlx::Error| StoreError::Connect {
            url: redact_url(&opts.url),
            reason: e.to_string(),
        };
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(connect_err)?;
        let read_max = opts.max_connections.max(1);
        let read = SqlitePoolOptions::new()
            .max_connections(read_max)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(base.read_only(true))
            .await
            .map_err(connect_err)?;
        Ok(SqliteAdapter {
            read,
            write,
            read_max,
        })
    }
}

#[async_trait::async_trait]
impl Adapter for SqliteAdapter {
    async fn begin(&self) -> StoreResult<UnitOfWork> {
        // BEGIN IMMEDIATE would be ideal; with a single writer connection a deferred BEGIN
        // cannot deadlock against another writer of this process.
        let tx = self.write.begin().await?;
        Ok(UnitOfWork {
            inner: UowInner::Sqlite(tx),
        })
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.write).await?;
        Ok(())
    }

    fn pools(&self) -> crate::shared_sql::Pools {
        crate::shared_sql::Pools::Sqlite {
            read: self.read.clone(),
        }
    }

    async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

#[async_trait::async_trait]
impl SystemStore for SqliteAdapter {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn pending_migrations(&self) -> StoreResult<Vec<i64>> {
        let applied = applied_versions(&self.read).await?;
        Ok(MIGRATOR
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    async fn unknown_migrations(&self) -> StoreResult<Vec<i64>> {
        let applied = applied_versions(&self.read).await?;
        let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        Ok(applied.into_iter().filter(|v| !known.contains(v)).collect())
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.read.size() + self.write.size(),
            idle: (self.read.num_idle() + self.write.num_idle()) as u32,
            max: self.read_max + 1,
        }
    }

    async fn reference_version(&self, dataset: &str) -> StoreResult<Option<String>> {
        let v: Option<(String,)> =
            sqlx::query_as("SELECT version FROM reference_data WHERE dataset = $1")
                .bind(dataset)
                .fetch_optional(&self.read)
                .await?;
        Ok(v.map(|(v,)| v))
    }
}

async fn applied_versions(pool: &SqlitePool) -> StoreResult<Vec<i64>> {
    let exists: Option<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(pool)
    .await?;
    if exists.is_none() {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64,)> =
        sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|(v,)| v).collect())
}
