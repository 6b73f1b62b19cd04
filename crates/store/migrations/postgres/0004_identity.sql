-- Users, web sessions and API tokens.
CREATE TABLE users (
    id             UUID PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    role           TEXT NOT NULL,
    -- 'national' or area codes separated by spaces; each includes everything below it.
    scope          TEXT NOT NULL,
    -- argon2id PHC string.
    password_hash  TEXT NOT NULL,
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins  INTEGER NOT NULL DEFAULT 0,
    locked_until   TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL,
    last_login_at  TIMESTAMPTZ
);

-- Server-side sessions, looked up by the SHA-256 of the id in the cookie.
CREATE TABLE sessions (
    id_hash       BYTEA PRIMARY KEY,
    user_id       UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    client_addr   TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);

-- API tokens: only the SHA-256 of the token is kept; the prefix finds the row.
CREATE TABLE api_tokens (
    id            UUID PRIMARY KEY,
    prefix        TEXT NOT NULL UNIQUE,
    hash          BYTEA NOT NULL,
    user_id       UUID NOT NULL REFERENCES users(id),
    scopes        TEXT NOT NULL,
    area_scope    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
