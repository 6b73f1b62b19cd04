//! The background worker: claims due jobs from the queue and runs them.
//!
//! One worker process runs up to `concurrency` jobs at once. It claims as many due jobs as it
//! has free slots, each under a lease that it renews while the job runs (a heartbeat every third
//! of the lease). If the process dies, renewals stop, the lease lapses and any worker claims the
//! job again. Handlers therefore see each job *at least* once, never twice at the same time:
//! side effects carry idempotency keys for the rare repeat after a crash.
//!
//! A failed attempt is retried with exponential backoff and full jitter
//! ([`inkingi_domain::jobs::RetryPolicy`]) until the job's `max_attempts`, then parked as dead for
//! an operator to inspect and replay (`inkingi jobs list --status dead`, `inkingi jobs retry`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use inkingi_domain::jobs::RetryPolicy;
use inkingi_store::jobs::{ClaimedJob, Failure, JobId, JobLease, LeaseCheck};
use inkingi_store::Store;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use crate::probe::{ProbeHandler, ProbeJob};

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Jobs run at once by this process.
    pub concurrency: usize,
    /// How long an idle worker waits before looking for due jobs again.
    pub poll_interval: Duration,
    /// How long a claim lasts without renewal; a dead worker's jobs are retried after this.
    pub lease: Duration,
    /// Backoff between attempts. Its `max_attempts` is unused: each job carries its own.
    pub retry: RetryPolicy,
    /// Succeeded jobs older than this are deleted (hourly); `None` keeps them all.
    pub retain_succeeded: Option<Duration>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            concurrency: 4,
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            retain_succeeded: Some(Duration::from_secs(168 * 3600)),
        }
    }
}

/// Why an attempt failed, and whether trying again could help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// A transient failure (timeout, 5xx, connection refused): retry after a backoff.
    #[error("{0}")]
    Retry(String),
    /// Retrying cannot help (malformed payload, 4xx rejection): park the job as dead at once.
    #[error("{0}")]
    Permanent(String),
    /// Not tried: run it again after this delay without counting the attempt (the system it
    /// calls is known to be down and its circuit breaker is open).
    #[error("deferred {after:?}: {reason}")]
    Defer { after: Duration, reason: String },
}

impl JobError {
    pub fn retry(e: impl std::fmt::Display) -> JobError {
        JobError::Retry(e.to_string())
    }

    pub fn permanent(e: impl std::fmt::Display) -> JobError {
        JobError::Permanent(e.to_string())
    }
}

/// What a handler knows about the job it runs.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub store: Store,
    pub job_id: JobId,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub max_attempts: u32,
    pub worker_id: Arc<str>,
    pub queue: String,
    pub kind: String,
}

/// Runs the jobs of one kind.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// The job kind it runs, e.g. `sms.send`.
    fn kind(&self) -> &'static str;

    async fn run(&self, ctx: &JobContext, payload: serde_json::Value) -> Result<(), JobError>;
}

/// The handlers a worker knows, by kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: BTreeMap<&'static str, Arc<dyn JobHandler>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.handlers.keys()).finish()
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// The handlers every worker has: the `system.probe` self-test, the import of files
    /// uploaded through the API, rescoring households whose data changed, re-certifying their
    /// enrolments, notifications to beneficiaries, DCI callbacks and DCI event notifications.
    pub fn with_builtins() -> Registry {
        let reg = Registry::new()
            .register(ProbeHandler)
            .register(crate::registry_io::upload_job::ImportUploadHandler)
            .register(crate::targeting::RescoreHandler)
            .register(crate::programmes::RecertifyHandler)
            .register(crate::programmes::NotifyBeneficiaryHandler);
        let reg = match crate::dci::callback::CallbackHandler::new() {
            Ok(h) => reg.register(h),
            Err(e) => {
                // Only TLS initialisation can fail here; the worker still runs other jobs.
                tracing::error!(error = %e, "cannot build the HTTP client of DCI callbacks");
                reg
            }
        };
        match crate::dci::notify::NotifyHandler::new() {
            Ok(h) => reg.register(h),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the HTTP client of DCI notifications");
                reg
            }
        }
    }

    /// Adds a handler; a later one for the same kind replaces the earlier.
    pub fn register(mut self, handler: impl JobHandler) -> Registry {
        self.handlers.insert(handler.kind(), Arc::new(handler));
        self
    }

    pub fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.handlers.get(kind).cloned()
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        self.handlers.keys().copied().collect()
    }
}

