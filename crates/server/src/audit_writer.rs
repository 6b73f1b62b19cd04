//! Group commit for the audit log. Requests hand their records to one writer task per process,
//! which appends whatever has queued up in a single transaction, so the chain's lock is taken
//! once per batch instead of once per request. Each request still waits until its own entries
//! are committed: nothing is answered before it is recorded.

use inkingi_domain::audit::AuditRecord;
use inkingi_store::Store;
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;

/// Most records appended in one transaction.
const MAX_BATCH: usize = 1_000;

struct Pending {
    records: Vec<AuditRecord>,
    done: oneshot::Sender<Result<(), String>>,
}

/// A handle to the writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    tx: mpsc::Sender<Pending>,
}

impl AuditWriter {
    /// Spawns the writer task on the current Tokio runtime. It ends when every handle is gone.
    pub fn start(store: Store) -> AuditWriter {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(store, rx));
        AuditWriter { tx }
    }

    /// Appends `records` and waits for the commit. If the log cannot be written the caller
    /// gets 503 and must not hand out what it read.
    pub async fn append(&self, records: Vec<AuditRecord>) -> Result<(), ApiError> {
        let unavailable =
            || ApiError::unavailable("the audit log cannot be written; try again shortly");
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending { records, done })
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
}

async fn run(store: Store, mut rx: mpsc::Receiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let mut size = batch[0].records.len();
        while size < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => {
                    size += p.records.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let records: Vec<AuditRecord> = batch
            .iter_mut()
            .flat_map(|p| std::mem::take(&mut p.records))
            .collect();
        let result = store
            .audit()
            .append(records)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        metrics::histogram!("audit_append_batch_size").record(size as f64);
        for p in batch {
            // The request may have gone away (client disconnected); its entries are kept.
            let _ = p.done.send(result.clone());
        }
    }
}
