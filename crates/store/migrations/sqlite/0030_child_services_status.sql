-- Services due, materialised (issue 8): what the pure evaluator
-- (crates/domain/src/children/schedule) said about each person's service occurrences on
-- `evaluated_on`, refreshed for a person by a `children.services` job queued in the same
-- transaction as each new fact, and for everyone by `inkingi children recompute`. Readers
-- re-derive the status for their own day from the stored window (the domain's
-- `Status::on`), so a row evaluated yesterday is not stale for due/overdue/missed.
CREATE TABLE child_services_status (
    person_id        BLOB    NOT NULL,
    schedule         TEXT    NOT NULL,
    service          TEXT    NOT NULL,
    occurrence       INTEGER NOT NULL,
    schedule_version TEXT    NOT NULL,
    village_code     TEXT,
    status           TEXT    NOT NULL CHECK (status IN ('upcoming', 'due', 'overdue', 'missed',
                                                        'completed')),
    opens            TEXT    NOT NULL,
    due_by           TEXT    NOT NULL,
    closes           TEXT,
    completed_on     TEXT,
    evaluated_on     TEXT    NOT NULL,
    PRIMARY KEY (person_id, schedule, service, occurrence)
) STRICT, WITHOUT ROWID;
-- Worklists: the open occurrences of an area.
CREATE INDEX child_services_status_open ON child_services_status (village_code, due_by)
    WHERE completed_on IS NULL;

-- One row per child under six: what the indicators count, summarised by the same pass from
-- the evaluator's statuses and the WHO growth standards. fic12/fic24: 1 fully immunised by
-- that birthday, 0 not, NULL not that old yet. growth_on: the latest visit with a length or
-- height; stunting/wasting: 0 absent, 2 moderate, 3 severe, NULL not judged.
CREATE TABLE child_indicator_base (
    person_id        BLOB PRIMARY KEY,
    village_code     TEXT,
    birth_date       TEXT NOT NULL,
    fic12            INTEGER,
    fic24            INTEGER,
    growth_on        TEXT,
    stunting         INTEGER,
    wasting          INTEGER,
    birth_registered INTEGER NOT NULL,
    enrolled         INTEGER NOT NULL,
    evaluated_on     TEXT NOT NULL
) STRICT;
CREATE INDEX child_indicator_base_area ON child_indicator_base (village_code, birth_date);

-- Aggregate pushes to DHIS2 (/api/dataValueSets), one per sector and month: the import
-- summary as DHIS2 answered it, conflicts kept (not swallowed).
CREATE TABLE dhis2_aggregate_pushes (
    sector_code   TEXT NOT NULL,
    period        TEXT NOT NULL,                 -- DHIS2 monthly period, YYYYMM
    org_unit      TEXT NOT NULL,
    status        TEXT NOT NULL,                 -- SUCCESS, WARNING, ERROR
    imported      INTEGER NOT NULL,
    updated       INTEGER NOT NULL,
    ignored       INTEGER NOT NULL,
    deleted       INTEGER NOT NULL,
    conflicts     TEXT NOT NULL CHECK (json_valid(conflicts)),
    values_sent   INTEGER NOT NULL,
    pushed_at     TEXT NOT NULL,
    PRIMARY KEY (sector_code, period)
) STRICT;
