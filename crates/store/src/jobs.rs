//! Port of the job queue: durable jobs written in the same transaction as their cause.
//!
//! A job is a row. It is enqueued inside the [`UnitOfWork`] of the change that causes it, so the
//! side effect exists exactly when the change does. Workers claim due jobs under a lease
//! (`locked_by`, `lease_until`, and the attempt number as a fencing token); a worker that dies
//! loses its claim when the lease runs out and the job becomes claimable again. Completing or
//! failing a job checks the caller still holds the lease, so a worker that was presumed dead
//! cannot overwrite the result of the worker that took over.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use inkingi_domain::jobs::{IdempotencyKey, JobName, JobStatus};
use serde::Serialize;
use uuid::Uuid;

use crate::{StoreError, StoreResult, UnitOfWork};

/// The longest `last_error` kept; longer messages are cut (a stack of causes can be long).
pub const MAX_ERROR_LEN: usize = 4000;

/// Internal id of a job (UUIDv7, so ids sort by creation time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct JobId(Uuid);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid job id '{0}': expected a UUID such as 0190f1c2-7a3b-7c4d-8e5f-0123456789ab")]
pub struct InvalidJobId(pub String);

impl JobId {
    pub(crate) fn new() -> JobId {
        JobId(Uuid::now_v7())
    }

    pub(crate) fn from_uuid(id: Uuid) -> JobId {
        JobId(id)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for JobId {
    type Err = InvalidJobId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim())
            .map(JobId)
            .map_err(|_| InvalidJobId(s.chars().take(60).collect()))
    }
}

/// A typed job: its payload type names the kind and carries the defaults it is enqueued with.
/// `NewJob::of(&SendSms { .. })` turns one into a row to enqueue.
pub trait Job: Serialize {
    /// The handler that runs it, e.g. `sms.send`.
    const KIND: &'static str;
    const QUEUE: &'static str = "default";
    /// Higher runs first among due jobs.
    const PRIORITY: i16 = 0;
    const MAX_ATTEMPTS: u32 = 10;

    /// Two enqueues with the same key in the same queue are one job.
    fn idempotency_key(&self) -> Option<String> {
        None
    }
}

/// A job to enqueue. Built with [`NewJob::new`] or [`NewJob::of`], then adjusted.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub(crate) kind: JobName,
    pub(crate) queue: JobName,
    pub(crate) priority: i16,
    pub(crate) payload: serde_json::Value,
    pub(crate) idempotency_key: Option<IdempotencyKey>,
    pub(crate) max_attempts: u32,
    pub(crate) delay: Duration,
}

impl NewJob {
    /// A job of `kind` in the default queue, priority 0, 10 attempts, due now.
    pub fn new(kind: JobName, payload: serde_json::Value) -> NewJob {
        NewJob {
            kind,
            queue: JobName::default_queue(),
            priority: 0,
            payload,
            idempotency_key: None,
            max_attempts: 10,
            delay: Duration::ZERO,
        }
    }

    /// A typed job with the defaults its type declares.
    pub fn of<J: Job>(job: &J) -> StoreResult<NewJob> {
        let invalid = |what: &str, e: &dyn fmt::Display| {
            StoreError::Invalid(format!("job type {}: {what}: {e}", J::KIND))
        };
        let kind = JobName::parse(J::KIND).map_err(|e| invalid("KIND", &e))?;
        let queue = JobName::parse(J::QUEUE).map_err(|e| invalid("QUEUE", &e))?;
        let payload = serde_json::to_value(job).map_err(|e| invalid("payload", &e))?;
        let key = job
            .idempotency_key()
            .map(|k| IdempotencyKey::parse(&k))
            .transpose()
            .map_err(|e| invalid("idempotency key", &e))?;
        let mut new = NewJob::new(kind, payload)
            .queue(queue)
            .priority(J::PRIORITY)
            .max_attempts(J::MAX_ATTEMPTS);
        new.idempotency_key = key;
        Ok(new)
    }

    pub fn queue(mut self, queue: JobName) -> Self {
        self.queue = queue;
        self
    }

    /// Higher runs first among due jobs.
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    pub fn idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// How many times the job may run before it is parked as dead; at least 1.
    pub fn max_attempts(mut self, n: u32) -> Self {
        // The database stores a 32-bit signed integer.
        self.max_attempts = n.clamp(1, i32::MAX as u32);
        self
    }

