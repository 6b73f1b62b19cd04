-- Events received from civil registration (CRVS) over DCI notify: live births and deaths.
-- One row per (source, event id): a duplicate delivery, under the same or another message id,
-- finds the row and adds nothing. `subject` and `seq` order the events of one person (a
-- mother's births, then her death) as the CRVS numbered them, whatever order they arrived in.
-- `status`: received (its processing job is queued or deferred), processed (a change request
-- was opened or nothing was needed), review (a linkage review was opened), failed (the event
-- could not be used; `outcome` says why). `area_code` is the village of the registry person
-- or household found, NULL while none is: it scopes who may list the event.
CREATE TABLE crvs_events (
    id           BLOB PRIMARY KEY,
    source       TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL CHECK (event_type IN ('live_birth', 'death')),
    subject      TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    payload      TEXT NOT NULL CHECK (json_valid(payload)),
    status       TEXT NOT NULL CHECK (status IN ('received', 'processed', 'review', 'failed')),
    outcome      TEXT CHECK (outcome IS NULL OR json_valid(outcome)),
    area_code    TEXT,
    received_by  TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    processed_at TEXT,
    UNIQUE (source, event_id)
) STRICT;
CREATE INDEX crvs_events_subject ON crvs_events (source, subject, seq);
CREATE INDEX crvs_events_status ON crvs_events (status, received_at);
