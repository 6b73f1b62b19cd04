-- The audit log: append-only and hash-chained (see the domain's `audit` module for the
-- canonical form). `seq` is assigned by the appender, without gaps.
CREATE TABLE audit_log (
    seq           BIGINT PRIMARY KEY,
    occurred_at   TIMESTAMPTZ NOT NULL,
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
    prev_hash     BYTEA NOT NULL,
    hash          BYTEA NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log(subject_type, subject_id, seq);
CREATE INDEX audit_log_actor ON audit_log(actor, seq);
CREATE INDEX audit_log_time ON audit_log(occurred_at);

-- The end of the chain. Appenders lock this row FOR UPDATE, which serialises them across
-- every node sharing the database.
CREATE TABLE audit_head (
    id    SMALLINT PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  BYTEA NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- Guard rails against accidents; a superuser can drop them, which is what the chain is for.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
