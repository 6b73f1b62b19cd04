//! The job queue on SQLite. Every write goes through the adapter's single writer connection, and
//! SQLite lets one writer at a time hold the database, so a claim (`UPDATE … RETURNING` in one
//! transaction) can never hand a job to two workers, even from two processes.
//!
//! Times are stored as fixed-width RFC 3339 UTC text (`2025-01-31T08:00:00.000000Z`), which sorts
//! as it compares, so `run_at <= now` works on the text.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use inkingi_domain::jobs::JobStatus;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use super::SqliteAdapter;
use crate::jobs::{
    clip_error, count_from_db, not_retryable, stats_from, status_from_db, ClaimedJob, Failure,
    JobFilter, JobId, JobLease, JobRecord, JobStats, JobStore, LeaseCheck, NewJob, ProbeReport,
    ProbeRun, LAPSED_LEASE_FORMAT,
};
use crate::{StoreError, StoreResult, UnitOfWork};

const COLUMNS: &str = "id, queue, kind, priority, payload, idempotency_key, status, attempts, \
    max_attempts, run_at, lease_until, locked_by, last_error, created_at, updated_at, finished_at";

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn later(d: Duration) -> StoreResult<String> {
    let d = chrono::Duration::from_std(d)
        .map_err(|_| StoreError::Invalid(format!("duration out of range: {d:?}")))?;
    now()
        .checked_add_signed(d)
        .map(ts)
        .ok_or_else(|| StoreError::Invalid(format!("time out of range: now + {d}")))
}

fn parse_ts(s: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Invalid(format!("bad timestamp {s:?} in jobs: {e}")))
}

fn opt_ts(s: Option<String>) -> StoreResult<Option<DateTime<Utc>>> {
    s.as_deref().map(parse_ts).transpose()
}

fn parse_id(s: &str) -> StoreResult<JobId> {
    Uuid::parse_str(s)
        .map(JobId::from_uuid)
        .map_err(|e| StoreError::Invalid(format!("bad job id {s:?}: {e}")))
}

fn parse_payload(s: &str) -> StoreResult<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Invalid(format!("bad job payload: {e}")))
}

fn record(row: &SqliteRow) -> StoreResult<JobRecord> {
    Ok(JobRecord {
        id: parse_id(row.try_get("id")?)?,
        queue: row.try_get("queue")?,
        kind: row.try_get("kind")?,
        priority: row.try_get("priority")?,
        payload: parse_payload(row.try_get("payload")?)?,
        idempotency_key: row.try_get("idempotency_key")?,
        status: status_from_db(row.try_get("status")?)?,
        attempts: count_from_db(row.try_get("attempts")?, "attempts")?,
        max_attempts: count_from_db(row.try_get("max_attempts")?, "max_attempts")?,
        run_at: parse_ts(row.try_get("run_at")?)?,
        lease_until: opt_ts(row.try_get("lease_until")?)?,
        locked_by: row.try_get("locked_by")?,
        last_error: row.try_get("last_error")?,
        created_at: parse_ts(row.try_get("created_at")?)?,
        updated_at: parse_ts(row.try_get("updated_at")?)?,
        finished_at: opt_ts(row.try_get("finished_at")?)?,
    })
}

fn claimed(row: &SqliteRow, worker_id: &str) -> StoreResult<ClaimedJob> {
    Ok(ClaimedJob {
        lease: JobLease {
            id: parse_id(row.try_get("id")?)?,
            worker_id: worker_id.to_string(),
            attempt: count_from_db(row.try_get("attempts")?, "attempts")?,
        },
        queue: row.try_get("queue")?,
        kind: row.try_get("kind")?,
        priority: row.try_get("priority")?,
        payload: parse_payload(row.try_get("payload")?)?,
        max_attempts: count_from_db(row.try_get("max_attempts")?, "max_attempts")?,
    })
}

fn lease_check(rows_affected: u64) -> LeaseCheck {
    if rows_affected == 0 {
        LeaseCheck::Lost
    } else {
        LeaseCheck::Held
    }
}

