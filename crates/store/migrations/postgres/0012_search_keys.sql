-- Bounded, scoped people search (issue 4, item 5); see the SQLite twin for the reasoning.
DROP INDEX IF EXISTS registry_people_family;
DROP INDEX IF EXISTS registry_people_given;
CREATE INDEX IF NOT EXISTS registry_people_name_pair
    ON registry_people (family_skel, given_skel, village_code);
CREATE INDEX IF NOT EXISTS registry_people_family_area ON registry_people (family_skel, village_code);
CREATE INDEX IF NOT EXISTS registry_people_given_area ON registry_people (given_skel, village_code);

-- Every phone after the first, one row each, kept in step by a trigger.
CREATE TABLE registry_people_phones (
    phone     TEXT NOT NULL,
    person_id UUID NOT NULL,
    PRIMARY KEY (phone, person_id)
);
CREATE INDEX registry_people_phones_person ON registry_people_phones (person_id);

CREATE FUNCTION registry_people_phones_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM registry_people_phones WHERE person_id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.other_phones IS NOT NULL THEN
        INSERT INTO registry_people_phones (phone, person_id)
        SELECT p, NEW.id FROM unnest(string_to_array(NEW.other_phones, ';')) AS p
        WHERE p <> ''
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER registry_people_phones_insert AFTER INSERT ON registry_people
    FOR EACH ROW WHEN (NEW.other_phones IS NOT NULL)
    EXECUTE FUNCTION registry_people_phones_sync();
CREATE TRIGGER registry_people_phones_update AFTER UPDATE OF id, other_phones ON registry_people
    FOR EACH ROW WHEN (OLD.other_phones IS DISTINCT FROM NEW.other_phones OR OLD.id <> NEW.id)
    EXECUTE FUNCTION registry_people_phones_sync();
CREATE TRIGGER registry_people_phones_delete AFTER DELETE ON registry_people
    FOR EACH ROW WHEN (OLD.other_phones IS NOT NULL)
    EXECUTE FUNCTION registry_people_phones_sync();

INSERT INTO registry_people_phones (phone, person_id)
SELECT p, id FROM registry_people, unnest(string_to_array(other_phones, ';')) AS p
WHERE other_phones IS NOT NULL AND p <> ''
ON CONFLICT DO NOTHING;
