-- DCI event subscriptions (registry_core_api subscribe / notify / unsubscribe) and their
-- notifications. Registry events are the outbox: a dispatcher reads them in commit order after a
-- cursor and, in the same transaction that moves the cursor, writes one notification per
-- (subscription, event) and the job that delivers it. A household's notifications to one
-- subscriber form a chain: only the oldest undelivered one has a job ('queued'); the next waits
-- ('waiting') until it is delivered or dead.

CREATE TABLE dci_subscriptions (
    code           TEXT PRIMARY KEY,                -- the subscription_code (UUIDv7)
    client         TEXT NOT NULL,                   -- the authenticated user who subscribed
    sender_id      TEXT NOT NULL,                   -- header.sender_id, the receiver of notifies
    notify_url     TEXT NOT NULL,                   -- sender_uri + /notify
    event_types    TEXT NOT NULL CHECK (json_valid(event_types)),   -- JSON list
    areas          TEXT NOT NULL CHECK (json_valid(areas)),         -- JSON list; [] = whole scope
    record_type    TEXT NOT NULL,                   -- Group or Member
    purpose        TEXT NOT NULL,                   -- declared purpose of use, for the audit log
    status         TEXT NOT NULL CHECK (status IN ('subscribe', 'unsubscribe')),
    transaction_id TEXT NOT NULL,
    reference_id   TEXT NOT NULL,
    criteria       TEXT NOT NULL CHECK (json_valid(criteria)),      -- subscribe_criteria as sent
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;
CREATE INDEX dci_subscriptions_client ON dci_subscriptions (client, created_at);
CREATE INDEX dci_subscriptions_status ON dci_subscriptions (status);

-- Where the dispatcher stands: the last registry event read (SQLite: its rowid, which grows in
-- commit order because writers take turns) and the next notification sequence number.
CREATE TABLE dci_notify_cursor (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    pos_a    INTEGER NOT NULL,
    pos_b    INTEGER NOT NULL,
    next_seq INTEGER NOT NULL
) STRICT;
-- Events recorded before subscriptions existed concern nobody.
INSERT INTO dci_notify_cursor (id, pos_a, pos_b, next_seq)
    SELECT 1, coalesce(max(rowid), 0), 0, 1 FROM registry_events;

CREATE TABLE dci_notifications (
    subscription_code TEXT NOT NULL REFERENCES dci_subscriptions (code),
    event_id          BLOB NOT NULL,
    seq               INTEGER NOT NULL,             -- dispatch order, the order of delivery
    subject_id        BLOB NOT NULL,                -- the household: order is kept per subject
    event_type        TEXT NOT NULL,
    status            TEXT NOT NULL
                      CHECK (status IN ('waiting', 'queued', 'delivered', 'dead')),
    job               TEXT,                         -- the delivery job, JSON, until enqueued
    job_id            TEXT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (subscription_code, event_id)
) STRICT;
CREATE UNIQUE INDEX dci_notifications_chain ON dci_notifications (subscription_code, subject_id, seq);
-- The open chains: what the dispatcher releases and reconciles.
CREATE INDEX dci_notifications_open ON dci_notifications (status, seq)
    WHERE status IN ('waiting', 'queued');
