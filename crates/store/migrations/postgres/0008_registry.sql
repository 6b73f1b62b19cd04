-- The social registry. Current-state tables are projections; every change is also a row in
-- registry_events, written in the same transaction. See the SQLite twin for the reasoning.

CREATE TABLE registry_forms (
    form_id      TEXT NOT NULL,
    version      INTEGER NOT NULL CHECK (version >= 1),
    schema       JSONB NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    published_by TEXT NOT NULL,
    PRIMARY KEY (form_id, version)
);

CREATE TABLE registry_households (
    id              UUID PRIMARY KEY,
    registry_number TEXT NOT NULL,
    village_code    TEXT NOT NULL COLLATE "C",   -- byte order, so prefix ranges use the index
    address         TEXT,
    gps_lat         DOUBLE PRECISION,
    gps_lon         DOUBLE PRECISION,
    form_id         TEXT NOT NULL,
    form_version    INTEGER NOT NULL,
    answers         JSONB NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('active', 'merged', 'dissolved')),
    source_key      TEXT,
    version         BIGINT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX registry_households_number ON registry_households (registry_number);
CREATE UNIQUE INDEX registry_households_source ON registry_households (source_key)
    WHERE source_key IS NOT NULL;
CREATE INDEX registry_households_village ON registry_households (village_code, id);

CREATE TABLE registry_people (
    id                 UUID PRIMARY KEY,
    household_id       UUID,
    village_code       TEXT COLLATE "C",
    role               TEXT CHECK (role IN ('head', 'spouse', 'child', 'other_relative', 'non_relative')),
    member_since       DATE,
    given_name         TEXT NOT NULL,
    family_name        TEXT NOT NULL,
    given_skel         TEXT NOT NULL COLLATE "C",
    family_skel        TEXT NOT NULL COLLATE "C",
    sex                TEXT NOT NULL CHECK (sex IN ('F', 'M')),
    birth_date         TEXT,
    national_id        TEXT,
    birth_registration TEXT,
    refugee_id         TEXT,
    passport           TEXT,
    phone              TEXT,
    other_phones       TEXT,
    mother_id          UUID,
    father_id          UUID,
    guardian_id        UUID,
    answers            JSONB NOT NULL,
    died_on            DATE,
    source_key         TEXT,
    version            BIGINT NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX registry_people_household ON registry_people (household_id);
CREATE UNIQUE INDEX registry_people_national_id ON registry_people (national_id)
    WHERE national_id IS NOT NULL;
CREATE INDEX registry_people_phone ON registry_people (phone) WHERE phone IS NOT NULL;
CREATE INDEX registry_people_family ON registry_people (family_skel, given_skel);
CREATE INDEX registry_people_given ON registry_people (given_skel);
CREATE UNIQUE INDEX registry_people_source ON registry_people (source_key)
    WHERE source_key IS NOT NULL;
CREATE INDEX registry_people_mother ON registry_people (mother_id) WHERE mother_id IS NOT NULL;

CREATE TABLE registry_past_memberships (
    household_id UUID NOT NULL,
    person_id    UUID NOT NULL,
    role         TEXT NOT NULL,
    start_date   DATE,
    end_date     DATE NOT NULL,
    end_reason   TEXT NOT NULL,
    PRIMARY KEY (person_id, end_date, household_id)
);
CREATE INDEX registry_past_memberships_household ON registry_past_memberships (household_id);

CREATE TABLE registry_events (
    id                UUID PRIMARY KEY,
    household_id      UUID NOT NULL,
    entity            TEXT NOT NULL CHECK (entity IN ('household', 'member')),
    entity_id         UUID NOT NULL,
    kind              TEXT NOT NULL,
    at                TIMESTAMPTZ NOT NULL,
    actor             TEXT NOT NULL,
    channel           TEXT NOT NULL,
    reason            TEXT,
    change_request_id UUID,
    before            JSONB,
    after             JSONB
);
CREATE INDEX registry_events_household ON registry_events (household_id, at);
