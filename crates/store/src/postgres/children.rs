//! The children store on PostgreSQL (statements shared with SQLite in `children_sql`).

use chrono::{DateTime, Utc};

use super::PgAdapter;

fn enc_ts(t: DateTime<Utc>) -> DateTime<Utc> {
    t
}

fn dec_ts(r: &sqlx::postgres::PgRow, col: &str) -> crate::StoreResult<DateTime<Utc>> {
    Ok(sqlx::Row::try_get(r, col)?)
}

fn dec_ts_opt(r: &sqlx::postgres::PgRow, col: &str) -> crate::StoreResult<Option<DateTime<Utc>>> {
    Ok(sqlx::Row::try_get(r, col)?)
}

children_impl!(PgAdapter, sqlx::Postgres, postgres, |s| &s.pool);

linkage_impl!(PgAdapter, sqlx::Postgres, postgres, |s| &s.pool);