/// Runs the built-in handlers until `shutdown` is cancelled, then finishes the jobs in hand.
pub async fn run(
    store: Store,
    settings: WorkerSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    run_with(store, settings, Registry::with_builtins(), shutdown).await
}

/// Like [`run`], with the given handlers.
pub async fn run_with(
    store: Store,
    settings: WorkerSettings,
    registry: Registry,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        settings.concurrency > 0,
        "worker concurrency must be at least 1"
    );
    let worker = Worker {
        id: worker_id(),
        store,
        registry,
        settings,
    };
    tracing::info!(
        worker = %worker.id,
        concurrency = worker.settings.concurrency,
        kinds = ?worker.registry.kinds(),
        "worker started"
    );
    let worker = Arc::new(worker);
    let pruner = worker.settings.retain_succeeded.map(|keep| {
        tokio::spawn(prune_periodically(
            worker.store.clone(),
            keep,
            shutdown.clone(),
        ))
    });
    let mut tasks = JoinSet::new();
    let mut failed_claims = 0u32;
    while !shutdown.is_cancelled() {
        reap_finished(&mut tasks);
        let free = worker.settings.concurrency.saturating_sub(tasks.len());
        let mut more_waiting = free == 0;
        if free > 0 {
            match worker
                .store
                .jobs()
                .claim(&worker.id, free as u32, worker.settings.lease)
                .await
            {
                Ok(jobs) => {
                    failed_claims = 0;
                    // A full claim suggests more due jobs: claim again as soon as a slot frees.
                    more_waiting = jobs.len() == free;
                    for job in jobs {
                        let span = job_span(&job, &worker.id);
                        tasks.spawn(worker.clone().run_job(job).instrument(span));
                    }
                }
                Err(e) => {
                    failed_claims = failed_claims.saturating_add(1);
                    tracing::warn!(error = %e, worker = %worker.id, "cannot claim jobs; will try again");
                }
            }
        }
        if more_waiting {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                Some(done) = tasks.join_next() => report_panic(done),
            }
        } else {
            let pause = idle_pause(worker.settings.poll_interval, failed_claims);
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
    if !tasks.is_empty() {
        tracing::info!(
            jobs = tasks.len(),
            "worker stopping: finishing the jobs in hand"
        );
    }
    while let Some(done) = tasks.join_next().await {
        report_panic(done);
    }
    if let Some(pruner) = pruner {
        report_panic(pruner.await);
    }
    tracing::info!(worker = %worker.id, "worker stopped");
    Ok(())
}

/// The poll interval, doubled for each claim that failed in a row (the database is down), up to
/// 32 times and at most a minute, so a dead database is not hammered.
fn idle_pause(poll: Duration, failed_claims: u32) -> Duration {
    let factor = 1u32 << failed_claims.min(5);
    (poll * factor).min(Duration::from_secs(60).max(poll))
}

