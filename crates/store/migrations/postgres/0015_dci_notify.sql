-- DCI event subscriptions (registry_core_api subscribe / notify / unsubscribe) and their
-- notifications. Registry events are the outbox: a dispatcher reads them in commit order after a
-- cursor and, in the same transaction that moves the cursor, writes one notification per
-- (subscription, event) and the job that delivers it. A household's notifications to one
-- subscriber form a chain: only the oldest undelivered one has a job ('queued'); the next waits
-- ('waiting') until it is delivered or dead.

-- Commit order of registry events: the writing transaction's id and a sequence number. Rows of
-- transactions older than the oldest one still running (pg_snapshot_xmin) can no longer appear,
-- so a cursor over (txid, outbox_seq) below that bound never skips a row that commits late.
-- Added without a default first, so existing rows (NULL: before any subscription) are not
-- rewritten.
ALTER TABLE registry_events ADD COLUMN txid xid8;
ALTER TABLE registry_events ADD COLUMN outbox_seq BIGINT;
CREATE SEQUENCE registry_events_outbox_seq;
ALTER TABLE registry_events ALTER COLUMN txid SET DEFAULT pg_current_xact_id();
ALTER TABLE registry_events ALTER COLUMN outbox_seq SET DEFAULT nextval('registry_events_outbox_seq');
CREATE INDEX registry_events_outbox ON registry_events (txid, outbox_seq) WHERE txid IS NOT NULL;

CREATE TABLE dci_subscriptions (
    code           TEXT PRIMARY KEY,                -- the subscription_code (UUIDv7)
    client         TEXT NOT NULL,                   -- the authenticated user who subscribed
    sender_id      TEXT NOT NULL,                   -- header.sender_id, the receiver of notifies
    notify_url     TEXT NOT NULL,                   -- sender_uri + /notify
    event_types    JSONB NOT NULL,                  -- list
    areas          JSONB NOT NULL,                  -- list of area codes; [] = whole scope
    record_type    TEXT NOT NULL,                   -- Group or Member
    purpose        TEXT NOT NULL,                   -- declared purpose of use, for the audit log
    status         TEXT NOT NULL CHECK (status IN ('subscribe', 'unsubscribe')),
    transaction_id TEXT NOT NULL,
    reference_id   TEXT NOT NULL,
    criteria       JSONB NOT NULL,                  -- subscribe_criteria as sent
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX dci_subscriptions_client ON dci_subscriptions (client, created_at);
CREATE INDEX dci_subscriptions_status ON dci_subscriptions (status);

-- Where the dispatcher stands: the (txid, outbox_seq) of the last registry event read, and the
-- next notification sequence number. The row is locked while a batch is dispatched.
CREATE TABLE dci_notify_cursor (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    pos_a    BIGINT NOT NULL,
    pos_b    BIGINT NOT NULL,
    next_seq BIGINT NOT NULL
);
INSERT INTO dci_notify_cursor (id, pos_a, pos_b, next_seq) VALUES (1, 0, 0, 1);

CREATE TABLE dci_notifications (
    subscription_code TEXT NOT NULL REFERENCES dci_subscriptions (code),
    event_id          UUID NOT NULL,
    seq               BIGINT NOT NULL,              -- dispatch order, the order of delivery
    subject_id        UUID NOT NULL,                -- the household: order is kept per subject
    event_type        TEXT NOT NULL,
    status            TEXT NOT NULL
                      CHECK (status IN ('waiting', 'queued', 'delivered', 'dead')),
    job               JSONB,                        -- the delivery job, until enqueued
    job_id            UUID,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (subscription_code, event_id)
);
CREATE UNIQUE INDEX dci_notifications_chain ON dci_notifications (subscription_code, subject_id, seq);
CREATE INDEX dci_notifications_open ON dci_notifications (status, seq)
    WHERE status IN ('waiting', 'queued');
