-- The durable job queue: side effects (SMS, callbacks, pushes to other systems) are rows written
-- in the same transaction as the change that causes them, then run by workers.
-- Times are RFC 3339 UTC text of fixed width (2025-01-31T08:00:00.000000Z): they sort as they
-- compare.
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,                 -- UUIDv7, hyphenated: sorts by creation
    queue           TEXT NOT NULL,
    kind            TEXT NOT NULL,                    -- the handler that runs it, e.g. sms.send
    priority        INTEGER NOT NULL DEFAULT 0,       -- higher runs first
    payload         TEXT NOT NULL CHECK (json_valid(payload)),
    idempotency_key TEXT,
    status          TEXT NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'succeeded', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),   -- attempts started
    max_attempts    INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_at          TEXT NOT NULL,                    -- due time
    lease_until     TEXT,                             -- while running: the claim lapses then
    locked_by       TEXT,                             -- worker holding it / that ran it last
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    finished_at     TEXT,
    CHECK (status <> 'running' OR (lease_until IS NOT NULL AND locked_by IS NOT NULL))
) STRICT;

-- Enqueuing the same (queue, key) twice yields one job.
CREATE UNIQUE INDEX jobs_idempotency ON jobs (queue, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- The claim: due queued jobs in (priority DESC, run_at, id) order. Partial, so it holds only
-- the backlog, not the history of finished jobs.
CREATE INDEX jobs_due ON jobs (priority DESC, run_at, id) WHERE status = 'queued';
-- Finding running jobs whose worker stopped renewing its lease.
CREATE INDEX jobs_leases ON jobs (lease_until) WHERE status = 'running';
-- `jobs list --status`, `--queue` and the per-queue counts of /metrics.
CREATE INDEX jobs_status_queue ON jobs (status, queue);

-- One row per execution of the diagnostic `system.probe` job: proof that no job ran twice.
-- Deliberately no unique constraint: a duplicate run must be visible, not rejected.
CREATE TABLE job_probe_runs (
    job_id    TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    worker_id TEXT NOT NULL,
    attempt   INTEGER NOT NULL,
    ran_at    TEXT NOT NULL
) STRICT;
CREATE INDEX job_probe_runs_job ON job_probe_runs (job_id, attempt);
