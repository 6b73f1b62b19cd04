-- The social registry. Ids are UUIDv7 stored as 16-byte BLOBs (not the hyphenated text used by
-- the small tables): at national scale (3.2 M households, 13.5 M people) every byte of a key is
-- repeated in several indexes.
-- Current-state tables are projections; every change is also a row in registry_events, written
-- in the same transaction.

-- Versions of the questionnaire. The newest version of a form is the one new answers use.
CREATE TABLE registry_forms (
    form_id      TEXT NOT NULL,
    version      INTEGER NOT NULL CHECK (version >= 1),
    schema       TEXT NOT NULL CHECK (json_valid(schema)),
    published_at TEXT NOT NULL,
    published_by TEXT NOT NULL,
    PRIMARY KEY (form_id, version)
) STRICT;

CREATE TABLE registry_households (
    id              BLOB PRIMARY KEY,
    registry_number TEXT NOT NULL,          -- HH-XXXX-XXXX, public
    village_code    TEXT NOT NULL,          -- 8-digit NISR code; scope filters by prefix range
    address         TEXT,
    gps_lat         REAL,
    gps_lon         REAL,
    form_id         TEXT NOT NULL,
    form_version    INTEGER NOT NULL,
    answers         TEXT NOT NULL,          -- JSON object, validated against the form
    status          TEXT NOT NULL CHECK (status IN ('active', 'merged', 'dissolved')),
    source_key      TEXT,                   -- '<source>:<key>' of a bulk import
    version         INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX registry_households_number ON registry_households (registry_number);
CREATE UNIQUE INDEX registry_households_source ON registry_households (source_key)
    WHERE source_key IS NOT NULL;
CREATE INDEX registry_households_village ON registry_households (village_code, id);

-- People with their current membership on the row (household, role, since): 13.5 M
-- memberships would otherwise double the largest table. Ended memberships move to
-- registry_past_memberships. mother/father/guardian are the child's relationships.
CREATE TABLE registry_people (
    id                 BLOB PRIMARY KEY,
    household_id       BLOB,
    village_code       TEXT,                -- the current household's village
    role               TEXT CHECK (role IN ('head', 'spouse', 'child', 'other_relative', 'non_relative')),
    member_since       TEXT,                -- YYYY-MM-DD
    given_name         TEXT NOT NULL,       -- as written (NFC)
    family_name        TEXT NOT NULL,
    given_skel         TEXT NOT NULL,       -- phonetic skeleton of the first given-name token
    family_skel        TEXT NOT NULL,       -- … of the first family-name token
    sex                TEXT NOT NULL CHECK (sex IN ('F', 'M')),
    birth_date         TEXT,                -- YYYY, YYYY-MM or YYYY-MM-DD
    national_id        TEXT,
    birth_registration TEXT,
    refugee_id         TEXT,
    passport           TEXT,
    phone              TEXT,                -- first phone, E.164, indexed for search
    other_phones       TEXT,                -- further phones, ';'-separated
    mother_id          BLOB,
    father_id          BLOB,
    guardian_id        BLOB,
    answers            TEXT NOT NULL,       -- member section of the form, JSON object
    died_on            TEXT,
    source_key         TEXT,
    version            INTEGER NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
) STRICT;
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
    household_id BLOB NOT NULL,
    person_id    BLOB NOT NULL,
    role         TEXT NOT NULL,
    start_date   TEXT,
    end_date     TEXT NOT NULL,
    end_reason   TEXT NOT NULL,
    PRIMARY KEY (person_id, end_date, household_id)
) STRICT;
CREATE INDEX registry_past_memberships_household ON registry_past_memberships (household_id);

-- Every change, append-only. before/after hold only changed fields (full `before` on removal).
CREATE TABLE registry_events (
    id                BLOB PRIMARY KEY,     -- UUIDv7: time-ordered
    household_id      BLOB NOT NULL,
    entity            TEXT NOT NULL CHECK (entity IN ('household', 'member')),
    entity_id         BLOB NOT NULL,
    kind              TEXT NOT NULL,
    at                TEXT NOT NULL,
    actor             TEXT NOT NULL,
    channel           TEXT NOT NULL,
    reason            TEXT,
    change_request_id BLOB,
    before            TEXT,
    after             TEXT
) STRICT;
CREATE INDEX registry_events_household ON registry_events (household_id, at);
