-- Files uploaded through the API for a bulk import; see the SQLite twin.
CREATE TABLE registry_uploads (
    id           UUID PRIMARY KEY,
    source       TEXT NOT NULL,
    households   BYTEA NOT NULL,
    members      BYTEA NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    progress     JSONB,
    summary      TEXT,
    errors       BYTEA,
    created_by   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
