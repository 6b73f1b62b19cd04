//! `registry.import`: imports files uploaded through the API (`POST /api/v1/imports`). The files
//! wait in the database, so any worker node can run the job; progress is written back to the
//! upload row every few batches for `GET /api/v1/imports/{id}` to show.
//!
//! Running it twice is harmless: imported households carry source keys, so a retried job
//! (after a crash or a lost lease) skips what the first attempt committed.

use std::io::Cursor;
use std::time::{Duration, Instant};

use inkingi_store::jobs::Job;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::import::{import_registry, ImportOptions, ImportProgress};
use crate::worker::{JobContext, JobError, JobHandler};

/// The payload: which upload to import, and who asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportUploadJob {
    pub upload_id: Uuid,
    pub actor: String,
}

impl Job for ImportUploadJob {
    const KIND: &'static str = "registry.import";
    const QUEUE: &'static str = "registry";
    const MAX_ATTEMPTS: u32 = 5;

    fn idempotency_key(&self) -> Option<String> {
        Some(self.upload_id.to_string())
    }
}

/// Runs `registry.import` jobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportUploadHandler;

/// Progress is written at most this often: often enough for a page that polls, rarely enough
/// not to compete with the import's own writes.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

fn progress_json(p: &ImportProgress) -> serde_json::Value {
    json!({
        "bytes": p.bytes,
        "households_written": p.households_written,
        "people_written": p.people_written,
        "households_rejected": p.households_rejected,
    })
}

#[async_trait::async_trait]
impl JobHandler for ImportUploadHandler {
    fn kind(&self) -> &'static str {
        ImportUploadJob::KIND
    }

    async fn run(&self, ctx: &JobContext, payload: serde_json::Value) -> Result<(), JobError> {
        let job: ImportUploadJob = serde_json::from_value(payload)
            .map_err(|e| JobError::Permanent(format!("bad registry.import payload: {e}")))?;
        let uploads = ctx.store.uploads();
        let Some((source, households, members)) = uploads
            .upload_files(job.upload_id)
            .await
            .map_err(JobError::retry)?
        else {
            return Err(JobError::Permanent(format!("no upload {}", job.upload_id)));
        };
        uploads
            .set_upload_progress(job.upload_id, "running", &json!({"bytes": 0}))
            .await
            .map_err(JobError::retry)?;
        let mut opts = ImportOptions::new(source);
        opts.actor = job.actor.clone();
        // Progress is collected synchronously and written between batches by this task.
        let latest = std::sync::Arc::new(std::sync::Mutex::new(None::<ImportProgress>));
        let sink = latest.clone();
        let mut last = Instant::now();
        let mut on_progress = move |p: &ImportProgress| {
            if last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                if let Ok(mut slot) = sink.lock() {
                    *slot = Some(p.clone());
                }
            }
        };
        let writer = spawn_progress_writer(ctx.store.clone(), job.upload_id, latest.clone());
        let mut report = Vec::new();
        let result = import_registry(
            &ctx.store,
            Cursor::new(households),
            Cursor::new(members),
            &mut report,
            &opts,
            &mut on_progress,
        )
        .await;
        writer.abort();
        let (status, summary) = match &result {
            Ok(s) => ("done", s.to_string()),
            Err(e) => ("failed", e.to_string()),
        };
        uploads
            .finish_upload(job.upload_id, status, &summary, &report)
            .await
            .map_err(JobError::retry)?;
        match result {
            Ok(_) => Ok(()),
            // Bad files will not get better on a retry.
            Err(e) => Err(JobError::Permanent(e.to_string())),
        }
    }
}

fn spawn_progress_writer(
    store: inkingi_store::Store,
    id: Uuid,
    latest: std::sync::Arc<std::sync::Mutex<Option<ImportProgress>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        loop {
            tick.tick().await;
            let p = latest.lock().ok().and_then(|mut s| s.take());
            if let Some(p) = p {
                if let Err(e) = store
                    .uploads()
                    .set_upload_progress(id, "running", &progress_json(&p))
                    .await
                {
                    tracing::warn!(error = %e, upload = %id, "cannot record import progress");
                }
            }
        }
    })
}
