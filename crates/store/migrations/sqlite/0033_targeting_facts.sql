-- Facts blocks: what scoring models and eligibility rules read about the active households,
-- packed about 512 households to a row (binary, see crates/store/src/facts_codec.rs) so that a
-- whole-registry pass reads a few thousand rows instead of building each household's members
-- as JSON. A block covers the household ids from its start_id (the nil UUID for the first)
-- up to the next block's start_id. The tables stay the truth: blocks are rebuilt from them
-- when missing or stale, and kept fresh by re-packing the blocks of the households named by
-- registry events after the stored position (docs/TARGETING.md, "Facts blocks").

CREATE TABLE targeting_fact_blocks (
    start_id   BLOB PRIMARY KEY,
    households INTEGER NOT NULL CHECK (households >= 0),
    data       BLOB NOT NULL,
    packed_at  TEXT NOT NULL
) STRICT;

-- The blocks' version (a different one forces a rebuild) and the last registry event they
-- reflect (SQLite: its rowid). No row: the blocks were never built or were invalidated.
CREATE TABLE targeting_facts_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    facts_version INTEGER NOT NULL,
    pos_a         INTEGER NOT NULL,
    pos_b         INTEGER NOT NULL,
    built_at      TEXT NOT NULL
) STRICT;
