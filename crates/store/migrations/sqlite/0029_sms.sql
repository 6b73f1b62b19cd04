-- Outbound SMS (issue 8, worklists and reminders): users' phones for digests and escalations,
-- every message sent through the gateway, and how often each overdue service was reminded.

-- A user's mobile number (+2507…) and language (rw, en, fr) for the SMS sent to them.
ALTER TABLE users ADD COLUMN phone TEXT;
ALTER TABLE users ADD COLUMN language TEXT;

-- One row per message, written once per cause (`source_key`): a repeated planner or job adds
-- nothing. No phone number is stored: it is looked up when the message is sent.
CREATE TABLE sms_messages (
    id             BLOB PRIMARY KEY,
    source_key     TEXT NOT NULL,
    kind           TEXT NOT NULL CHECK (kind IN ('notification', 'reminder', 'digest', 'escalation')),
    recipient_kind TEXT NOT NULL CHECK (recipient_kind IN ('person', 'user')),
    recipient_id   BLOB NOT NULL,
    language       TEXT NOT NULL,
    template       TEXT NOT NULL,
    params         TEXT NOT NULL CHECK (json_valid(params)),
    -- The day it was planned for (the per-person caps count these) and the earliest send time
    -- (the end of the quiet hours when planned inside them).
    plan_day       TEXT NOT NULL,
    not_before     TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'delivered', 'undelivered', 'failed')),
    provider       TEXT,
    provider_id    TEXT,
    -- Secret carried by the delivery-report URL of this message (Kannel's dlr-url).
    dlr_token      TEXT NOT NULL,
    detail         TEXT,
    sent_at        TEXT,
    updated_at     TEXT NOT NULL,
    created_at     TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX sms_messages_source ON sms_messages (source_key);
CREATE INDEX sms_messages_recipient ON sms_messages (recipient_id, plan_day);
CREATE INDEX sms_messages_provider ON sms_messages (provider, provider_id);

-- Reminders given for one overdue service occurrence of one person; escalated once.
CREATE TABLE sms_reminders (
    person_id    BLOB NOT NULL,
    service      TEXT NOT NULL,
    occurrence   INTEGER NOT NULL,
    reminders    INTEGER NOT NULL,
    first_on     TEXT NOT NULL,
    last_on      TEXT NOT NULL,
    escalated_on TEXT,
    PRIMARY KEY (person_id, service, occurrence)
) STRICT;
