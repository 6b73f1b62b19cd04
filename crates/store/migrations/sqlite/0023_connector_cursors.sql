-- Where each incremental pull from an outside system (DHIS2 tracker streams) has got to: the
-- high-water mark of the source's `updatedAt` taken so far and, when a whole page shared that
-- time, how many pages at it were taken. Written in the same transaction as the page's facts,
-- so a page is either stored and passed or neither. Only ever moves forward.
CREATE TABLE connector_cursors (
    connector  TEXT NOT NULL,              -- e.g. dhis2
    stream     TEXT NOT NULL,              -- e.g. events:PROGRAM_UID
    position   TEXT NOT NULL,              -- the source's time, as it writes it (fixed width)
    page       INTEGER NOT NULL CHECK (page >= 1),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (connector, stream)
) STRICT;
