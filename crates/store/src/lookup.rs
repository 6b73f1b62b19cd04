//! What the in-memory registration-time lookup index reads: every current person, page by
//! page, and the registry events after a position, with the people they touched.
//!
//! The index (in the server) is built from [`LookupFeed::current_people`] and kept fresh by
//! following [`LookupFeed::events_after`] from [`LookupFeed::start_position`]: an event says
//! only *who* changed; the follower re-reads those people with [`LookupFeed::people`], so
//! applying an event twice, or one already reflected in the pages it built from, is harmless.
//!
//! A person is *current* (findable) while they belong to a household and have no date of
//! death; a removed member, a member merged away or a dead person is not.

use sqlx::QueryBuilder;
use uuid::Uuid;

use crate::dci_notify::EventPos;
use crate::shared_sql::{on_read, Pools};
use crate::{Store, StoreError, StoreResult};

/// A person as the lookup index holds them.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexPerson {
    pub id: Uuid,
    pub village_code: Option<String>,
    pub given_name: String,
    pub family_name: String,
    /// `F` or `M`.
    pub sex: String,
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    pub national_id: Option<String>,
    pub phone: Option<String>,
    /// In a household and alive: findable.
    pub current: bool,
}

/// A registry event reduced to what it touched.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRef {
    pub pos: EventPos,
    /// `household` or `member`.
    pub entity: String,
    pub entity_id: Uuid,
    pub household_id: Uuid,
}

type PersonRow = (
    Uuid,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

const PERSON_COLS: &str = "SELECT id, village_code, given_name, family_name, sex, birth_date, \
     national_id, phone, (household_id IS NOT NULL AND died_on IS NULL) AS current \
     FROM registry_people";

fn person(r: PersonRow) -> IndexPerson {
    let (id, village_code, given_name, family_name, sex, birth_date, national_id, phone, current) =
        r;
    IndexPerson {
        id,
        village_code,
        given_name,
        family_name,
        sex,
        birth_date,
        national_id,
        phone,
        current,
    }
}

/// The reads of the lookup index; see [`Store::lookup_feed`].
pub struct LookupFeed<'a> {
    pub(crate) store: &'a Store,
}

impl LookupFeed<'_> {
    fn pools(&self) -> Pools {
        self.store.adapter.pools()
    }

    /// Up to `limit` current people with ids above `after`, by id (keyset pages over the
    /// primary key: each page is one short query, and memory holds one page).
    pub async fn current_people(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<IndexPerson>> {
        let after = after.unwrap_or(Uuid::nil());
        let sql = format!(
            "{PERSON_COLS} WHERE id > $1 AND household_id IS NOT NULL AND died_on IS NULL \
             ORDER BY id LIMIT $2"
        );
        let rows: Vec<PersonRow> = on_read!(self.pools(), |p| {
            sqlx::query_as(&sql)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
        });
        Ok(rows.into_iter().map(person).collect())
    }

    /// The people with these ids and everyone now in these households, current or not.
    pub async fn people(&self, ids: &[Uuid], households: &[Uuid]) -> StoreResult<Vec<IndexPerson>> {
        if ids.is_empty() && households.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<PersonRow> = on_read!(self.pools(), |p| {
            let mut q = QueryBuilder::new(PERSON_COLS);
            q.push(" WHERE id IN (");
            let mut list = q.separated(", ");
            // An empty list is not valid SQL; the nil id matches nobody.
            list.push_bind(Uuid::nil());
            for id in ids {
                list.push_bind(*id);
            }
            q.push(") OR household_id IN (");
            let mut list = q.separated(", ");
            list.push_bind(Uuid::nil());
            for id in households {
                list.push_bind(*id);
            }
            q.push(")");
            q.build_query_as().fetch_all(p).await?
        });
        Ok(rows.into_iter().map(person).collect())
    }

    /// Where a follower starting now must begin: every event at or before it is visible to
    /// any later read; events after it may or may not be (they are applied again, harmlessly).
    pub async fn start_position(&self) -> StoreResult<EventPos> {
        match self.pools() {
            Pools::Sqlite { read } => {
                let a: i64 =
                    sqlx::query_scalar("SELECT coalesce(max(rowid), 0) FROM registry_events")
                        .fetch_one(&read)
                        .await?;
                Ok(EventPos { a, b: 0 })
            }
            Pools::Postgres(pool) => {
                // Transactions below the snapshot's xmin have all ended, so their events are
                // visible to the pages read next; later ones are read as events.
                let xmin: String =
                    sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                        .fetch_one(&pool)
                        .await?;
                let xmin: i64 = xmin
                    .parse()
                    .map_err(|_| StoreError::Invalid(format!("snapshot xmin '{xmin}'")))?;
                Ok(EventPos {
                    a: xmin - 1,
                    b: i64::MAX,
                })
            }
        }
    }

    /// The position of the newest committed event (what a reader who just wrote waits for).
    pub async fn latest_position(&self) -> StoreResult<EventPos> {
        match self.pools() {
            Pools::Sqlite { .. } => self.start_position().await,
            Pools::Postgres(pool) => {
                let row: Option<(String, i64)> = sqlx::query_as(
                    "SELECT txid::text, outbox_seq FROM registry_events WHERE txid IS NOT NULL \
                     ORDER BY txid DESC, outbox_seq DESC LIMIT 1",
                )
                .fetch_optional(&pool)
                .await?;
                match row {
                    None => Ok(EventPos::default()),
                    Some((txid, seq)) => Ok(EventPos {
                        a: parse_txid(&txid)?,
                        b: seq,
                    }),
                }
            }
        }
    }

    /// Up to `limit` committed events after `pos`, in commit order. On PostgreSQL only events
    /// of transactions older than every running one, as the DCI dispatcher reads them: no event
    /// can commit behind them later.
    pub async fn events_after(&self, pos: EventPos, limit: u32) -> StoreResult<Vec<EventRef>> {
        match self.pools() {
            Pools::Sqlite { read } => {
                let rows: Vec<(i64, String, Uuid, Uuid)> = sqlx::query_as(
                    "SELECT rowid, entity, entity_id, household_id FROM registry_events \
                     WHERE rowid > $1 ORDER BY rowid LIMIT $2",
                )
                .bind(pos.a)
                .bind(i64::from(limit))
                .fetch_all(&read)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(a, entity, entity_id, household_id)| EventRef {
                        pos: EventPos { a, b: 0 },
                        entity,
                        entity_id,
                        household_id,
                    })
                    .collect())
            }
            Pools::Postgres(pool) => {
                let rows: Vec<(String, i64, String, Uuid, Uuid)> = sqlx::query_as(
                    "SELECT txid::text, outbox_seq, entity, entity_id, household_id \
                     FROM registry_events \
                     WHERE txid IS NOT NULL AND (txid, outbox_seq) > ($1::text::xid8, $2) \
                     AND txid < pg_snapshot_xmin(pg_current_snapshot()) \
                     ORDER BY txid, outbox_seq LIMIT $3",
                )
                .bind(pos.a.to_string())
                .bind(pos.b)
                .bind(i64::from(limit))
                .fetch_all(&pool)
                .await?;
                rows.into_iter()
                    .map(|(txid, b, entity, entity_id, household_id)| {
                        Ok(EventRef {
                            pos: EventPos {
                                a: parse_txid(&txid)?,
                                b,
                            },
                            entity,
                            entity_id,
                            household_id,
                        })
                    })
                    .collect()
            }
        }
    }
}

fn parse_txid(txid: &str) -> StoreResult<i64> {
    txid.parse()
        .map_err(|_| StoreError::Invalid(format!("registry_events.txid '{txid}'")))
}