/// A JSON array of ids, for `IN (SELECT value FROM json_each(?))`: one parameter for any number
/// of ids.
fn id_array(ids: &[JobId]) -> String {
    serde_json::Value::from(ids.iter().map(ToString::to_string).collect::<Vec<_>>()).to_string()
}

pub(super) async fn insert(conn: &mut SqliteConnection, job: NewJob) -> StoreResult<JobId> {
    let key = job.idempotency_key.as_ref().map(|k| k.as_str().to_string());
    let created = ts(now());
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO jobs (id, queue, kind, priority, payload, idempotency_key, status, attempts, \
             max_attempts, run_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, $7, $8, $9, $9) \
         ON CONFLICT (queue, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
         RETURNING id",
    )
    .bind(JobId::new().to_string())
    .bind(job.queue.as_str())
    .bind(job.kind.as_str())
    .bind(job.priority)
    .bind(job.payload.to_string())
    .bind(&key)
    .bind(i64::from(job.max_attempts))
    .bind(later(job.delay)?)
    .bind(&created)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = inserted {
        return parse_id(&id);
    }
    let existing: String =
        sqlx::query_scalar("SELECT id FROM jobs WHERE queue = $1 AND idempotency_key = $2")
            .bind(job.queue.as_str())
            .bind(&key)
            .fetch_one(&mut *conn)
            .await?;
    parse_id(&existing)
}

