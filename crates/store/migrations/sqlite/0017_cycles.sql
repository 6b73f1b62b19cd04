-- Payment cycles and their frozen entitlements, re-certification decisions and the
-- notification outbox (issue 6, items 5 and 6).

-- One payment period of a programme. Steps: draft → prepared (frozen) → verified → approved,
-- each by a different user, recorded with who and when.
CREATE TABLE programme_cycles (
    id             BLOB PRIMARY KEY,
    programme_code TEXT NOT NULL REFERENCES programmes (code),
    code           TEXT NOT NULL,           -- programme-YYYYMMDD; prefix of payment references
    period_start   TEXT NOT NULL,
    period_end     TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('draft', 'prepared', 'verified', 'approved')),
    beneficiaries  INTEGER NOT NULL DEFAULT 0,
    total_amount   INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    prepared_at    TEXT,
    prepared_by    TEXT,
    verified_at    TEXT,
    verified_by    TEXT,
    approved_at    TEXT,
    approved_by    TEXT,
    version        INTEGER NOT NULL,
    CHECK (period_end >= period_start)
) STRICT;
CREATE UNIQUE INDEX programme_cycles_code ON programme_cycles (code);
CREATE INDEX programme_cycles_programme ON programme_cycles (programme_code, period_start);

-- The snapshot taken when a cycle is frozen: who is paid how much. Only the payment status
-- columns may change afterwards (the trigger below refuses anything else).
CREATE TABLE cycle_entitlements (
    cycle_id         BLOB NOT NULL,
    seq              INTEGER NOT NULL,      -- 1, 2, …: the payment reference is code-seq
    enrolment_id     BLOB NOT NULL,
    household_id     BLOB NOT NULL,
    person_id        BLOB,
    village_code     TEXT NOT NULL,
    registry_number  TEXT NOT NULL,
    beneficiary      TEXT NOT NULL,         -- the name paid, as it was when frozen
    household_size   INTEGER NOT NULL,
    amount           INTEGER NOT NULL,
    payment_status   TEXT NOT NULL DEFAULT 'pending'
                     CHECK (payment_status IN ('pending', 'paid', 'failed', 'returned')),
    status_reference TEXT,                  -- the payment provider's reference
    status_date      TEXT,
    status_note      TEXT,
    status_by        TEXT,
    status_at        TEXT,
    PRIMARY KEY (cycle_id, seq)
) STRICT;
CREATE INDEX cycle_entitlements_village ON cycle_entitlements (cycle_id, village_code);

CREATE TRIGGER cycle_entitlements_frozen
BEFORE UPDATE OF cycle_id, seq, enrolment_id, household_id, person_id, village_code,
    registry_number, beneficiary, household_size, amount ON cycle_entitlements
BEGIN
    SELECT RAISE(ABORT, 'cycle entitlements are frozen: only the payment status may change');
END;

-- A beneficiary whose data changed and who no longer meets the programme's rule: a person
-- decides (keep enrolled, or exit with a reason). Never closed by the machine.
CREATE TABLE programme_recertifications (
    id             BLOB PRIMARY KEY,
    enrolment_id   BLOB NOT NULL,
    programme_code TEXT NOT NULL,
    household_id   BLOB NOT NULL,
    person_id      BLOB,
    village_code   TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('open', 'kept', 'exited')),
    finding        TEXT NOT NULL,           -- the rule's explanation when re-evaluated
    opened_at      TEXT NOT NULL,
    decided_at     TEXT,
    decided_by     TEXT,
    reason         TEXT,
    version        INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX programme_recertifications_open ON programme_recertifications (enrolment_id)
    WHERE status = 'open';
CREATE INDEX programme_recertifications_queue
    ON programme_recertifications (programme_code, status, opened_at);

-- Messages to beneficiaries written by `notify.*` jobs, for a sender (SMS) to deliver. The
-- recipient's phone is looked up when sending, so no contact detail is copied here.
CREATE TABLE notification_outbox (
    id           BLOB PRIMARY KEY,
    source_key   TEXT NOT NULL,            -- the cause, once: a repeated job writes nothing
    channel      TEXT NOT NULL,
    template     TEXT NOT NULL,
    household_id BLOB NOT NULL,
    person_id    BLOB,
    village_code TEXT NOT NULL,
    params       TEXT NOT NULL CHECK (json_valid(params)),
    status       TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    created_at   TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX notification_outbox_source ON notification_outbox (source_key);
CREATE INDEX notification_outbox_pending ON notification_outbox (status, created_at);
