//! The PostgreSQL adapter: production and national scale. A pool of connections; job claims use
//! `FOR UPDATE SKIP LOCKED` so any number of worker processes can share one queue.

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
mod uploads;

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Connection as _;

use crate::system::{PoolStats, SystemStore};
use crate::uow::{UnitOfWork, UowInner};
use crate::{redact_url, Adapter, ConnectOptions, StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub(crate) struct PgAdapter {
    pub(crate) pool: PgPool,
    max: u32,
}

impl PgAdapter {
    pub(crate) async fn connect(opts: &ConnectOptions) -> StoreResult<PgAdapter> {
        let options = PgConnectOptions::from_str(&opts.url)
            .map_err(|e| StoreError::BadUrl {
                url: redact_url(&opts.url),
                reason: e.to_string(),
            })?
            .application_name("inkingi");
        // One direct connection first: the pool would retry until its acquire timeout, while an
        // operator starting a node wants to hear at once that the database is unreachable.
        let connect_err = |e: sqlx::Error| StoreError::Connect {
            url: redact_url(&opts.url),
            reason: e.to_string(),
        };
        let probe = sqlx::PgConnection::connect_with(&options)
            .await
            .map_err(connect_err)?;
        probe.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(connect_err)?;
        Ok(PgAdapter {
            pool,
            max: opts.max_connections.max(1),
        })
    }
}

#[async_trait::async_trait]
impl Adapter for PgAdapter {
    async fn begin(&self) -> StoreResult<UnitOfWork> {
        let tx = self.pool.begin().await?;
        Ok(UnitOfWork {
            inner: UowInner::Postgres(tx),
        })
    }

    async fn migrate(&self) -> StoreResult<()> {
        // sqlx takes an advisory lock, so several nodes starting at once migrate only once.
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    fn pools(&self) -> crate::shared_sql::Pools {
        crate::shared_sql::Pools::Postgres(self.pool.clone())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait::async_trait]
impl SystemStore for PgAdapter {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn pending_migrations(&self) -> StoreResult<Vec<i64>> {
        let applied = applied_versions(&self.pool).await?;
        Ok(MIGRATOR
            .iter()
            .map(|m| m.version)
            .filter(|v| !applied.contains(v))
            .collect())
    }

    async fn unknown_migrations(&self) -> StoreResult<Vec<i64>> {
        let applied = applied_versions(&self.pool).await?;
        let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        Ok(applied.into_iter().filter(|v| !known.contains(v)).collect())
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.max,
        }
    }

    async fn reference_version(&self, dataset: &str) -> StoreResult<Option<String>> {
        let v: Option<(String,)> =
            sqlx::query_as("SELECT version FROM reference_data WHERE dataset = $1")
                .bind(dataset)
                .fetch_optional(&self.pool)
                .await?;
        Ok(v.map(|(v,)| v))
    }
}

async fn applied_versions(pool: &PgPool) -> StoreResult<Vec<i64>> {
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
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
