-- Users, web sessions and API tokens. Ids are UUIDs stored as 16-byte blobs; timestamps are
-- fixed-width RFC 3339 UTC text with microseconds, so text order is time order.
CREATE TABLE users (
    id             BLOB PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL,
    -- 'national' or area codes separated by spaces; each includes everything below it.
    scope          TEXT NOT NULL,
    -- argon2id PHC string.
    password_hash  TEXT NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0,
    failed_logins  INTEGER NOT NULL DEFAULT 0,
    locked_until   TEXT,
    created_at     TEXT NOT NULL,
    last_login_at  TEXT
) STRICT;

-- Server-side sessions, looked up by the SHA-256 of the id in the cookie.
CREATE TABLE sessions (
    id_hash       BLOB PRIMARY KEY,
    user_id       BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    client_addr   TEXT
) STRICT;
CREATE INDEX sessions_user ON sessions(user_id);

-- API tokens: only the SHA-256 of the token is kept; the prefix finds the row.
CREATE TABLE api_tokens (
    id            BLOB PRIMARY KEY,
    prefix        TEXT NOT NULL UNIQUE,
    hash          BLOB NOT NULL,
    user_id       BLOB NOT NULL REFERENCES users(id),
    scopes        TEXT NOT NULL,
    area_scope    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT,
    revoked_at    TEXT,
    last_used_at  TEXT
) STRICT;
CREATE INDEX api_tokens_user ON api_tokens(user_id);
