//! Health of the storage itself: reachability, migrations, pool use.

use crate::StoreResult;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// The most the pool may open.
    pub max: u32,
}

#[async_trait::async_trait]
pub trait SystemStore: Send + Sync {
    /// One round trip to the database.
    async fn ping(&self) -> StoreResult<()>;
    /// Versions of migrations embedded in this binary that the database has not applied.
    async fn pending_migrations(&self) -> StoreResult<Vec<i64>>;
    /// Versions recorded as applied in the database that this binary does not know (a newer
    /// binary migrated it): serving on it would be unsafe.
    async fn unknown_migrations(&self) -> StoreResult<Vec<i64>>;
    /// Connection pool use, for `/metrics`.
    fn pool_stats(&self) -> PoolStats;
    /// The version of a reference data set (e.g. `areas`) loaded into the database.
    async fn reference_version(&self, dataset: &str) -> StoreResult<Option<String>>;
}
