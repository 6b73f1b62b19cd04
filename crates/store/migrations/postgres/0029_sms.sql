-- Outbound SMS; see the SQLite twin.
ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE users ADD COLUMN language TEXT;

CREATE TABLE sms_messages (
    id             UUID PRIMARY KEY,
    source_key     TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('notification', 'reminder', 'digest', 'escalation')),
    recipient_kind TEXT NOT NULL CHECK (recipient_kind IN ('person', 'user')),
    recipient_id   UUID NOT NULL,
    language       TEXT NOT NULL,
    template       TEXT NOT NULL,
    params         JSONB NOT NULL,
    plan_day       DATE NOT NULL,
    not_before     TIMESTAMPTZ NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'delivered', 'undelivered', 'failed')),
    provider       TEXT,
    provider_id    TEXT,
    dlr_token      TEXT NOT NULL,
    detail         TEXT,
    sent_at        TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX sms_messages_source ON sms_messages (source_key);
CREATE INDEX sms_messages_recipient ON sms_messages (recipient_id, plan_day);
CREATE INDEX sms_messages_provider ON sms_messages (provider, provider_id);

CREATE TABLE sms_reminders (
    person_id    UUID NOT NULL,
    service      TEXT NOT NULL,
    occurrence   INTEGER NOT NULL,
    reminders    INTEGER NOT NULL,
    first_on     DATE NOT NULL,
    last_on      DATE NOT NULL,
    escalated_on DATE,
    PRIMARY KEY (person_id, service, occurrence)
);