/// Requeues (or parks, after the last attempt) running jobs whose lease lapsed.
async fn reap(conn: &mut SqliteConnection, now: &str) -> StoreResult<()> {
    sqlx::query(
        "UPDATE jobs SET \
             status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END, \
             finished_at = CASE WHEN attempts >= max_attempts THEN $1 END, \
             locked_by = CASE WHEN attempts >= max_attempts THEN locked_by END, \
             last_error = format($2, attempts, coalesce(locked_by, '?')), \
             lease_until = NULL, updated_at = $1 \
         WHERE status = 'running' AND lease_until < $1",
    )
    .bind(now)
    .bind(LAPSED_LEASE_FORMAT)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl JobStore for SqliteAdapter {
    async fn enqueue(&self, uow: &mut UnitOfWork, job: NewJob) -> StoreResult<JobId> {
        insert(uow.sqlite()?, job).await
    }

    async fn enqueue_now(&self, job: NewJob) -> StoreResult<JobId> {
        let mut tx = self.write.begin().await?;
        let id = insert(&mut tx, job).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn claim(
        &self,
        worker_id: &str,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<ClaimedJob>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = ts(now());
        let lease_until = later(lease)?;
        let mut tx = self.write.begin().await?;
        reap(&mut tx, &now).await?;
        let rows = sqlx::query(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = $1, \
                 lease_until = $2, updated_at = $3 \
             WHERE id IN (SELECT id FROM jobs WHERE status = 'queued' AND run_at <= $3 \
                          ORDER BY priority DESC, run_at, id LIMIT $4) \
             RETURNING id, queue, kind, priority, payload, attempts, max_attempts",
        )
        .bind(worker_id)
        .bind(&lease_until)
        .bind(&now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut jobs = rows
            .iter()
            .map(|row| claimed(row, worker_id))
            .collect::<StoreResult<Vec<_>>>()?;
        jobs.sort_by_key(|j| std::cmp::Reverse(j.priority));
        Ok(jobs)
    }

    async fn extend_lease(&self, lease: &JobLease, duration: Duration) -> StoreResult<LeaseCheck> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_until = $4, updated_at = $5 \
             WHERE id = $1 AND status = 'running' AND locked_by = $2 AND attempts = $3",
        )
        .bind(lease.id.to_string())
        .bind(&lease.worker_id)
        .bind(i64::from(lease.attempt))
        .bind(later(duration)?)
        .bind(ts(now()))
        .execute(&self.write)
        .await?;
        Ok(lease_check(done.rows_affected()))
    }

    async fn complete(&self, lease: &JobLease) -> StoreResult<LeaseCheck> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'succeeded', lease_until = NULL, finished_at = $4, \
                 updated_at = $4 \
             WHERE id = $1 AND status = 'running' AND locked_by = $2 AND attempts = $3",
        )
        .bind(lease.id.to_string())
        .bind(&lease.worker_id)
        .bind(i64::from(lease.attempt))
        .bind(ts(now()))
        .execute(&self.write)
        .await?;
        Ok(lease_check(done.rows_affected()))
    }

    async fn fail(
        &self,
        lease: &JobLease,
        error: &str,
        failure: Failure,
    ) -> StoreResult<LeaseCheck> {
        // A retry of a job out of attempts is parked as dead all the same.
        let (force_dead, delay) = match failure {
            Failure::Dead => (true, Duration::ZERO),
            Failure::RetryAfter(d) => (false, d),
        };
        let done = sqlx::query(
            "UPDATE jobs SET \
                 status = CASE WHEN $4 OR attempts >= max_attempts THEN 'dead' ELSE 'queued' END, \
                 finished_at = CASE WHEN $4 OR attempts >= max_attempts THEN $7 END, \
                 locked_by = CASE WHEN $4 OR attempts >= max_attempts THEN locked_by END, \
                 run_at = CASE WHEN $4 OR attempts >= max_attempts THEN run_at ELSE $5 END, \
                 lease_until = NULL, last_error = $6, updated_at = $7 \
             WHERE id = $1 AND status = 'running' AND locked_by = $2 AND attempts = $3",
        )
        .bind(lease.id.to_string())
        .bind(&lease.worker_id)
        .bind(i64::from(lease.attempt))
        .bind(force_dead)
        .bind(later(delay)?)
        .bind(clip_error(error))
        .bind(ts(now()))
        .execute(&self.write)
        .await?;
        Ok(lease_check(done.rows_affected()))
    }

    async fn defer(
        &self,
        lease: &JobLease,
        delay: Duration,
        reason: &str,
    ) -> StoreResult<LeaseCheck> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = attempts - 1, run_at = $4, \
                 lease_until = NULL, last_error = $5, updated_at = $6 \
             WHERE id = $1 AND status = 'running' AND locked_by = $2 AND attempts = $3",
        )
        .bind(lease.id.to_string())
        .bind(&lease.worker_id)
        .bind(i64::from(lease.attempt))
        .bind(later(delay)?)
        .bind(clip_error(reason))
        .bind(ts(now()))
        .execute(&self.write)
        .await?;
        Ok(lease_check(done.rows_affected()))
    }

    async fn list(&self, filter: &JobFilter) -> StoreResult<Vec<JobRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM jobs \
             WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR queue = $2) \
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(filter.status.map(JobStatus::as_str))
        .bind(filter.queue.as_deref())
        .bind(i64::from(filter.limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(record).collect()
    }

    async fn get(&self, id: JobId) -> StoreResult<Option<JobRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn retry(&self, id: JobId) -> StoreResult<JobRecord> {
        let row = sqlx::query(&format!(
            "UPDATE jobs SET \
                 attempts = CASE WHEN status = 'dead' THEN 0 ELSE attempts END, \
                 status = 'queued', run_at = $2, lease_until = NULL, locked_by = NULL, \
                 finished_at = NULL, updated_at = $2 \
             WHERE id = $1 AND status IN ('dead', 'queued') RETURNING {COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(ts(now()))
        .fetch_optional(&self.write)
        .await?;
        match row {
            Some(row) => record(&row),
            None => Err(not_retryable(id, self.get(id).await?)),
        }
    }

    async fn retry_dead(&self, queue: Option<&str>) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE jobs SET attempts = 0, status = 'queued', run_at = $2, lease_until = NULL, \
                 locked_by = NULL, finished_at = NULL, updated_at = $2 \
             WHERE status = 'dead' AND ($1 IS NULL OR queue = $1)",
        )
        .bind(queue)
        .bind(ts(now()))
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    async fn stats(&self) -> StoreResult<JobStats> {
        let now = now();
        let counts: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT queue, status, count(*) FROM jobs \
             WHERE status IN ('queued', 'running', 'dead') \
             GROUP BY queue, status ORDER BY queue, status",
        )
        .fetch_all(&self.read)
        .await?;
        let oldest: Vec<(String, String)> = sqlx::query_as(
            "SELECT queue, min(run_at) FROM jobs WHERE status = 'queued' AND run_at <= $1 \
             GROUP BY queue ORDER BY queue",
        )
        .bind(ts(now))
        .fetch_all(&self.read)
        .await?;
        let oldest = oldest
            .into_iter()
            .map(|(queue, run_at)| {
                let age = now - parse_ts(&run_at)?;
                Ok((queue, age.num_microseconds().unwrap_or(0) as f64 / 1e6))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        stats_from(counts, oldest)
    }

    async fn prune_succeeded_batch(
        &self,
        finished_before: DateTime<Utc>,
        batch: u32,
    ) -> StoreResult<u64> {
        let mut tx = self.write.begin().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE status = 'succeeded' AND finished_at < $1 \
             ORDER BY finished_at LIMIT $2",
        )
        .bind(ts(finished_before))
        .bind(i64::from(batch))
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let ids = serde_json::Value::from(ids).to_string();
        // Explicit rather than relying on the cascade, which needs foreign keys switched on.
        sqlx::query("DELETE FROM job_probe_runs WHERE job_id IN (SELECT value FROM json_each($1))")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(
            "DELETE FROM jobs WHERE status = 'succeeded' \
             AND id IN (SELECT value FROM json_each($1))",
        )
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn record_probe_run(&self, job: JobId, worker_id: &str, attempt: u32) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO job_probe_runs (job_id, worker_id, attempt, ran_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(job.to_string())
        .bind(worker_id)
        .bind(i64::from(attempt))
        .bind(ts(now()))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn probe_runs(&self, job: JobId) -> StoreResult<Vec<ProbeRun>> {
        let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT job_id, worker_id, attempt, ran_at FROM job_probe_runs \
             WHERE job_id = $1 ORDER BY ran_at, attempt",
        )
        .bind(job.to_string())
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|(id, worker_id, attempt, ran_at)| {
                Ok(ProbeRun {
                    job_id: parse_id(&id)?,
                    worker_id,
                    attempt: count_from_db(attempt, "attempt")?,
                    ran_at: parse_ts(&ran_at)?,
                })
            })
            .collect()
    }

    async fn probe_report(&self, ids: &[JobId], expected_runs: u32) -> StoreResult<ProbeReport> {
        let ids = id_array(ids);
        let (jobs, succeeded, dead): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), coalesce(sum(status = 'succeeded'), 0), \
                 coalesce(sum(status = 'dead'), 0) \
             FROM jobs WHERE id IN (SELECT value FROM json_each($1))",
        )
        .bind(&ids)
        .fetch_one(&self.read)
        .await?;
        let (runs, beyond, workers): (i64, i64, i64) = sqlx::query_as(
            "SELECT coalesce(sum(n), 0), coalesce(sum(max(n - $2, 0)), 0), \
                 (SELECT count(DISTINCT worker_id) FROM job_probe_runs \
                  WHERE job_id IN (SELECT value FROM json_each($1))) \
             FROM (SELECT count(*) AS n FROM job_probe_runs \
                   WHERE job_id IN (SELECT value FROM json_each($1)) GROUP BY job_id)",
        )
        .bind(&ids)
        .bind(i64::from(expected_runs))
        .fetch_one(&self.read)
        .await?;
        Ok(ProbeReport {
            jobs: jobs as u64,
            succeeded: succeeded as u64,
            dead: dead as u64,
            unfinished: (jobs - succeeded - dead) as u64,
            runs: runs as u64,
            duplicate_runs: beyond as u64,
            workers: workers as u64,
        })
    }
}
