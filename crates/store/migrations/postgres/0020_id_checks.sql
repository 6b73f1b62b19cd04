-- Verifications against the national ID registry; see the SQLite twin for the reasoning.
CREATE TABLE id_checks (
    id            UUID PRIMARY KEY,
    person_id     UUID NOT NULL,
    national_id   TEXT NOT NULL,
    subject       TEXT NOT NULL,
    system        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('verified', 'mismatch', 'not_found')),
    discrepancies JSONB NOT NULL,
    message_id    TEXT NOT NULL,
    checked_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX id_checks_person ON id_checks (person_id, checked_at);
CREATE INDEX id_checks_status ON id_checks (status, checked_at);
