-- Files uploaded through the API for a bulk import, kept in the database so that any worker
-- node can run the import job (nodes share nothing but the database), with the job's
-- progress, summary and per-row error report.
CREATE TABLE registry_uploads (
    id           BLOB PRIMARY KEY,          -- UUIDv7
    source       TEXT NOT NULL,
    households   BLOB NOT NULL,
    members      BLOB NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    progress     TEXT,                      -- JSON: bytes, households_written, …
    summary      TEXT,
    errors       BLOB,                      -- the error report CSV
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;
