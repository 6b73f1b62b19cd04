-- Bounded, scoped people search (issue 4, item 5).
--
-- Name search reads at most a fixed number of candidates per name key, whatever the name's
-- frequency and whatever the reader's area: each key index ends with the village code, so a
-- district officer's lookup is one range scan inside the key, not a scan of every person of
-- that name in the country. The pair index answers "given + family" (the common query); the
-- two single-key indexes answer one-word queries and the fallback when no pair matches.
DROP INDEX IF EXISTS registry_people_family;
DROP INDEX IF EXISTS registry_people_given;
CREATE INDEX IF NOT EXISTS registry_people_name_pair
    ON registry_people (family_skel, given_skel, village_code);
CREATE INDEX IF NOT EXISTS registry_people_family_area ON registry_people (family_skel, village_code);
CREATE INDEX IF NOT EXISTS registry_people_given_area ON registry_people (given_skel, village_code);

-- Every phone after the first (registry_people.other_phones, ';'-separated), one row each, so
-- a phone search finds a person by any of their numbers through an index. Kept in step by
-- triggers: every writer of registry_people (API, change requests, bulk import) stays as is.
CREATE TABLE registry_people_phones (
    phone     TEXT NOT NULL,
    person_id BLOB NOT NULL,
    PRIMARY KEY (phone, person_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX registry_people_phones_person ON registry_people_phones (person_id);

-- Phones are E.164 ('+' and digits), so they need no JSON escaping.
CREATE TRIGGER registry_people_phones_insert AFTER INSERT ON registry_people
WHEN NEW.other_phones IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO registry_people_phones (phone, person_id)
    SELECT value, NEW.id FROM json_each('["' || replace(NEW.other_phones, ';', '","') || '"]')
    WHERE value <> '';
END;

CREATE TRIGGER registry_people_phones_update AFTER UPDATE OF id, other_phones ON registry_people
WHEN OLD.other_phones IS NOT NEW.other_phones OR OLD.id IS NOT NEW.id
BEGIN
    DELETE FROM registry_people_phones WHERE person_id = OLD.id;
    INSERT OR IGNORE INTO registry_people_phones (phone, person_id)
    SELECT value, NEW.id FROM json_each('["' || replace(NEW.other_phones, ';', '","') || '"]')
    WHERE NEW.other_phones IS NOT NULL AND value <> '';
END;

CREATE TRIGGER registry_people_phones_delete AFTER DELETE ON registry_people
WHEN OLD.other_phones IS NOT NULL
BEGIN
    DELETE FROM registry_people_phones WHERE person_id = OLD.id;
END;

INSERT OR IGNORE INTO registry_people_phones (phone, person_id)
SELECT j.value, p.id
FROM registry_people AS p,
     json_each('["' || replace(p.other_phones, ';', '","') || '"]') AS j
WHERE p.other_phones IS NOT NULL AND j.value <> '';
