-- Facts blocks: what scoring models and eligibility rules read about the active households,
-- packed about 512 households to a row. See the SQLite twin for the reasoning.

CREATE TABLE targeting_fact_blocks (
    start_id   UUID PRIMARY KEY,
    households INTEGER NOT NULL CHECK (households >= 0),
    data       BYTEA NOT NULL,
    packed_at  TIMESTAMPTZ NOT NULL
);
-- Blocks are large and rewritten whole: keep them out of line without compression cost.
ALTER TABLE targeting_fact_blocks ALTER COLUMN data SET STORAGE EXTERNAL;

-- The blocks' version and the last registry event they reflect (txid, outbox_seq).
CREATE TABLE targeting_facts_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    facts_version BIGINT NOT NULL,
    pos_a         BIGINT NOT NULL,
    pos_b         BIGINT NOT NULL,
    built_at      TIMESTAMPTZ NOT NULL
);
