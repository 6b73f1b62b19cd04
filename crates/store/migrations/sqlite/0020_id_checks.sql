-- Verifications of registry people against the national ID registry. Append-only: each check
-- is kept, the latest per person is the current one. `subject` is the verified fields as one
-- string (national ID, names, sex, birth date), so a person whose data changed since the last
-- check is found by comparing it with the same expression over registry_people.
CREATE TABLE id_checks (
    id            BLOB PRIMARY KEY,
    person_id     BLOB NOT NULL,
    national_id   TEXT NOT NULL,
    subject       TEXT NOT NULL,
    system        TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('verified', 'mismatch', 'not_found')),
    discrepancies TEXT NOT NULL CHECK (json_valid(discrepancies)),
    message_id    TEXT NOT NULL,
    checked_at    TEXT NOT NULL
) STRICT;
CREATE INDEX id_checks_person ON id_checks (person_id, checked_at);
CREATE INDEX id_checks_status ON id_checks (status, checked_at);
