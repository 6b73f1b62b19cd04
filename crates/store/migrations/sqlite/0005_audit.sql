-- The audit log: append-only and hash-chained (see the domain's `audit` module for the
-- canonical form). `seq` is assigned by the appender, without gaps.
CREATE TABLE audit_log (
    seq           INTEGER PRIMARY KEY,
    occurred_at   TEXT NOT NULL,
    actor         TEXT NOT NULL,
    via           TEXT,
    role          TEXT,
    action        TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    subject_type  TEXT NOT NULL,
    subject_id    TEXT,
    area          TEXT,
    fields        TEXT NOT NULL,
    purpose       TEXT,
    request_id    TEXT,
    client_addr   TEXT,
    prev_hash     BLOB NOT NULL,
    hash          BLOB NOT NULL
) STRICT;
CREATE INDEX audit_log_subject ON audit_log(subject_type, subject_id, seq);
CREATE INDEX audit_log_actor ON audit_log(actor, seq);
CREATE INDEX audit_log_time ON audit_log(occurred_at);

-- The end of the chain, updated in the same transaction as each append.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  BLOB NOT NULL
) STRICT;
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));

-- Guard rails against accidents; someone with write access to the file can drop them, which
-- is what the hash chain is for.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
