-- DCI (Digital Convergence Initiative) API: inbound message ids, so a replayed message is
-- refused, and the transactions received with their per-request status, for txn/status.

-- One row per accepted message, keyed by the authenticated client (not the self-declared
-- sender_id, which another client could reuse to block a sender's messages).
CREATE TABLE dci_messages (
    client      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    sender_id   TEXT NOT NULL,
    action      TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (client, message_id)
);
CREATE INDEX dci_messages_received ON dci_messages (received_at);

CREATE TABLE dci_transactions (
    correlation_id TEXT PRIMARY KEY,
    client         TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    action         TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('rcvd', 'pdng', 'succ', 'rjct')),
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX dci_transactions_txn ON dci_transactions (client, transaction_id);

-- The requests of a transaction (a search batch), with their outcome.
CREATE TABLE dci_requests (
    correlation_id TEXT NOT NULL REFERENCES dci_transactions (correlation_id),
    client         TEXT NOT NULL,
    reference_id   TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('rcvd', 'pdng', 'succ', 'rjct')),
    reason_code    TEXT,
    reason_message TEXT,
    record_count   BIGINT NOT NULL,
    PRIMARY KEY (correlation_id, reference_id)
);
CREATE INDEX dci_requests_reference ON dci_requests (client, reference_id);
