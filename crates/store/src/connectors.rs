//! Cursors of incremental pulls from outside systems (schema: migration
//! `0023_connector_cursors`): per connector and stream, the high-water mark of the source's
//! update time taken so far, and how many pages at exactly that time were taken (a full page
//! of equal times cannot move the mark). A cursor is written in the unit of work that stores
//! the page it passes, and only forward.

use chrono::Utc;

use crate::shared_sql::{on_read, on_uow, Pools};
use crate::{Store, StoreResult, UnitOfWork};

/// How far a stream has been taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The source's update time, as the source writes it (fixed width, so it sorts as text).
    pub position: String,
    /// The next page to ask at `position` (1 once the position has moved).
    pub page: u32,
}

/// The `connector_cursors` table, reached through [`Store::connector_cursors`].
pub struct ConnectorCursors<'a> {
    pub(crate) store: &'a Store,
}

impl ConnectorCursors<'_> {
    fn pools(&self) -> Pools {
        self.store.adapter.pools()
    }

    /// The cursor of a stream; `None` before its first page.
    pub async fn get(&self, connector: &str, stream: &str) -> StoreResult<Option<Cursor>> {
        let row: Option<(String, i64)> = on_read!(self.pools(), |p| {
            sqlx::query_as(
                "SELECT position, page FROM connector_cursors WHERE connector = $1 AND stream = $2",
            )
            .bind(connector)
            .bind(stream)
            .fetch_optional(p)
            .await?
        });
        Ok(row.map(|(position, page)| Cursor {
            position,
            page: u32::try_from(page.max(1)).unwrap_or(u32::MAX),
        }))
    }

    /// Moves a stream's cursor to `to` inside `uow`; a cursor already further is kept (two
    /// syncs racing never move it back).
    pub async fn advance(
        &self,
        uow: &mut UnitOfWork,
        connector: &str,
        stream: &str,
        to: &Cursor,
    ) -> StoreResult<()> {
        let now = Utc::now();
        on_uow!(uow, |conn| {
            sqlx::query(
                "INSERT INTO connector_cursors (connector, stream, position, page, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connector, stream) DO UPDATE SET \
                 position = excluded.position, page = excluded.page, \
                 updated_at = excluded.updated_at \
                 WHERE connector_cursors.position < excluded.position \
                 OR (connector_cursors.position = excluded.position \
                 AND connector_cursors.page < excluded.page)",
            )
            .bind(connector)
            .bind(stream)
            .bind(&to.position)
            .bind(i64::from(to.page))
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }
}

impl Store {
    /// Cursors of incremental pulls (DHIS2).
    pub fn connector_cursors(&self) -> ConnectorCursors<'_> {
        ConnectorCursors { store: self }
    }
}
