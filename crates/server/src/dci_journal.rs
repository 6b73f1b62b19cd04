//! Group commit for what synchronous DCI requests write: the message id (replay protection) and
//! the transaction with each request's outcome (for `txn/status`). A search by ID reads a few
//! rows; taking the database's writer for each request (SQLite has one writer connection;
//! PostgreSQL syncs each commit) was most of its time under 50 concurrent clients. Here one
//! writer task per process appends whatever has queued up in one transaction, and each request
//! waits for that commit before it answers, so nothing is answered that is not recorded.
//!
//! Replay protection under concurrency:
//! - [`Journal::claim`] keeps the (client, message id) pairs in flight in this process: a second
//!   message with the same id while the first is being searched or committed is refused at once,
//!   before any reading;
//! - the unique key on (client, message_id) is the final word: an entry whose id was committed
//!   before (by this process earlier, or by another node) is refused by the batch that tries to
//!   write it, and its request answers `rjct.message_id.duplicate` without disclosing anything.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use inkingi_store::dci::JournalEntry;
use inkingi_store::Store;
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;

/// Most entries committed in one transaction.
const MAX_BATCH: usize = 500;
/// Entries waiting for the writer before requests wait for room.
const QUEUE: usize = 4 * MAX_BATCH;

struct Pending {
    entry: JournalEntry,
    done: oneshot::Sender<Result<bool, String>>,
}

type InFlight = Arc<Mutex<HashSet<(String, String)>>>;

/// A handle to the writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct Journal {
    tx: mpsc::Sender<Pending>,
    in_flight: InFlight,
}

/// A message id held in flight by one request; released when dropped (after the commit, or
/// when the request ends without one).
#[derive(Debug)]
pub struct Claim {
    in_flight: InFlight,
    key: (String, String),
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut set) = self.in_flight.lock() {
            set.remove(&self.key);
        }
    }
}

fn unavailable() -> ApiError {
    ApiError::unavailable("the DCI journal cannot be written; try again shortly")
}

impl Journal {
    /// Spawns the writer task on the current Tokio runtime; it ends when every handle is gone.
    pub fn start(store: Store) -> Journal {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rx));
        Journal {
            tx,
            in_flight: Arc::default(),
        }
    }

    /// Holds `message_id` of `client` for one request; `None` when another request of this
    /// process holds it (a replay racing its original).
    pub fn claim(&self, client: &str, message_id: &str) -> Option<Claim> {
        let key = (client.to_string(), message_id.to_string());
        let mut set = self.in_flight.lock().ok()?;
        if !set.insert(key.clone()) {
            return None;
        }
        Some(Claim {
            in_flight: self.in_flight.clone(),
            key,
        })
    }

    /// Queues `entry` and waits for its batch's commit: true when it was recorded, false when
    /// its message id had been recorded before (a replay; nothing of it was written).
    pub async fn record(&self, entry: JournalEntry) -> Result<bool, ApiError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending { entry, done })
            .await
            .map_err(|_| unavailable())?;
        match wait.await {
            Ok(Ok(fresh)) => Ok(fresh),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "DCI journal write failed");
                Err(unavailable())
            }
            Err(_) => Err(unavailable()),
        }
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        metrics::histogram!("dci_journal_batch_size").record(batch.len() as f64);
        let entries: Vec<JournalEntry> = batch.iter().map(|p| p.entry.clone()).collect();
        match write(&store, &entries).await {
            Ok(fresh) => {
                for (p, f) in batch.into_iter().zip(fresh) {
                    // The request may have gone away (client disconnected); its entry stays.
                    let _ = p.done.send(Ok(f));
                }
            }
            Err(e) => {
                // One bad entry must not fail the requests it happened to share a batch with:
                // write each on its own, so only the bad one fails.
                tracing::warn!(error = %e, entries = batch.len(), "DCI journal batch failed; writing its entries one by one");
                for p in batch {
                    let one = write(&store, std::slice::from_ref(&p.entry)).await;
                    let _ = p
                        .done
                        .send(one.map(|f| f.first().copied().unwrap_or(false)));
                }
            }
        }
    }
}

async fn write(store: &Store, entries: &[JournalEntry]) -> Result<Vec<bool>, String> {
    let mut uow = store.begin().await.map_err(|e| e.to_string())?;
    let fresh = store
        .dci()
        .record_journal(&mut uow, entries)
        .await
        .map_err(|e| e.to_string())?;
    uow.commit().await.map_err(|e| e.to_string())?;
    Ok(fresh)
}
