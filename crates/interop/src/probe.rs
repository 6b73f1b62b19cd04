//! `system.probe`: the built-in diagnostic job. Each execution records a row in
//! `job_probe_runs`, sleeps, then fails (with a retryable error) while its attempt number is at
//! most `fail_times`. An operator runs a batch of them (`inkingi jobs probe`) to check the whole
//! pipeline (enqueue, claim, backoff, completion), and the tests use them to prove no job runs
//! twice at once.

use std::time::Duration;

use inkingi_store::jobs::Job;
use serde::{Deserialize, Serialize};

use crate::worker::{JobContext, JobError, JobHandler};

/// The payload of a `system.probe` job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeJob {
    /// How long each execution sleeps, after recording itself.
    #[serde(default)]
    pub sleep_ms: u64,
    /// How many attempts fail before one succeeds.
    #[serde(default)]
    pub fail_times: u32,
}

impl ProbeJob {
    pub const KIND: &'static str = "system.probe";
    /// Longer sleeps are refused: a probe is a test, not a way to hold a worker slot for hours.
    pub const MAX_SLEEP_MS: u64 = 10 * 60 * 1000;
}

impl Job for ProbeJob {
    const KIND: &'static str = ProbeJob::KIND;
    const QUEUE: &'static str = "system";
}

/// Runs `system.probe` jobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProbeHandler;

#[async_trait::async_trait]
impl JobHandler for ProbeHandler {
    fn kind(&self) -> &'static str {
        ProbeJob::KIND
    }

    async fn run(&self, ctx: &JobContext, payload: serde_json::Value) -> Result<(), JobError> {
        let probe: ProbeJob = serde_json::from_value(payload).map_err(|e| {
            JobError::Permanent(format!(
                "bad {} payload: {e} (expected {{\"sleep_ms\": N, \"fail_times\": N}})",
                ProbeJob::KIND
            ))
        })?;
        if probe.sleep_ms > ProbeJob::MAX_SLEEP_MS {
            return Err(JobError::Permanent(format!(
                "bad {} payload: sleep_ms {} is above the limit of {}",
                ProbeJob::KIND,
                probe.sleep_ms,
                ProbeJob::MAX_SLEEP_MS
            )));
        }
        ctx.store
            .jobs()
            .record_probe_run(ctx.job_id, &ctx.worker_id, ctx.attempt)
            .await
            .map_err(JobError::retry)?;
        tokio::time::sleep(Duration::from_millis(probe.sleep_ms)).await;
        if ctx.attempt <= probe.fail_times {
            return Err(JobError::Retry(format!(
                "planned probe failure {} of {}",
                ctx.attempt, probe.fail_times
            )));
        }
        Ok(())
    }
}
