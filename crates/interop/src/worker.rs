//! The background worker: claims jobs from the queue and runs them.

use std::time::Duration;

use inkingi_store::Store;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub concurrency: usize,
    pub poll_interval: Duration,
    pub lease: Duration,
}

/// Runs until `shutdown` is cancelled, then finishes the jobs in hand.
pub async fn run(
    _store: Store,
    _settings: WorkerSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    shutdown.cancelled().await;
    Ok(())
}
