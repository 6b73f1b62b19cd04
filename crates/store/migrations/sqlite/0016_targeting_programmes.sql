-- Targeting and programmes: versioned scoring models and eligibility rule sets, the current
-- score of every household, agencies, programmes, enrolments and their history.
-- Documents that are only read whole (a model, a programme, a score's explanation) are JSON.

CREATE TABLE targeting_models (
    model_id  TEXT NOT NULL,
    version   INTEGER NOT NULL CHECK (version >= 1),
    body      TEXT NOT NULL CHECK (json_valid(body)),
    saved_at  TEXT NOT NULL,
    saved_by  TEXT NOT NULL,
    PRIMARY KEY (model_id, version)
) STRICT;

CREATE TABLE targeting_rule_sets (
    rule_set_id TEXT NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    target      TEXT NOT NULL CHECK (target IN ('household', 'person')),
    source      TEXT NOT NULL,              -- the rule as written; compiled before saving
    description TEXT NOT NULL,
    saved_at    TEXT NOT NULL,
    saved_by    TEXT NOT NULL,
    PRIMARY KEY (rule_set_id, version)
) STRICT;

-- One current score per household; rescoring replaces it.
CREATE TABLE targeting_scores (
    household_id  BLOB PRIMARY KEY,
    village_code  TEXT NOT NULL,
    model_id      TEXT NOT NULL,
    model_version INTEGER NOT NULL,
    score         REAL NOT NULL,
    category      TEXT NOT NULL,
    explanation   TEXT NOT NULL CHECK (json_valid(explanation)),  -- intercept and contributions
    scored_at     TEXT NOT NULL
) STRICT;
CREATE INDEX targeting_scores_village ON targeting_scores (village_code);

CREATE TABLE programme_agencies (
    code         TEXT PRIMARY KEY,
    body         TEXT NOT NULL CHECK (json_valid(body)),
    updated_at   TEXT NOT NULL
) STRICT;

CREATE TABLE programmes (
    code        TEXT PRIMARY KEY,
    agency_code TEXT NOT NULL REFERENCES programme_agencies (code),
    body        TEXT NOT NULL CHECK (json_valid(body)),
    version     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;

-- subject_id is the household for household programmes, the person for individual ones.
CREATE TABLE programme_enrolments (
    id             BLOB PRIMARY KEY,
    programme_code TEXT NOT NULL REFERENCES programmes (code),
    household_id   BLOB NOT NULL,
    person_id      BLOB,
    subject_id     BLOB NOT NULL,
    village_code   TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN
                   ('eligible', 'waiting', 'enrolled', 'suspended', 'graduated', 'exited')),
    score          REAL,
    amount         INTEGER NOT NULL,        -- benefit per cycle when enrolled, in francs
    decision       TEXT NOT NULL,           -- the eligibility explanation
    reason         TEXT,                    -- of the last transition
    enrolled_since TEXT,
    version        INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;
-- At most one open enrolment per subject and programme; closed ones stay as history.
CREATE UNIQUE INDEX programme_enrolments_open ON programme_enrolments (programme_code, subject_id)
    WHERE status NOT IN ('graduated', 'exited');
CREATE INDEX programme_enrolments_household ON programme_enrolments (household_id);
CREATE INDEX programme_enrolments_person ON programme_enrolments (person_id)
    WHERE person_id IS NOT NULL;
CREATE INDEX programme_enrolments_queue ON programme_enrolments (programme_code, status, score);

-- Every transition, append-only.
CREATE TABLE programme_enrolment_events (
    id             BLOB PRIMARY KEY,        -- UUIDv7: time-ordered
    enrolment_id   BLOB NOT NULL,
    programme_code TEXT NOT NULL,
    from_status    TEXT,
    to_status      TEXT NOT NULL,
    reason         TEXT,
    actor          TEXT NOT NULL,
    at             TEXT NOT NULL
) STRICT;
CREATE INDEX programme_enrolment_events_enrolment ON programme_enrolment_events (enrolment_id, id);
