-- Reference data sets (e.g. the admin areas) embedded in the binary: which version is loaded.
CREATE TABLE reference_data (
    dataset    TEXT PRIMARY KEY,
    version    TEXT NOT NULL,
    rows       BIGINT NOT NULL,
    loaded_at  TIMESTAMPTZ NOT NULL
);
