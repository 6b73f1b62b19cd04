-- The integrated child record (issue 8): facts about children under six and their mothers as
-- received from health systems, each with its provenance (source system, source id, received
-- at) and idempotent by (source system, source id), and the review queue of uncertain record
-- linkage, shared with the linkage context.

-- Persons as a source system sent them (a FHIR Patient or RelatedPerson). person_id is the
-- registry person they were linked to; NULL while unlinked (then a linkage_reviews row says
-- why). area_code scopes an unlinked person (the submitter's area when it has one).
CREATE TABLE child_source_people (
    id            UUID PRIMARY KEY,
    source_system TEXT NOT NULL,
    source_id     TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('patient', 'related_person')),
    person_id     UUID,
    link_method   TEXT,                   -- identifier kind or 'linkage', NULL when unlinked
    area_code     TEXT,
    given_name    TEXT,
    family_name   TEXT,
    sex           TEXT,
    birth_date    TEXT,
    identifiers   JSONB NOT NULL,
    related_to    UUID,                   -- a RelatedPerson's patient (source person id)
    relationship  TEXT,                   -- mother, father, guardian
    received_at   TIMESTAMPTZ NOT NULL,
    received_by   TEXT NOT NULL
);
CREATE UNIQUE INDEX child_source_people_source ON child_source_people (source_system, source_id);
CREATE INDEX child_source_people_person ON child_source_people (person_id)
    WHERE person_id IS NOT NULL;

-- Every fact names its subject: the registry person when known, and the source person it came
-- with (either may be NULL, not both).
CREATE TABLE child_immunizations (
    id               UUID PRIMARY KEY,
    person_id        UUID,
    source_person_id UUID,
    source_system    TEXT NOT NULL,
    source_id        TEXT NOT NULL,
    vaccine_system   TEXT NOT NULL,
    vaccine_code     TEXT NOT NULL,
    vaccine          TEXT,                -- mapped vaccine; NULL: unknown code, to be mapped
    needs_mapping    BOOLEAN NOT NULL,
    dose_number      INTEGER,
    occurred_on      DATE    NOT NULL,
    received_at      TIMESTAMPTZ NOT NULL,
    received_by      TEXT NOT NULL,
    CHECK (person_id IS NOT NULL OR source_person_id IS NOT NULL)
);
CREATE UNIQUE INDEX child_immunizations_source ON child_immunizations (source_system, source_id);
CREATE INDEX child_immunizations_person ON child_immunizations (person_id, occurred_on);
CREATE INDEX child_immunizations_source_person ON child_immunizations (source_person_id);
CREATE INDEX child_immunizations_unmapped ON child_immunizations (vaccine_system, vaccine_code)
    WHERE needs_mapping;

CREATE TABLE child_measurements (
    id               UUID PRIMARY KEY,
    person_id        UUID,
    source_person_id UUID,
    source_system    TEXT NOT NULL,
    source_id        TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('weight', 'height', 'length',
                                                   'head_circumference', 'muac')),
    loinc            TEXT NOT NULL,
    value            DOUBLE PRECISION NOT NULL,
    unit             TEXT NOT NULL,
    measured_on      DATE    NOT NULL,
    zscores          JSONB NOT NULL,   -- indicator -> z, at storage
    received_at      TIMESTAMPTZ NOT NULL,
    received_by      TEXT NOT NULL,
    CHECK (person_id IS NOT NULL OR source_person_id IS NOT NULL)
);
CREATE UNIQUE INDEX child_measurements_source ON child_measurements (source_system, source_id);
CREATE INDEX child_measurements_person ON child_measurements (person_id, measured_on);
CREATE INDEX child_measurements_source_person ON child_measurements (source_person_id);

-- Pregnancies of mothers: last menstrual period, expected delivery, outcome.
CREATE TABLE child_pregnancies (
    id               UUID PRIMARY KEY,
    person_id        UUID,
    source_person_id UUID,
    source_system    TEXT NOT NULL,
    source_id        TEXT NOT NULL,
    lmp              DATE,
    edd              DATE,
    outcome          TEXT CHECK (outcome IN ('live_birth', 'stillbirth', 'miscarriage',
                                             'abortion')),
    outcome_on       DATE,
    received_at      TIMESTAMPTZ NOT NULL,
    received_by      TEXT NOT NULL,
    CHECK (person_id IS NOT NULL OR source_person_id IS NOT NULL),
    CHECK (lmp IS NOT NULL OR edd IS NOT NULL)
);
CREATE UNIQUE INDEX child_pregnancies_source ON child_pregnancies (source_system, source_id);
CREATE INDEX child_pregnancies_person ON child_pregnancies (person_id);

-- Contacts: antenatal (of a pregnancy), postnatal, or other.
CREATE TABLE child_encounters (
    id               UUID PRIMARY KEY,
    person_id        UUID,
    source_person_id UUID,
    source_system    TEXT NOT NULL,
    source_id        TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('anc', 'pnc', 'other')),
    pregnancy_id     UUID,
    occurred_on      DATE    NOT NULL,
    received_at      TIMESTAMPTZ NOT NULL,
    received_by      TEXT NOT NULL,
    CHECK (person_id IS NOT NULL OR source_person_id IS NOT NULL)
);
CREATE UNIQUE INDEX child_encounters_source ON child_encounters (source_system, source_id);
CREATE INDEX child_encounters_person ON child_encounters (person_id, occurred_on);
CREATE INDEX child_encounters_source_person ON child_encounters (source_person_id);

-- The review queue of record linkage: a record from somewhere (kind says what, e.g.
-- 'fhir_patient') that may be a registry person but was not linked automatically.
-- explanation holds the per-field comparison (JSON); candidate may be NULL (no candidate).
CREATE TABLE linkage_reviews (
    id                  UUID PRIMARY KEY,
    kind                TEXT NOT NULL,
    source_system       TEXT NOT NULL,
    source_id           TEXT NOT NULL,
    candidate_person_id UUID,
    weight              DOUBLE PRECISION,
    explanation         JSONB NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('open', 'confirmed', 'dismissed')),
    area_code           TEXT,
    created_at          TIMESTAMPTZ NOT NULL,
    decided_at          TIMESTAMPTZ,
    decided_by          TEXT
);
CREATE INDEX linkage_reviews_status ON linkage_reviews (status, created_at);
CREATE INDEX linkage_reviews_source ON linkage_reviews (kind, source_system, source_id);

-- Incoming health records are linked to registry people by birth registration number too.
CREATE INDEX registry_people_birth_registration ON registry_people (birth_registration)
    WHERE birth_registration IS NOT NULL;