/// How often a worker prunes. Every worker prunes on its own schedule; concurrent prunes are safe
/// (see [`inkingi_store::jobs::JobStore::prune_succeeded_batch`]) and simply find less to do.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Deletes succeeded jobs older than `keep`: at start, then once per [`PRUNE_EVERY`]. Dead jobs
/// are never pruned: an operator must look at them.
async fn prune_periodically(store: Store, keep: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(PRUNE_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let Some(cutoff) = chrono::Duration::from_std(keep)
            .ok()
            .and_then(|keep| chrono::Utc::now().checked_sub_signed(keep))
        else {
            tracing::warn!(?keep, "retention period out of range; not pruning");
            return;
        };
        match inkingi_store::jobs::prune_succeeded(store.jobs(), cutoff, || shutdown.is_cancelled())
            .await
        {
            Ok(n) => {
                metrics::counter!("jobs_pruned_total").increment(n);
                if n > 0 {
                    tracing::info!(deleted = n, before = %cutoff, "pruned succeeded jobs");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot prune succeeded jobs; will try again"),
        }
    }
}

fn reap_finished(tasks: &mut JoinSet<()>) {
    while let Some(done) = tasks.try_join_next() {
        report_panic(done);
    }
}

fn report_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "a job task ended abnormally");
    }
}

/// Unique per process start: host, process id and a random suffix (process ids are reused).
fn worker_id() -> Arc<str> {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "worker".into());
    let suffix: u32 = rand::random();
    format!("{host}-{}-{suffix:08x}", std::process::id()).into()
}

fn job_span(job: &ClaimedJob, worker: &str) -> tracing::Span {
    tracing::info_span!(
        "job",
        job_id = %job.lease.id,
        kind = %job.kind,
        queue = %job.queue,
        attempt = job.lease.attempt,
        worker = %worker,
    )
}

struct Worker {
    id: Arc<str>,
    store: Store,
    registry: Registry,
    settings: WorkerSettings,
}

/// How an attempt ended, as the `outcome` label of `jobs_run_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    Retry,
    Dead,
    /// The lease lapsed while the job ran; another worker owns it now and nothing was written.
    LeaseLost,
    /// The result could not be written; the lease will lapse and the job run again.
    ReportFailed,
    /// Put back without counting the attempt.
    Deferred,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Retry => "retry",
            Outcome::Dead => "dead",
            Outcome::LeaseLost => "lease_lost",
            Outcome::ReportFailed => "report_failed",
            Outcome::Deferred => "deferred",
        }
    }
}

impl Worker {
    async fn run_job(self: Arc<Self>, job: ClaimedJob) {
        let started = Instant::now();
        let kind = job.kind.clone();
        let outcome = self.attempt(job).await;
        let elapsed = started.elapsed();
        metrics::counter!("jobs_run_total", "kind" => kind.clone(), "outcome" => outcome.as_str())
            .increment(1);
        metrics::histogram!("job_duration_seconds", "kind" => kind).record(elapsed.as_secs_f64());
        tracing::debug!(
            outcome = outcome.as_str(),
            ms = elapsed.as_millis() as u64,
            "job done"
        );
    }

    async fn attempt(&self, job: ClaimedJob) -> Outcome {
        let lease = job.lease.clone();
        let Some(handler) = self.registry.get(&job.kind) else {
            let error = format!(
                "no handler for job kind '{}' in this worker (it runs: {})",
                job.kind,
                self.registry.kinds().join(", ")
            );
            tracing::error!(%error, "job is dead");
            return self.report(&lease, Some((error, Failure::Dead))).await;
        };
        let ctx = JobContext {
            store: self.store.clone(),
            job_id: lease.id,
            attempt: lease.attempt,
            max_attempts: job.max_attempts,
            worker_id: self.id.clone(),
            queue: job.queue,
            kind: job.kind,
        };
        // Its own task, so a panicking handler fails one attempt instead of the worker.
        let task = tokio::spawn(
            async move { handler.run(&ctx, job.payload).await }
                .instrument(tracing::Span::current()),
        );
        let abort = task.abort_handle();
        let Some(joined) = self.renewing_lease(&lease, task).await else {
            abort.abort();
            tracing::warn!("lease lost while running (another worker took the job): abandoned");
            return Outcome::LeaseLost;
        };
        let result = joined.unwrap_or_else(|e| {
            Err(JobError::Retry(format!(
                "the handler for this job panicked: {e}"
            )))
        });
        let failure = match result {
            Ok(()) => None,
            Err(JobError::Defer { after, reason }) => {
                tracing::debug!(%reason, retry_in_ms = after.as_millis() as u64, "job deferred");
                return self.defer(&lease, after, &reason).await;
            }
            Err(JobError::Permanent(error)) => {
                tracing::error!(%error, "job failed permanently: dead");
                Some((error, Failure::Dead))
            }
            Err(JobError::Retry(error)) => Some(self.retry_or_die(&lease, job.max_attempts, error)),
        };
        self.report(&lease, failure).await
    }

