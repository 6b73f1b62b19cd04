//! The job queue on PostgreSQL. Every time comes from the database's clock (`now()`), so the
//! leases of workers on different machines are measured against one clock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use inkingi_domain::jobs::JobStatus;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::PgAdapter;
use crate::jobs::{
    clip_error, count_from_db, not_retryable, stats_from, status_from_db, ClaimedJob, Failure,
    JobFilter, JobId, JobLease, JobRecord, JobStats, JobStore, LeaseCheck, NewJob, ProbeReport,
    ProbeRun, LAPSED_LEASE_FORMAT,
};
use crate::{StoreResult, UnitOfWork};

const COLUMNS: &str = "id, queue, kind, priority, payload, idempotency_key, status, attempts, \
    max_attempts, run_at, lease_until, locked_by, last_error, created_at, updated_at, finished_at";

/// How many lapsed leases one claim requeues at most; the rest wait for the next claim.
const REAP_BATCH: i64 = 100;

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn record(row: &PgRow) -> StoreResult<JobRecord> {
    Ok(JobRecord {
        id: JobId::from_uuid(row.try_get("id")?),
        queue: row.try_get("queue")?,
        kind: row.try_get("kind")?,
        priority: row.try_get("priority")?,
        payload: row.try_get("payload")?,
        idempotency_key: row.try_get("idempotency_key")?,
        status: status_from_db(row.try_get("status")?)?,
        attempts: count_from_db(row.try_get::<i32, _>("attempts")?.into(), "attempts")?,
        max_attempts: count_from_db(
            row.try_get::<i32, _>("max_attempts")?.into(),
            "max_attempts",
        )?,
        run_at: row.try_get("run_at")?,
        lease_until: row.try_get("lease_until")?,
        locked_by: row.try_get("locked_by")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn lease_check(rows_affected: u64) -> LeaseCheck {
    if rows_affected == 0 {
        LeaseCheck::Lost
    } else {
        LeaseCheck::Held
    }
}

pub(super) async fn insert(conn: &mut PgConnection, job: NewJob) -> StoreResult<JobId> {
    let key = job.idempotency_key.as_ref().map(|k| k.as_str().to_string());
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO jobs (id, queue, kind, priority, payload, idempotency_key, status, attempts, \
             max_attempts, run_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, $7, now() + make_interval(secs => $8), \
             now(), now()) \
         ON CONFLICT (queue, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
         RETURNING id",
    )
    .bind(JobId::new().as_uuid())
    .bind(job.queue.as_str())
    .bind(job.kind.as_str())
    .bind(job.priority)
    .bind(&job.payload)
    .bind(&key)
    .bind(job.max_attempts as i32)
    .bind(secs(job.delay))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = inserted {
        return Ok(JobId::from_uuid(id));
    }
    // The key exists: the conflict made the insert a no-op, and the row is visible to this
    // statement because ON CONFLICT waited for its transaction to commit.
    let existing: Uuid =
        sqlx::query_scalar("SELECT id FROM jobs WHERE queue = $1 AND idempotency_key = $2")
            .bind(job.queue.as_str())
            .bind(&key)
            .fetch_one(&mut *conn)
            .await?;
    Ok(JobId::from_uuid(existing))
}

/// Requeues (or parks, after the last attempt) running jobs whose lease lapsed.
async fn reap(pool: &sqlx::PgPool) -> StoreResult<()> {
    sqlx::query(
        "UPDATE jobs j SET \
             status = CASE WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'queued' END, \
             finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END, \
             locked_by = CASE WHEN j.attempts >= j.max_attempts THEN j.locked_by END, \
             last_error = format($2, j.attempts, coalesce(j.locked_by, '?')), \
             lease_until = NULL, updated_at = now() \
         FROM (SELECT id FROM jobs WHERE status = 'running' AND lease_until < now() \
               ORDER BY lease_until LIMIT $1 FOR UPDATE SKIP LOCKED) lapsed \
         WHERE j.id = lapsed.id",
    )
    .bind(REAP_BATCH)
    .bind(LAPSED_LEASE_FORMAT)
    .execute(pool)
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl JobStore for PgAdapter {
    async fn enqueue(&self, uow: &mut UnitOfWork, job: NewJob) -> StoreResult<JobId> {
        insert(uow.postgres()?, job).await
    }

    async fn enqueue_now(&self, job: NewJob) -> StoreResult<JobId> {
        let mut conn = self.pool.acquire().await?;
        insert(&mut conn, job).await
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
        reap(&self.pool).await?;
        // SKIP LOCKED: rows another worker is claiming right now are passed over instead of
        // waited for, so concurrent claims never block each other nor return the same row.
        let rows = sqlx::query(
            "UPDATE jobs j SET status = 'running', attempts = j.attempts + 1, locked_by = $1, \
                 lease_until = now() + make_interval(secs => $3), updated_at = now() \
             FROM (SELECT id FROM jobs WHERE status = 'queued' AND run_at <= now() \
                   ORDER BY priority DESC, run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) due \
             WHERE j.id = due.id \
             RETURNING j.id, j.queue, j.kind, j.priority, j.payload, j.attempts, j.max_attempts",
        )
        .bind(worker_id)
        .bind(i64::from(limit))
        .bind(secs(lease))
        .fetch_all(&self.pool)
        .await?;
        let mut jobs = rows
            .iter()
            .map(|row| claimed(row, worker_id))
            .collect::<StoreResult<Vec<_>>>()?;
        jobs.sort_by_key(|j| std::cmp::Reverse(j.priority));
        Ok(jobs)
    }

    async fn extend_lease(&self, lease: &JobLease, duration: Duration) -> StoreResult<LeaseCheck> {
        let done = sqlx::query(
            "UPDATE jobs SET lease_until = now() + make_interval(secs => $4), updated_at = now() \
             WHERE id = $1 AND status = 'running' AND locked_by = $2 AND attempts = $3",
        )
        .bind(lease.id.as_uuid())
        .bind(&lease.worker_id)
        .bind(lease.attempt as i32)
        .bind(secs(duration))
        .execute(&self.pool)
        .await?;
        Ok(lease_check(done.rows_affected()))
    }

    async fn complete(&self, lease: &JobLease) -> StoreResult<LeaseCheck> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'succeeded', lease_until = NULL, finished_at = now(), \
                 updated_at = now() \
             WHERE id = $1 AND status = 'running' AND locked_by = $2 AND attempts = $3",
        )
        .bind(lease.id.as_uuid())
        .bind(&lease.worker_id)
        .bind(lease.attempt as i32)
        .execute(&self.pool)
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
                 finished_at = CASE WHEN $4 OR attempts >= max_attempts THEN now() END, \
                 locked_by = CASE WHEN $4 OR attempts >= max_attempts THEN locked_by END, \
                 run_at = CASE WHEN $4 OR attempts >= max_attempts THEN run_at \
                          ELSE now() + make_interval(secs => $5) END, \
                 lease_until = NULL, last_error = $6, updated_at = now() \
             WHERE id = $1 AND status = 'running' AND locked_by = $2 AND attempts = $3",
        )
        .bind(lease.id.as_uuid())
        .bind(&lease.worker_id)
        .bind(lease.attempt as i32)
        .bind(force_dead)
        .bind(secs(delay))
        .bind(clip_error(error))
        .execute(&self.pool)
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
            "UPDATE jobs SET status = 'queued', attempts = attempts - 1, \
                 run_at = now() + make_interval(secs => $4), lease_until = NULL, \
                 last_error = $5, updated_at = now() \
             WHERE id = $1 AND status = 'running' AND locked_by = $2 AND attempts = $3",
        )
        .bind(lease.id.as_uuid())
        .bind(&lease.worker_id)
        .bind(lease.attempt as i32)
        .bind(secs(delay))
        .bind(clip_error(reason))
        .execute(&self.pool)
        .await?;
        Ok(lease_check(done.rows_affected()))
    }

    async fn list(&self, filter: &JobFilter) -> StoreResult<Vec<JobRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM jobs \
             WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR queue = $2) \
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(filter.status.map(JobStatus::as_str))
        .bind(filter.queue.as_deref())
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    async fn get(&self, id: JobId) -> StoreResult<Option<JobRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn retry(&self, id: JobId) -> StoreResult<JobRecord> {
        let row = sqlx::query(&format!(
            "UPDATE jobs SET \
                 attempts = CASE WHEN status = 'dead' THEN 0 ELSE attempts END, \
                 status = 'queued', run_at = now(), lease_until = NULL, locked_by = NULL, \
                 finished_at = NULL, updated_at = now() \
             WHERE id = $1 AND status IN ('dead', 'queued') RETURNING {COLUMNS}"
        ))
        .bind(id.as_uuid())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => record(&row),
            None => Err(not_retryable(id, self.get(id).await?)),
        }
    }

    async fn retry_dead(&self, queue: Option<&str>) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE jobs SET attempts = 0, status = 'queued', run_at = now(), lease_until = NULL, \
                 locked_by = NULL, finished_at = NULL, updated_at = now() \
             WHERE status = 'dead' AND ($1::text IS NULL OR queue = $1)",
        )
        .bind(queue)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn stats(&self) -> StoreResult<JobStats> {
        let counts: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT queue, status, count(*) FROM jobs \
             WHERE status IN ('queued', 'running', 'dead') \
             GROUP BY queue, status ORDER BY queue, status",
        )
        .fetch_all(&self.pool)
        .await?;
        let oldest: Vec<(String, f64)> = sqlx::query_as(
            "SELECT queue, EXTRACT(EPOCH FROM now() - min(run_at))::float8 FROM jobs \
             WHERE status = 'queued' AND run_at <= now() GROUP BY queue ORDER BY queue",
        )
        .fetch_all(&self.pool)
        .await?;
        stats_from(counts, oldest)
    }

    async fn prune_succeeded_batch(
        &self,
        finished_before: DateTime<Utc>,
        batch: u32,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        // SKIP LOCKED: concurrent pruners take disjoint batches instead of queueing on each
        // other's row locks.
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE status = 'succeeded' AND finished_at < $1 \
             ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(finished_before)
        .bind(i64::from(batch))
        .fetch_all(&mut *tx)
        .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        sqlx::query("DELETE FROM job_probe_runs WHERE job_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM jobs WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn record_probe_run(&self, job: JobId, worker_id: &str, attempt: u32) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO job_probe_runs (job_id, worker_id, attempt, ran_at) \
             VALUES ($1, $2, $3, clock_timestamp())",
        )
        .bind(job.as_uuid())
        .bind(worker_id)
        .bind(attempt as i32)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn probe_runs(&self, job: JobId) -> StoreResult<Vec<ProbeRun>> {
        let rows: Vec<(Uuid, String, i32, DateTime<Utc>)> = sqlx::query_as(
            "SELECT job_id, worker_id, attempt, ran_at FROM job_probe_runs \
             WHERE job_id = $1 ORDER BY ran_at, attempt",
        )
        .bind(job.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, worker_id, attempt, ran_at)| {
                Ok(ProbeRun {
                    job_id: JobId::from_uuid(id),
                    worker_id,
                    attempt: count_from_db(attempt.into(), "attempt")?,
                    ran_at,
                })
            })
            .collect()
    }

    async fn probe_report(&self, ids: &[JobId], expected_runs: u32) -> StoreResult<ProbeReport> {
        let ids: Vec<Uuid> = ids.iter().map(JobId::as_uuid).collect();
        let (jobs, succeeded, dead): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'), \
                 count(*) FILTER (WHERE status = 'dead') \
             FROM jobs WHERE id = ANY($1)",
        )
        .bind(&ids)
        .fetch_one(&self.pool)
        .await?;
        let (runs, beyond, workers): (i64, i64, i64) = sqlx::query_as(
            "SELECT coalesce(sum(n), 0)::int8, coalesce(sum(greatest(n - $2, 0)), 0)::int8, \
                 (SELECT count(DISTINCT worker_id) FROM job_probe_runs WHERE job_id = ANY($1)) \
             FROM (SELECT count(*) AS n FROM job_probe_runs WHERE job_id = ANY($1) \
                   GROUP BY job_id) per_job",
        )
        .bind(&ids)
        .bind(i64::from(expected_runs))
        .fetch_one(&self.pool)
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

fn claimed(row: &PgRow, worker_id: &str) -> StoreResult<ClaimedJob> {
    Ok(ClaimedJob {
        lease: JobLease {
            id: JobId::from_uuid(row.try_get("id")?),
            worker_id: worker_id.to_string(),
            attempt: count_from_db(row.try_get::<i32, _>("attempts")?.into(), "attempts")?,
        },
        queue: row.try_get("queue")?,
        kind: row.try_get("kind")?,
        priority: row.try_get("priority")?,
        payload: row.try_get("payload")?,
        max_attempts: count_from_db(
            row.try_get::<i32, _>("max_attempts")?.into(),
            "max_attempts",
        )?,
    })
}
