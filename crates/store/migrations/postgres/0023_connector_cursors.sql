-- Where each incremental pull from an outside system has got to; see the SQLite twin.
CREATE TABLE connector_cursors (
    connector  TEXT NOT NULL,
    stream     TEXT NOT NULL,
    position   TEXT NOT NULL,
    page       BIGINT NOT NULL CHECK (page >= 1),
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (connector, stream)
);
