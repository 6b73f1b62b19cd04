-- Targeting and programmes; see the SQLite twin for the reasoning.

CREATE TABLE targeting_models (
    model_id  TEXT NOT NULL,
    version   BIGINT NOT NULL CHECK (version >= 1),
    body      JSONB NOT NULL,
    saved_at  TIMESTAMPTZ NOT NULL,
    saved_by  TEXT NOT NULL,
    PRIMARY KEY (model_id, version)
);

CREATE TABLE targeting_rule_sets (
    rule_set_id TEXT NOT NULL,
    version     BIGINT NOT NULL CHECK (version >= 1),
    target      TEXT NOT NULL CHECK (target IN ('household', 'person')),
    source      TEXT NOT NULL,
    description TEXT NOT NULL,
    saved_at    TIMESTAMPTZ NOT NULL,
    saved_by    TEXT NOT NULL,
    PRIMARY KEY (rule_set_id, version)
);

CREATE TABLE targeting_scores (
    household_id  UUID PRIMARY KEY,
    village_code  TEXT NOT NULL COLLATE "C",
    model_id      TEXT NOT NULL,
    model_version BIGINT NOT NULL,
    score         DOUBLE PRECISION NOT NULL,
    category      TEXT NOT NULL,
    explanation   JSONB NOT NULL,
    scored_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX targeting_scores_village ON targeting_scores (village_code);

CREATE TABLE programme_agencies (
    code         TEXT PRIMARY KEY,
    body         JSONB NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE programmes (
    code        TEXT PRIMARY KEY,
    agency_code TEXT NOT NULL REFERENCES programme_agencies (code),
    body        JSONB NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    updated_by  TEXT NOT NULL
);

CREATE TABLE programme_enrolments (
    id             UUID PRIMARY KEY,
    programme_code TEXT NOT NULL REFERENCES programmes (code),
    household_id   UUID NOT NULL,
    person_id      UUID,
    subject_id     UUID NOT NULL,
    village_code   TEXT NOT NULL COLLATE "C",
    status         TEXT NOT NULL CHECK (status IN
                   ('eligible', 'waiting', 'enrolled', 'suspended', 'graduated', 'exited')),
    score          DOUBLE PRECISION,
    amount         BIGINT NOT NULL,
    decision       TEXT NOT NULL,
    reason         TEXT,
    enrolled_since TIMESTAMPTZ,
    version        BIGINT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX programme_enrolments_open ON programme_enrolments (programme_code, subject_id)
    WHERE status NOT IN ('graduated', 'exited');
CREATE INDEX programme_enrolments_household ON programme_enrolments (household_id);
CREATE INDEX programme_enrolments_person ON programme_enrolments (person_id)
    WHERE person_id IS NOT NULL;
CREATE INDEX programme_enrolments_queue ON programme_enrolments (programme_code, status, score);

CREATE TABLE programme_enrolment_events (
    id             UUID PRIMARY KEY,
    enrolment_id   UUID NOT NULL,
    programme_code TEXT NOT NULL,
    from_status    TEXT,
    to_status      TEXT NOT NULL,
    reason         TEXT,
    actor          TEXT NOT NULL,
    at             TIMESTAMPTZ NOT NULL
);
CREATE INDEX programme_enrolment_events_enrolment ON programme_enrolment_events (enrolment_id, id);