    /// Due `delay` after the enqueuing transaction runs, instead of at once.
    pub fn run_after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn kind(&self) -> &JobName {
        &self.kind
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRecord {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    pub priority: i16,
    pub payload: serde_json::Value,
    pub idempotency_key: Option<String>,
    pub status: JobStatus,
    /// Attempts started so far (a claim starts one).
    pub attempts: u32,
    pub max_attempts: u32,
    /// When the job is (or was) due.
    pub run_at: DateTime<Utc>,
    /// While running: when the claim lapses unless the worker extends it.
    pub lease_until: Option<DateTime<Utc>>,
    /// The worker that holds it (running) or ran it last (succeeded, dead).
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Proof that a worker holds a job: which worker, and which attempt. The attempt number fences
/// off an older run of the same worker whose lease lapsed and whose job was claimed again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLease {
    pub id: JobId,
    pub worker_id: String,
    pub attempt: u32,
}

/// A job a worker has just claimed.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub lease: JobLease,
    pub queue: String,
    pub kind: String,
    pub priority: i16,
    pub payload: serde_json::Value,
    pub max_attempts: u32,
}

/// What happens to a job whose attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Queue it again, due after this delay. A job out of attempts is parked as dead instead.
    RetryAfter(Duration),
    /// Park it as dead now (a permanent error).
    Dead,
}

/// Whether the caller still held the lease when it reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseCheck {
    Held,
    /// The lease lapsed and the job was requeued or claimed by another worker: nothing was
    /// written.
    Lost,
}

/// Filters for [`JobStore::list`], combined with AND.
#[derive(Debug, Clone)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub queue: Option<String>,
    /// At most this many, newest first.
    pub limit: u32,
}

impl Default for JobFilter {
    fn default() -> Self {
        JobFilter {
            status: None,
            queue: None,
            limit: 50,
        }
    }
}

/// How many jobs one queue has in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobCount {
    pub queue: String,
    pub status: JobStatus,
    pub count: u64,
}

/// The state of the queue as a whole, for metrics and operators.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobStats {
    /// Non-zero counts by queue and status, for every status but `succeeded`. Succeeded jobs are
    /// the whole history of the queue (millions of rows until pruned); counting them on every
    /// scrape would read all of it, while the other states are the small backlog that the
    /// status indexes serve. Workers count successes in `jobs_run_total` instead.
    pub counts: Vec<JobCount>,
    /// For each queue with due jobs waiting: how long the oldest has been due.
    pub oldest_due: Vec<(String, Duration)>,
}

/// One execution of a `system.probe` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeRun {
    pub job_id: JobId,
    pub worker_id: String,
    pub attempt: u32,
    pub ran_at: DateTime<Utc>,
}

/// Where a batch of probe jobs stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// Jobs of the batch found.
    pub jobs: u64,
    pub succeeded: u64,
    pub dead: u64,
    /// Queued or running.
    pub unfinished: u64,
    /// Executions recorded.
    pub runs: u64,
    /// Executions beyond the number each job should have had (see
    /// [`JobStore::probe_report`]): a job that ran twice at once, or again after its worker
    /// crashed mid-run (delivery is at least once). 0 when all is well.
    pub duplicate_runs: u64,
    /// Distinct workers that ran them.
    pub workers: u64,
}

#[async_trait::async_trait]
pub trait JobStore: Send + Sync {
    /// Enqueues inside the caller's transaction: the job commits or rolls back with its cause.
    /// When the queue already has a job with the same idempotency key, returns that job's id and
    /// changes nothing.
    async fn enqueue(&self, uow: &mut UnitOfWork, job: NewJob) -> StoreResult<JobId>;

    /// Enqueues in a transaction of its own.
    async fn enqueue_now(&self, job: NewJob) -> StoreResult<JobId>;