    fn retry_or_die(
        &self,
        lease: &JobLease,
        max_attempts: u32,
        error: String,
    ) -> (String, Failure) {
        let policy = RetryPolicy {
            max_attempts,
            ..self.settings.retry
        };
        if policy.may_retry(lease.attempt) {
            let delay = policy.delay(lease.attempt, rand::random::<f64>());
            tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "job failed; will retry");
            (error, Failure::RetryAfter(delay))
        } else {
            let error = format!(
                "gave up after {} attempt(s); last error: {error}",
                lease.attempt
            );
            tracing::error!(%error, "job is dead");
            (error, Failure::Dead)
        }
    }

    /// Awaits `fut`, renewing the lease every third of its length; `None` when the lease was
    /// lost (the job belongs to another worker now).
    async fn renewing_lease<F: Future>(&self, lease: &JobLease, fut: F) -> Option<F::Output> {
        let length = self.settings.lease;
        let every = (length / 3).max(Duration::from_millis(50));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return Some(out),
                _ = ticks.tick() => match self.store.jobs().extend_lease(lease, length).await {
                    Ok(LeaseCheck::Held) => {}
                    Ok(LeaseCheck::Lost) => return None,
                    // Keep running: the next renewal may get through before the lease lapses.
                    Err(e) => tracing::warn!(error = %e, "cannot renew the job's lease"),
                },
            }
        }
    }

    /// Puts the job back without counting the attempt.
    async fn defer(&self, lease: &JobLease, after: Duration, reason: &str) -> Outcome {
        match self.store.jobs().defer(lease, after, reason).await {
            Ok(LeaseCheck::Held) => Outcome::Deferred,
            Ok(LeaseCheck::Lost) => Outcome::LeaseLost,
            Err(e) => {
                tracing::error!(error = %e, "cannot defer the job; it will run again after its lease");
                Outcome::ReportFailed
            }
        }
    }

    /// Writes the attempt's result: success when `failure` is `None`.
    async fn report(&self, lease: &JobLease, failure: Option<(String, Failure)>) -> Outcome {
        let jobs = self.store.jobs();
        let (written, outcome) = match &failure {
            None => (jobs.complete(lease).await, Outcome::Succeeded),
            Some((error, how)) => {
                let outcome = match how {
                    Failure::Dead => Outcome::Dead,
                    Failure::RetryAfter(_) => Outcome::Retry,
                };
                (jobs.fail(lease, error, *how).await, outcome)
            }
        };
        match written {
            Ok(LeaseCheck::Held) => {
                if outcome == Outcome::Succeeded {
                    tracing::info!("job succeeded");
                }
                outcome
            }
            Ok(LeaseCheck::Lost) => {
                tracing::warn!(
                    "lease lost before the result was written (another worker took the job)"
                );
                Outcome::LeaseLost
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write the job's result; it will run again after its lease");
                Outcome::ReportFailed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_pause_backs_off_when_claims_fail() {
        let poll = Duration::from_millis(500);
        assert_eq!(idle_pause(poll, 0), poll);
        assert_eq!(idle_pause(poll, 2), Duration::from_secs(2));
        assert_eq!(idle_pause(poll, 30), Duration::from_secs(16));
        assert_eq!(
            idle_pause(Duration::from_secs(10), 9),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn worker_ids_differ_per_start() {
        assert_ne!(worker_id(), worker_id());
    }
}
