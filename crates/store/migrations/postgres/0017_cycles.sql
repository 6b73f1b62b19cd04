-- Payment cycles, frozen entitlements, re-certification decisions and the notification
-- outbox; see the SQLite twin for the reasoning.

CREATE TABLE programme_cycles (
    id             UUID PRIMARY KEY,
    programme_code TEXT NOT NULL REFERENCES programmes (code),
    code           TEXT NOT NULL,
    period_start   DATE NOT NULL,
    period_end     DATE NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('draft', 'prepared', 'verified', 'approved')),
    beneficiaries  BIGINT NOT NULL DEFAULT 0,
    total_amount   BIGINT NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL,
    created_by     TEXT NOT NULL,
    prepared_at    TIMESTAMPTZ,
    prepared_by    TEXT,
    verified_at    TIMESTAMPTZ,
    verified_by    TEXT,
    approved_at    TIMESTAMPTZ,
    approved_by    TEXT,
    version        BIGINT NOT NULL,
    CHECK (period_end >= period_start)
);
CREATE UNIQUE INDEX programme_cycles_code ON programme_cycles (code);
CREATE INDEX programme_cycles_programme ON programme_cycles (programme_code, period_start);

CREATE TABLE cycle_entitlements (
    cycle_id         UUID NOT NULL,
    seq              BIGINT NOT NULL,
    enrolment_id     UUID NOT NULL,
    household_id     UUID NOT NULL,
    person_id        UUID,
    village_code     TEXT NOT NULL COLLATE "C",
    registry_number  TEXT NOT NULL,
    beneficiary      TEXT NOT NULL,
    household_size   BIGINT NOT NULL,
    amount           BIGINT NOT NULL,
    payment_status   TEXT NOT NULL DEFAULT 'pending'
                     CHECK (payment_status IN ('pending', 'paid', 'failed', 'returned')),
    status_reference TEXT,
    status_date      DATE,
    status_note      TEXT,
    status_by        TEXT,
    status_at        TIMESTAMPTZ,
    PRIMARY KEY (cycle_id, seq)
);
CREATE INDEX cycle_entitlements_village ON cycle_entitlements (cycle_id, village_code);

CREATE FUNCTION cycle_entitlements_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cycle entitlements are frozen: only the payment status may change';
END;
$$;
CREATE TRIGGER cycle_entitlements_frozen
BEFORE UPDATE OF cycle_id, seq, enrolment_id, household_id, person_id, village_code,
    registry_number, beneficiary, household_size, amount ON cycle_entitlements
FOR EACH ROW EXECUTE FUNCTION cycle_entitlements_frozen();

CREATE TABLE programme_recertifications (
    id             UUID PRIMARY KEY,
    enrolment_id   UUID NOT NULL,
    programme_code TEXT NOT NULL,
    household_id   UUID NOT NULL,
    person_id      UUID,
    village_code   TEXT NOT NULL COLLATE "C",
    status         TEXT NOT NULL CHECK (status IN ('open', 'kept', 'exited')),
    finding        TEXT NOT NULL,
    opened_at      TIMESTAMPTZ NOT NULL,
    decided_at     TIMESTAMPTZ,
    decided_by     TEXT,
    reason         TEXT,
    version        BIGINT NOT NULL
);
CREATE UNIQUE INDEX programme_recertifications_open ON programme_recertifications (enrolment_id)
    WHERE status = 'open';
CREATE INDEX programme_recertifications_queue
    ON programme_recertifications (programme_code, status, opened_at);

CREATE TABLE notification_outbox (
    id           UUID PRIMARY KEY,
    source_key   TEXT NOT NULL,
    channel      TEXT NOT NULL,
    template     TEXT NOT NULL,
    household_id UUID NOT NULL,
    person_id    UUID,
    village_code TEXT NOT NULL COLLATE "C",
    params       JSONB NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX notification_outbox_source ON notification_outbox (source_key);
CREATE INDEX notification_outbox_pending ON notification_outbox (status, created_at);
