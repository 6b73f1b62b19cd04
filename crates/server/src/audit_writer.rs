//! Group commit for the audit log. Requests hand their records to one writer task per process,
//! which appends whatever has queued up in a single transaction, so the chain's lock is taken
//! once per batch instead of once per request.
//!
//! Two ways in:
//! - [`AuditWriter::append`] waits until the records are committed. Sign-ins, refusals of
//!   credentials and administration use it: nothing is answered before it is recorded.
//! - [`AuditWriter::record_reads`] queues reads of personal data and returns at once; the
//!   records are committed with the next batch (within milliseconds). A read then costs no wait
//!   on the single SQLite writer or the PostgreSQL chain lock, which at 50 concurrent clients
//!   was most of a lookup's time.
//!
//! The trade-off of queued reads, and what keeps it safe:
//! - Nothing queued is lost on a clean shutdown: [`AuditWriter::flush`] (called by
//!   [`crate::serve`] after the last request) returns once everything queued before it is
//!   committed. A crash (power loss, `kill -9`) can lose the reads of the last batch or two:
//!   records that were queued but not yet committed, at most the queue's capacity.
//! - A request's outcome never depends on its own write racing: it is answered once its
//!   records are in the queue. If a batch fails, the writer keeps its queued reads and retries
//!   them with backoff, and while it fails every further read is refused with 503 before any
//!   data is returned (fail closed), as a synchronous append would have done.
//! - The queue is bounded: when the writer falls behind, requests wait for room (back
//!   pressure) instead of memory growing without bound.
//! - Readers of the log in this process ([`crate::audit`]) flush first, so an entry queued by
//!   an earlier request is visible to a later query.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use inkingi_domain::audit::AuditRecord;
use inkingi_store::Store;
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;

/// Most records appended in one transaction.
const MAX_BATCH: usize = 1_000;
/// Queued submissions (each one request's records) before requests wait for room.
const QUEUE: usize = 4 * MAX_BATCH;
/// Waits between retries of a failed batch of queued reads.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(5);

struct Pending {
    records: Vec<AuditRecord>,
    /// `None` for queued reads: nobody waits for them.
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// A handle to the writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    tx: mpsc::Sender<Pending>,
    /// Set while the last batch failed and queued reads wait for a retry.
    failing: Arc<AtomicBool>,
}

fn unavailable() -> ApiError {
    ApiError::unavailable("the audit log cannot be written; try again shortly")
}

impl AuditWriter {
    /// Spawns the writer task on the current Tokio runtime. It ends when every handle is gone,
    /// after committing what is queued.
    pub fn start(store: Store) -> AuditWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        let failing = Arc::new(AtomicBool::new(false));
        tokio::spawn(run(store, rx, failing.clone()));
        AuditWriter { tx, failing }
    }

    /// Appends `records` and waits for the commit. If the log cannot be written the caller
    /// gets 503 and must not hand out what it read.
    pub async fn append(&self, records: Vec<AuditRecord>) -> Result<(), ApiError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending {
                records,
                done: Some(done),
            })
            .await
            .map_err(|_| unavailable())?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "audit append failed");
                Err(unavailable())
            }
            Err(_) => Err(unavailable()),
        }
    }

    /// Queues reads of personal data for the next batch and returns without waiting for the
    /// commit (see the module documentation). 503 while the log is failing: the caller must
    /// then not hand out what it read.
    pub async fn record_reads(&self, records: Vec<AuditRecord>) -> Result<(), ApiError> {
        if self.failing.load(Ordering::Acquire) {
            return Err(unavailable());
        }
        if records.is_empty() {
            return Ok(());
        }
        self.tx
            .send(Pending {
                records,
                done: None,
            })
            .await
            .map_err(|_| unavailable())
    }

    /// Returns once every record queued before the call is committed (or the log failed).
    pub async fn flush(&self) -> Result<(), ApiError> {
        self.append(Vec::new()).await
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Pending>, failing: Arc<AtomicBool>) {
    // Queued reads of a failed batch, committed before anything newer.
    let mut retry: Vec<AuditRecord> = Vec::new();
    let mut backoff = RETRY_MIN;
    loop {
        let mut batch = Vec::new();
        if retry.is_empty() {
            match rx.recv().await {
                Some(p) => batch.push(p),
                None => return,
            }
        }
        let mut size = retry.len() + batch.iter().map(|p| p.records.len()).sum::<usize>();
        while size < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => {
                    size += p.records.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        // Retried reads first, then the batch in queue order; `queued` marks the records
        // nobody waits for, which must survive a failure.
        let mut records = std::mem::take(&mut retry);
        let mut queued = vec![true; records.len()];
        for p in &mut batch {
            queued.extend(std::iter::repeat_n(p.done.is_none(), p.records.len()));
            records.append(&mut p.records);
        }
        let result = if records.is_empty() {
            // Only flushes: everything before them is already committed.
            Ok(())
        } else {
            store
                .audit()
                .append(records.clone())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        metrics::histogram!("audit_append_batch_size").record(size as f64);
        if let Err(e) = &result {
            failing.store(true, Ordering::Release);
            retry = records
                .into_iter()
                .zip(queued)
                .filter_map(|(r, q)| q.then_some(r))
                .collect();
            tracing::error!(error = %e, kept = retry.len(), "audit batch failed; queued reads kept for retry");
        }
        for p in batch {
            if let Some(done) = p.done {
                // The request may have gone away (client disconnected); its entries are kept.
                let _ = done.send(result.clone());
            }
        }
        if result.is_ok() {
            failing.store(false, Ordering::Release);
            backoff = RETRY_MIN;
        } else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RETRY_MAX);
        }
    }
}
