-- Rwanda's administrative hierarchy (reference data, loaded from the file embedded in the
-- binary; see data/areas/README.md). NISR codes nest: every code starts with its parent's.
CREATE TABLE areas (
    code        TEXT PRIMARY KEY CHECK (code <> '' AND code NOT GLOB '*[^0-9]*'),
    level       TEXT NOT NULL
                CHECK (level IN ('province', 'district', 'sector', 'cell', 'village')),
    name        TEXT NOT NULL CHECK (name <> ''),
    -- inkingi_domain::text::search_key(name): case and diacritics folded, for `q=` searches.
    name_key    TEXT NOT NULL,
    parent_code TEXT REFERENCES areas (code),
    CHECK (length(code) = CASE level WHEN 'province' THEN 1 WHEN 'district' THEN 2
                                     WHEN 'sector' THEN 4 WHEN 'cell' THEN 6 ELSE 8 END),
    CHECK (coalesce(length(parent_code), 0) = CASE level WHEN 'province' THEN 0
                                                        WHEN 'district' THEN 1
                                                        WHEN 'sector' THEN 2
                                                        WHEN 'cell' THEN 4 ELSE 6 END),
    CHECK (parent_code IS NULL OR substr(code, 1, length(parent_code)) = parent_code)
) STRICT;

-- Children of an area, in code order (keyset pagination).
CREATE INDEX areas_parent_idx ON areas (parent_code, code);
-- Areas of one level, in code order.
CREATE INDEX areas_level_idx ON areas (level, code);
-- No index serves `q=`: it finds text anywhere in the name (`name_key LIKE '%…%'`), which a
-- B-tree cannot answer, and scanning ~17k short keys takes a few milliseconds. (Measured on
-- PostgreSQL 15: a pg_trgm GIN index answered such searches in ~10 ms against ~3-6 ms for the
-- scan, and the planner did not choose it.)
