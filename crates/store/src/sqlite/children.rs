//! The children store on SQLite (statements shared with PostgreSQL in `children_sql`).

use chrono::{DateTime, Utc};

use super::ts::{parse_ts, ts};
use super::SqliteAdapter;

fn enc_ts(t: DateTime<Utc>) -> String {
    ts(t)
}

fn dec_ts(r: &sqlx::sqlite::SqliteRow, col: &str) -> crate::StoreResult<DateTime<Utc>> {
    parse_ts(&sqlx::Row::try_get::<String, _>(r, col)?)
}

fn dec_ts_opt(r: &sqlx::sqlite::SqliteRow, col: &str) -> crate::StoreResult<Option<DateTime<Utc>>> {
    sqlx::Row::try_get::<Option<String>, _>(r, col)?
        .as_deref()
        .map(parse_ts)
        .transpose()
}

children_impl!(SqliteAdapter, sqlx::Sqlite, sqlite, |s| &s.read);

linkage_impl!(SqliteAdapter, sqlx::Sqlite, sqlite, |s| &s.read);
