//! Facts blocks (schema `0033_targeting_facts`): the active households with their current
//! members, packed about [`BLOCK`] households to a row in household id order (binary, see
//! [`crate::facts_codec`]), so that scoring and simulation read a few thousand rows instead of
//! having the database build every household's members as JSON.
//!
//! The registry tables stay the truth. The blocks are rebuilt from them in one pass when they
//! are missing, of another [`FACTS_VERSION`], or invalidated (SQL seeders that bypass events);
//! otherwise they are brought up to date by re-packing only the blocks holding households named
//! by registry events after the stored position. Every whole-registry pass refreshes them
//! first, so a pass sees every change committed before it started (on PostgreSQL: every change
//! of a transaction older than the oldest one still running, as the event followers read them).

use std::collections::BTreeSet;

use chrono::Utc;
use inkingi_domain::identity::AreaScope;
use rayon::prelude::*;
use sqlx::QueryBuilder;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::dci_notify::EventPos;
use crate::facts_codec;
use crate::shared_sql::{on_read, on_uow, Pools};
use crate::simulation::{decode, RawInput};
use crate::targeting::{ScoringInput, Targeting};
use crate::uow::UnitOfWork;
use crate::{StoreError, StoreResult};

/// Version of what a block holds; blocks stored under another version are rebuilt. Bump it
/// when the packed content or its meaning changes (not for a model or form change: blocks hold
/// the registry's own values, from which facts are derived at each pass).
pub const FACTS_VERSION: i64 = 1;

/// Households per block when packing; a re-packed block keeps up to `2 × BLOCK - 1`
/// households before it is split.
pub const BLOCK: usize = 512;

/// Blocks handed to the pass workers at a time (about 8,000 households).
const BLOCKS_PER_BATCH: usize = 16;

/// Blocks written per multi-row insert.
const BLOCKS_PER_INSERT: usize = 16;

/// Events read per page while catching up.
const EVENT_PAGE: u32 = 10_000;

/// PostgreSQL advisory lock taken while the blocks are refreshed (several nodes may pass).
const PG_LOCK: i64 = 0x7461_7267_6661_6374;

/// One refresh at a time in this process (several passes may start together).
static REFRESH: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What bringing the facts blocks up to date did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactsRefresh {
    /// Nothing changed since the last refresh.
    Fresh,
    /// Only the blocks of changed households were re-packed.
    Updated { households: u64, blocks: u64 },
    /// Every block was packed again from the registry tables.
    Rebuilt { households: u64, blocks: u64 },
}

/// A packed block ready to store.
struct Packed {
    start: Uuid,
    households: usize,
    data: Vec<u8>,
}

/// Cuts the households of one id range into blocks: the first starts at the range's start,
/// every later one at its first household. Full blocks are cut while at least two blocks'
/// worth is pending, so the last block of a range holds fewer than `2 × BLOCK` households.
struct Packer {
    range_start: Uuid,
    /// An empty range still leaves a (empty) block when it is the first of the registry.
    keep_empty: bool,
    pending: Vec<ScoringInput>,
    households: u64,
    blocks: u64,
}

impl Packer {
    /// The blocks ready to store; with `all`, the rest too (the range is read).
    fn cut(&mut self, all: bool) -> Vec<Packed> {
        let mut chunks: Vec<Vec<ScoringInput>> = Vec::new();
        while self.pending.len() >= 2 * BLOCK {
            let rest = self.pending.split_off(BLOCK);
            chunks.push(std::mem::replace(&mut self.pending, rest));
        }
        let first_empty = self.keep_empty && self.blocks == 0 && chunks.is_empty();
        if all && (!self.pending.is_empty() || first_empty) {
            chunks.push(std::mem::take(&mut self.pending));
        }
        let starts: Vec<Uuid> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| match c.first() {
                Some(h) if self.blocks > 0 || i > 0 => h.household_id,
                _ => self.range_start,
            })
            .collect();
        self.blocks += chunks.len() as u64;
        chunks
            .par_iter()
            .zip(starts)
            .map(|(c, start)| Packed {
                start,
                households: c.len(),
                data: facts_codec::encode(c),
            })
            .collect()
    }
}

async fn insert_blocks(uow: &mut UnitOfWork, blocks: &[Packed]) -> StoreResult<()> {
    let now = Utc::now();
    for chunk in blocks.chunks(BLOCKS_PER_INSERT) {
        on_uow!(uow, |c| {
            let mut qb = QueryBuilder::new(
                "INSERT INTO targeting_fact_blocks (start_id, households, data, packed_at) ",
            );
            qb.push_values(chunk, |mut b, p| {
                b.push_bind(p.start)
                    .push_bind(p.households as i64)
                    .push_bind(p.data.clone())
                    .push_bind(now);
            });
            qb.build().execute(&mut *c).await?;
        });
    }
    Ok(())
}

