//! Running one piece of sqlx code on either backend.
//!
//! The targeting and programme tables use only SQL that both databases accept (`$n`
//! placeholders, `ON CONFLICT`, partial indexes) and column types that sqlx maps the same way on
//! both (UUIDs, JSON through `Json`, timestamps through `chrono`). Their queries are therefore
//! written once; these macros expand them once per backend, so each copy is type-checked
//! against its own driver. Where the dialects differ (row locks) the SQL text is chosen by
//! [`crate::BackendKind`].

/// The pools of the backend behind a [`crate::Store`] (cheap clones of `Arc`s).
#[derive(Clone)]
pub(crate) enum Pools {
    /// Reads only: writes go through a unit of work on the single writer.
    Sqlite {
        read: sqlx::SqlitePool,
    },
    Postgres(sqlx::PgPool),
}

/// `on_uow!(uow, |c| body)`: `c` is the unit of work's connection.
macro_rules! on_uow {
    ($uow:expr, |$c:ident| $body:expr) => {
        match &mut $uow.inner {
            $crate::uow::UowInner::Sqlite(tx) => {
                let $c: &mut sqlx::SqliteConnection = &mut **tx;
                $body
            }
            $crate::uow::UowInner::Postgres(tx) => {
                let $c: &mut sqlx::PgConnection = &mut **tx;
                $body
            }
        }
    };
}

/// `on_read!(pools, |p| body)`: `p` is a pool for reads.
macro_rules! on_read {
    ($pools:expr, |$p:ident| $body:expr) => {
        match $pools {
            $crate::shared_sql::Pools::Sqlite { read } => {
                let $p: &sqlx::SqlitePool = &read;
                $body
            }
            $crate::shared_sql::Pools::Postgres(pool) => {
                let $p: &sqlx::PgPool = &pool;
                $body
            }
        }
    };
}

pub(crate) use {on_read, on_uow};
