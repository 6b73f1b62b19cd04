-- Change requests: typed proposals to change the registry, decided by officers of the area.
-- The request itself (its typed change, trail of steps and approvals) is one JSON document;
-- the columns beside it are what queues and filters need.
CREATE TABLE registry_change_requests (
    id           BLOB PRIMARY KEY,          -- UUIDv7
    kind         TEXT NOT NULL,             -- add_member, record_death, …
    status       TEXT NOT NULL CHECK (status IN
                 ('draft', 'submitted', 'approved', 'rejected', 'applied', 'withdrawn')),
    area_code    TEXT NOT NULL,             -- the village whose officers decide
    submitted_by TEXT NOT NULL,
    body         TEXT NOT NULL CHECK (json_valid(body)),
    version      INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
) STRICT;
CREATE INDEX registry_change_requests_queue ON registry_change_requests (status, area_code, id);

-- The records an open request touches; rows are removed when the request closes, so a lookup
-- by record finds exactly the open requests that would conflict.
CREATE TABLE registry_change_touches (
    record_id         BLOB NOT NULL,
    change_request_id BLOB NOT NULL,
    PRIMARY KEY (record_id, change_request_id)
) STRICT;
CREATE INDEX registry_change_touches_request ON registry_change_touches (change_request_id);
