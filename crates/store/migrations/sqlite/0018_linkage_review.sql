-- The record-linkage review workflow (issue #5): registry duplicates found by `match run` join
-- the review queue of 0014_children; confirming one creates a merge_people change request.

-- A person merged into another keeps their row (history, unmerge) but leaves every list and
-- search: merged_into names the survivor.
ALTER TABLE registry_people ADD COLUMN merged_into BLOB;
CREATE INDEX registry_people_merged ON registry_people (merged_into) WHERE merged_into IS NOT NULL;

-- What a merge changed, so that an unmerge restores it exactly: the duplicate's membership as
-- it was, and whether ending it dissolved the household. unmerged_by names the unmerge's
-- change request once undone.
CREATE TABLE registry_person_merges (
    id                BLOB PRIMARY KEY,
    survivor_id       BLOB NOT NULL,
    duplicate_id      BLOB NOT NULL,
    change_request_id BLOB,
    household_id      BLOB,
    role              TEXT,
    member_since      TEXT,
    ended_on          TEXT,
    dissolved         INTEGER NOT NULL CHECK (dissolved IN (0, 1)),
    unmerged_by       BLOB
) STRICT;
CREATE UNIQUE INDEX registry_person_merges_active ON registry_person_merges (duplicate_id)
    WHERE unmerged_by IS NULL;

-- Review decisions: auto_link marks pairs above the auto-link threshold (queued, never merged
-- silently), decision_reason says why a review was dismissed, change_request_id names the
-- merge request a confirmation created.
ALTER TABLE linkage_reviews ADD COLUMN auto_link INTEGER NOT NULL DEFAULT 0
    CHECK (auto_link IN (0, 1));
ALTER TABLE linkage_reviews ADD COLUMN decision_reason TEXT;
ALTER TABLE linkage_reviews ADD COLUMN change_request_id BLOB;
-- One review per registry pair, whatever its status: a second run neither duplicates an open
-- review nor reopens a decided one.
CREATE UNIQUE INDEX linkage_reviews_pair ON linkage_reviews
    (kind, source_system, source_id, candidate_person_id) WHERE kind = 'registry_duplicate';
CREATE INDEX linkage_reviews_area ON linkage_reviews (area_code, status);
