-- Change requests; see the SQLite twin for the reasoning.
CREATE TABLE registry_change_requests (
    id           UUID PRIMARY KEY,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN
                 ('draft', 'submitted', 'approved', 'rejected', 'applied', 'withdrawn')),
    area_code    TEXT NOT NULL COLLATE "C",
    submitted_by TEXT NOT NULL,
    body         JSONB NOT NULL,
    version      BIGINT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX registry_change_requests_queue ON registry_change_requests (status, area_code, id);

CREATE TABLE registry_change_touches (
    record_id         UUID NOT NULL,
    change_request_id UUID NOT NULL,
    PRIMARY KEY (record_id, change_request_id)
);
CREATE INDEX registry_change_touches_request ON registry_change_touches (change_request_id);