    /// Claims up to `limit` due jobs for `worker_id`, highest priority and longest due first, and
    /// starts an attempt of each under a lease of `lease`. Jobs whose lease lapsed (their worker
    /// died) are first requeued, or parked as dead when that was their last attempt. Safe to call
    /// from any number of processes at once: no job is handed to two of them.
    async fn claim(
        &self,
        worker_id: &str,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedJob>>;

    /// Moves the lease of a running job to `lease` from now (a heartbeat).
    async fn extend_lease(&self, lease: &JobLease, duration: Duration) -> StoreResult<LeaseCheck>;

    /// Marks the job succeeded.
    async fn complete(&self, lease: &JobLease) -> StoreResult<LeaseCheck>;

    /// Records a failed attempt with its error and queues the job again or parks it as dead.
    async fn fail(
        &self,
        lease: &JobLease,
        error: &str,
        failure: Failure,
    ) -> StoreResult<LeaseCheck>;

    /// Puts a running job back in the queue, due after `delay`, without counting the attempt:
    /// the call it makes was not tried (its system's circuit breaker is open), so waiting for
    /// the system to come back must not use up the job's attempts.
    async fn defer(
        &self,
        lease: &JobLease,
        delay: Duration,
        reason: &str,
    ) -> StoreResult<LeaseCheck>;

    /// Jobs newest first.
    async fn list(&self, filter: &JobFilter) -> StoreResult<Vec<JobRecord>>;

    async fn get(&self, id: JobId) -> StoreResult<Option<JobRecord>>;

    /// Runs a dead job again from its first attempt, or a queued job now instead of at its due
    /// time. `NotFound` for an unknown id; `Conflict` for a running or succeeded job.
    async fn retry(&self, id: JobId) -> StoreResult<JobRecord>;

    /// Replays every dead job (of one queue, if given) from its first attempt; returns how many.
    async fn retry_dead(&self, queue: Option<&str>) -> StoreResult<u64>;

    /// Counts of the backlog (see [`JobStats::counts`]) and the age of the oldest due job.
    async fn stats(&self) -> StoreResult<JobStats>;

    /// Deletes up to `batch` succeeded jobs that finished before `finished_before`, with their
    /// probe runs, in one short transaction; returns how many. Dead, queued and running jobs are
    /// never touched. Safe to run from several processes at once: on PostgreSQL a batch skips
    /// rows another pruner holds, on SQLite writers take turns. Loop (see
    /// [`prune_succeeded`]) to prune everything.
    async fn prune_succeeded_batch(
        &self,
        finished_before: DateTime<Utc>,
        batch: u32,
    ) -> StoreResult<u64>;

    /// Records one execution of a `system.probe` job.
    async fn record_probe_run(&self, job: JobId, worker_id: &str, attempt: u32) -> StoreResult<()>;

    /// The executions of one probe job, in order.
    async fn probe_runs(&self, job: JobId) -> StoreResult<Vec<ProbeRun>>;

    /// Where the probe jobs `ids` stand. `expected_runs` is how many executions each should
    /// have (its planned failures plus one, capped by its attempts); runs beyond that count as
    /// duplicates.
    async fn probe_report(&self, ids: &[JobId], expected_runs: u32) -> StoreResult<ProbeReport>;
}

/// Rows deleted per transaction when pruning: small enough that a batch holds its locks (and, on
/// SQLite, the single writer) for milliseconds, so a huge backlog of history never stalls claims.
pub const PRUNE_BATCH: u32 = 1000;

/// Deletes every succeeded job that finished before `finished_before`, batch by batch, until none
/// is left or `stop` says to stop (checked between batches, so shutdown is not held up by a long
/// prune). Returns how many were deleted.
pub async fn prune_succeeded(
    jobs: &dyn JobStore,
    finished_before: DateTime<Utc>,
    stop: impl Fn() -> bool,
) -> StoreResult<u64> {
    let mut total = 0;
    while !stop() {
        let n = jobs
            .prune_succeeded_batch(finished_before, PRUNE_BATCH)
            .await?;
        total += n;
        if n == 0 {
            break;
        }
    }
    Ok(total)
}

/// Cuts an error message to [`MAX_ERROR_LEN`] characters.
pub(crate) fn clip_error(error: &str) -> String {
    match error.char_indices().nth(MAX_ERROR_LEN) {
        Some((at, _)) => format!("{}…", &error[..at]),
        None => error.to_string(),
    }
}

/// The `last_error` of a job whose worker stopped reporting, as a `format()` template for both
/// databases: the attempt number, then the worker id.
pub(crate) const LAPSED_LEASE_FORMAT: &str = "attempt %s: the lease of worker %s lapsed before it \
     reported (the process stopped, or lost the database for longer than the lease)";

pub(crate) fn status_from_db(s: &str) -> StoreResult<JobStatus> {
    JobStatus::parse(s).ok_or_else(|| StoreError::Invalid(format!("unknown job status {s:?}")))
}

pub(crate) fn count_from_db(n: i64, what: &str) -> StoreResult<u32> {
    u32::try_from(n).map_err(|_| StoreError::Invalid(format!("{what} out of range: {n}")))
}

/// The error for a retry that changed nothing.
pub(crate) fn not_retryable(id: JobId, job: Option<JobRecord>) -> StoreError {
    match job {
        None => StoreError::NotFound(format!("no job with id {id}")),
        Some(job) => StoreError::Conflict(format!(
            "job {id} is {}; only dead or queued jobs can be retried",
            job.status
        )),
    }
}

pub(crate) fn stats_from(
    counts: Vec<(String, String, i64)>,
    oldest: Vec<(String, f64)>,
) -> StoreResult<JobStats> {
    let counts = counts
        .into_iter()
        .map(|(queue, status, count)| {
            Ok(JobCount {
                queue,
                status: status_from_db(&status)?,
                count: count.max(0) as u64,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let oldest_due = oldest
        .into_iter()
        .map(|(queue, secs)| (queue, Duration::from_secs_f64(secs.max(0.0))))
        .collect();
    Ok(JobStats { counts, oldest_due })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_parse_and_print() {
        let id = JobId::new();
        assert_eq!(id.to_string().parse::<JobId>(), Ok(id));
        let e = "42".parse::<JobId>().expect_err("not a UUID").to_string();
        assert!(e.contains("'42'") && e.contains("UUID"), "{e}");
    }

    #[test]
    fn clips_long_errors_on_a_char_boundary() {
        let long = "é".repeat(MAX_ERROR_LEN + 10);
        let clipped = clip_error(&long);
        assert_eq!(clipped.chars().count(), MAX_ERROR_LEN + 1);
        assert_eq!(clip_error("short"), "short");
    }
}
