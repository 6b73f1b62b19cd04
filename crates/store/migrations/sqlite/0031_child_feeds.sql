-- Facts of the child record from feeds other than the health systems (issue 8): pre-primary
-- enrolment from school data, child-protection cases (most-vulnerable-children flags,
-- child-labour cases), and sensitive facts sealed per field (HIV exposure from the
-- mother-to-child-HIV tracker). Each names its subject like the other child facts, keeps its
-- provenance and is idempotent by (source system, source id).
--
-- details: what describes the fact, in clear (school, school year, case id and kind…); never
-- the sensitive value. sealed: for 'hiv_exposure', nonce || AEAD ciphertext of the value under
-- the key named by key_id (so keys can rotate); nothing sensitive is ever stored in clear.
CREATE TABLE child_feed_facts (
    id               BLOB PRIMARY KEY,
    person_id        BLOB,
    source_person_id BLOB,
    source_system    TEXT NOT NULL,
    source_id        TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('preprimary_enrolment', 'protection_case',
                                                   'hiv_exposure')),
    occurred_on      TEXT NOT NULL,       -- enrolment date, case opened, exposure observed
    ended_on         TEXT,                -- case closed
    details          TEXT NOT NULL CHECK (json_valid(details)),
    key_id           TEXT,
    sealed           BLOB,
    received_at      TEXT NOT NULL,
    received_by      TEXT NOT NULL,
    CHECK (person_id IS NOT NULL OR source_person_id IS NOT NULL),
    CHECK (kind <> 'hiv_exposure' OR (key_id IS NOT NULL AND sealed IS NOT NULL))
) STRICT;
CREATE UNIQUE INDEX child_feed_facts_source ON child_feed_facts (source_system, source_id);
CREATE INDEX child_feed_facts_person ON child_feed_facts (person_id, kind, occurred_on);
CREATE INDEX child_feed_facts_source_person ON child_feed_facts (source_person_id);