async fn write_state(uow: &mut UnitOfWork, pos: EventPos) -> StoreResult<()> {
    let now = Utc::now();
    on_uow!(uow, |c| {
        sqlx::query(
            "INSERT INTO targeting_facts_state (id, facts_version, pos_a, pos_b, built_at) \
             VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET \
             facts_version = excluded.facts_version, pos_a = excluded.pos_a, \
             pos_b = excluded.pos_b, built_at = excluded.built_at",
        )
        .bind(FACTS_VERSION)
        .bind(pos.a)
        .bind(pos.b)
        .bind(now)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

/// Marks the facts blocks stale, so the next pass rebuilds them: for writers that change the
/// registry tables without registry events (the SQL seeders).
pub(crate) async fn invalidate(uow: &mut UnitOfWork) -> StoreResult<()> {
    on_uow!(uow, |c| {
        sqlx::query("DELETE FROM targeting_facts_state")
            .execute(&mut *c)
            .await?;
    });
    Ok(())
}

impl Targeting<'_> {
    /// Brings the facts blocks up to date with the registry (see the module documentation).
    pub async fn refresh_facts(&self) -> StoreResult<FactsRefresh> {
        self.refresh(false).await
    }

    /// Packs every block again from the registry tables.
    pub async fn rebuild_facts(&self) -> StoreResult<FactsRefresh> {
        self.refresh(true).await
    }

    async fn refresh(&self, force: bool) -> StoreResult<FactsRefresh> {
        let _one = REFRESH.lock().await;
        let mut uow = self.store.begin().await?;
        let state: Option<(i64, i64, i64)> = on_uow!(uow, |c| {
            if matches!(self.store.adapter.pools(), Pools::Postgres(_)) {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(PG_LOCK)
                    .execute(&mut *c)
                    .await?;
            }
            sqlx::query_as(
                "SELECT facts_version, pos_a, pos_b FROM targeting_facts_state WHERE id = 1",
            )
            .fetch_optional(&mut *c)
            .await?
        });
        let done = match state {
            Some((v, a, b)) if v == FACTS_VERSION && !force => {
                self.catch_up(&mut uow, EventPos { a, b }).await?
            }
            _ => None,
        };
        let done = match done {
            Some(d) => d,
            None => self.rebuild(&mut uow).await?,
        };
        uow.commit().await?;
        Ok(done)
    }

    /// Re-packs the blocks of the households named by events after `pos`; `None` when a
    /// rebuild is the better (or only) way.
    async fn catch_up(
        &self,
        uow: &mut UnitOfWork,
        mut pos: EventPos,
    ) -> StoreResult<Option<FactsRefresh>> {
        let feed = self.store.lookup_feed();
        let mut changed = BTreeSet::new();
        loop {
            let page = feed.events_after(pos, EVENT_PAGE).await?;
            let Some(last) = page.last() else { break };
            pos = last.pos;
            changed.extend(page.iter().map(|e| e.household_id));
        }
        if changed.is_empty() {
            return Ok(Some(FactsRefresh::Fresh));
        }
        let starts: Vec<Uuid> = on_uow!(uow, |c| {
            sqlx::query_scalar("SELECT start_id FROM targeting_fact_blocks ORDER BY start_id")
                .fetch_all(&mut *c)
                .await?
        });
        if starts.first() != Some(&Uuid::nil()) {
            return Ok(None);
        }
        let touched: BTreeSet<usize> = changed
            .iter()
            .map(|h| starts.partition_point(|s| s <= h).saturating_sub(1))
            .collect();
        // Re-packing most blocks one by one costs more than one ordered pass.
        if touched.len() > 8 && touched.len() * 4 > starts.len() {
            return Ok(None);
        }
        let (mut households, mut blocks) = (0, 0);
        for i in touched {
            let from = starts[i];
            let to = starts.get(i + 1).copied();
            on_uow!(uow, |c| {
                sqlx::query("DELETE FROM targeting_fact_blocks WHERE start_id = $1")
                    .bind(from)
                    .execute(&mut *c)
                    .await?;
            });
            let (h, b) = self.pack_range(uow, from, to).await?;
            households += h;
            blocks += b;
        }
        write_state(uow, pos).await?;
        Ok(Some(FactsRefresh::Updated { households, blocks }))
    }

    async fn rebuild(&self, uow: &mut UnitOfWork) -> StoreResult<FactsRefresh> {
        // Taken before reading: events after it are applied again next time, harmlessly.
        let pos = self.store.lookup_feed().start_position().await?;
        on_uow!(uow, |c| {
            sqlx::query("DELETE FROM targeting_fact_blocks")
                .execute(&mut *c)
                .await?;
        });
        let (households, blocks) = self.pack_range(uow, Uuid::nil(), None).await?;
        write_state(uow, pos).await?;
        Ok(FactsRefresh::Rebuilt { households, blocks })
    }

    /// Packs the active households with ids in `from..to` into blocks (the first starting at
    /// `from`) and stores them; the old blocks of the range must be gone.
    async fn pack_range(
        &self,
        uow: &mut UnitOfWork,
        from: Uuid,
        to: Option<Uuid>,
    ) -> StoreResult<(u64, u64)> {
        let (tx, mut rx) = mpsc::channel::<Vec<RawInput>>(2);
        let read = async {
            let r = self
                .read_raw(&AreaScope::national(), Some((from, to)), &tx)
                .await;
            drop(tx);
            r
        };
        let pack = async {
            let mut p = Packer {
                range_start: from,
                keep_empty: from.is_nil(),
                pending: Vec::new(),
                households: 0,
                blocks: 0,
            };
            while let Some(raw) = rx.recv().await {
                let inputs = raw
                    .into_par_iter()
                    .map(decode)
                    .collect::<StoreResult<Vec<_>>>()?;
                p.households += inputs.len() as u64;
                p.pending.extend(inputs);
                let packed = p.cut(false);
                insert_blocks(uow, &packed).await?;
            }
            let packed = p.cut(true);
            insert_blocks(uow, &packed).await?;
            Ok::<_, StoreError>((p.households, p.blocks))
        };
        let (read, packed) = tokio::join!(read, pack);
        let packed = packed?;
        read?;
        Ok(packed)
    }

    /// Runs `work` over every active household in `scope` with its current members, batch by
    /// batch, on a blocking thread (use rayon inside `work`); returns the final state. Reads
    /// the facts blocks, refreshed first; blocks are decoded on every core.
    pub async fn for_each_batch<S, F>(&self, scope: &AreaScope, init: S, work: F) -> StoreResult<S>
    where
        S: Send + 'static,
        F: Fn(&mut S, Vec<ScoringInput>) -> StoreResult<()> + Send + 'static,
    {
        self.refresh_facts().await?;
        let (tx, mut rx) = mpsc::channel::<Vec<Vec<u8>>>(4);
        let worker_scope = scope.clone();
        let worker = tokio::task::spawn_blocking(move || -> StoreResult<S> {
            let mut state = init;
            while let Some(blocks) = rx.blocking_recv() {
                let parts = blocks
                    .par_iter()
                    .map(|b| facts_codec::decode(b, &worker_scope))
                    .collect::<StoreResult<Vec<_>>>()?;
                work(&mut state, parts.into_iter().flatten().collect())?;
            }
            Ok(state)
        });
        let read = self.read_blocks(&tx).await;
        drop(tx);
        let state = worker
            .await
            .map_err(|e| StoreError::Invalid(format!("registry pass worker: {e}")))?;
        read?;
        state
    }

    async fn read_blocks(&self, tx: &mpsc::Sender<Vec<Vec<u8>>>) -> StoreResult<()> {
        use futures::TryStreamExt;
        on_read!(self.store.adapter.pools(), |p| {
            let mut rows = sqlx::query_scalar::<_, Vec<u8>>(
                "SELECT data FROM targeting_fact_blocks ORDER BY start_id",
            )
            .fetch(p);
            let mut batch = Vec::with_capacity(BLOCKS_PER_BATCH);
            while let Some(data) = rows.try_next().await? {
                batch.push(data);
                if batch.len() == BLOCKS_PER_BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BLOCKS_PER_BATCH));
                    if tx.send(full).await.is_err() {
                        // The worker stopped (it failed): its error is the one reported.
                        return Ok(());
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch).await;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inkingi_domain::areas::AreaCode;
    use serde_json::Map;

    fn households(n: usize) -> Vec<ScoringInput> {
        let village = AreaCode::parse("41010101").expect("area");
        (0..n)
            .map(|_| Uuid::now_v7())
            .map(|household_id| ScoringInput {
                household_id,
                village: village.clone(),
                answers: Map::new(),
                members: Vec::new(),
            })
            .collect()
    }

    fn packer(start: Uuid, pending: Vec<ScoringInput>) -> Packer {
        Packer {
            range_start: start,
            keep_empty: start.is_nil(),
            pending,
            households: 0,
            blocks: 0,
        }
    }

    #[test]
    fn ranges_are_cut_into_blocks_that_start_at_their_first_household() {
        let hs = households(2 * BLOCK + 300);
        let ids: Vec<Uuid> = hs.iter().map(|h| h.household_id).collect();
        let mut p = packer(Uuid::nil(), hs);
        let early = p.cut(false);
        assert_eq!(early.len(), 1, "cut while two blocks' worth is pending");
        assert_eq!((early[0].start, early[0].households), (Uuid::nil(), BLOCK));
        let rest = p.cut(true);
        assert_eq!(rest.len(), 1, "the last block keeps fewer than 2 × BLOCK");
        assert_eq!(
            (rest[0].start, rest[0].households),
            (ids[BLOCK], BLOCK + 300)
        );
        assert_eq!(p.blocks, 2);
    }

    #[test]
    fn a_grown_block_is_split_and_an_emptied_one_dropped() {
        let start = Uuid::now_v7();
        let hs = households(2 * BLOCK);
        let second = hs[BLOCK].household_id;
        let blocks = packer(start, hs).cut(true);
        let starts: Vec<(Uuid, usize)> = blocks.iter().map(|b| (b.start, b.households)).collect();
        assert_eq!(starts, vec![(start, BLOCK), (second, BLOCK)]);
        assert!(packer(start, Vec::new()).cut(true).is_empty());
        // The registry's first block stays, empty, so every id has a block.
        let first = packer(Uuid::nil(), Vec::new()).cut(true);
        assert_eq!((first.len(), first[0].households), (1, 0));
    }
}
