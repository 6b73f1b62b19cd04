-- Events received from civil registration (CRVS); see the SQLite twin for the reasoning.
CREATE TABLE crvs_events (
    id           UUID PRIMARY KEY,
    source       TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL CHECK (event_type IN ('live_birth', 'death')),
    subject      TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    payload      JSONB NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('received', 'processed', 'review', 'failed')),
    outcome      JSONB,
    area_code    TEXT,
    received_by  TEXT NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    processed_at TIMESTAMPTZ,
    UNIQUE (source, event_id)
);
CREATE INDEX crvs_events_subject ON crvs_events (source, subject, seq);
CREATE INDEX crvs_events_status ON crvs_events (status, received_at);
