use crate::{StoreError, StoreResult};

/// A database transaction that spans contexts. Obtained from [`crate::Store::begin`]; nothing it
/// wrote is visible to others until [`UnitOfWork::commit`]; dropping it rolls back.
pub struct UnitOfWork {
    pub(crate) inner: UowInner,
}

pub(crate) enum UowInner {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl UnitOfWork {
    pub async fn commit(self) -> StoreResult<()> {
        match self.inner {
            UowInner::Sqlite(tx) => tx.commit().await?,
            UowInner::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> StoreResult<()> {
        match self.inner {
            UowInner::Sqlite(tx) => tx.rollback().await?,
            UowInner::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }

    /// The SQLite connection of this unit of work; an error if it belongs to the other backend
    /// (a wiring mistake, never a user error).
    pub(crate) fn sqlite(&mut self) -> StoreResult<&mut sqlx::SqliteConnection> {
        match &mut self.inner {
            UowInner::Sqlite(tx) => Ok(&mut **tx),
            UowInner::Postgres(_) => Err(StoreError::Invalid(
                "a PostgreSQL unit of work was given to the SQLite adapter".into(),
            )),
        }
    }

    pub(crate) fn postgres(&mut self) -> StoreResult<&mut sqlx::PgConnection> {
        match &mut self.inner {
            UowInner::Postgres(tx) => Ok(&mut **tx),
            UowInner::Sqlite(_) => Err(StoreError::Invalid(
                "an SQLite unit of work was given to the PostgreSQL adapter".into(),
            )),
        }
    }
}
