-- Structured people searches (DCI `predicate`/`expression`, IBR `enrolled`) by area: an area
-- code names a range of village codes, and without an index on them every such search read
-- the whole people table, twice (count and page). Partial on `merged_into IS NULL`, which
-- every search adds, so the count of an area's candidates (with a birth-date or sex
-- condition) is read from the index alone.
CREATE INDEX IF NOT EXISTS registry_people_area
    ON registry_people (village_code, birth_date, sex) WHERE merged_into IS NULL;
