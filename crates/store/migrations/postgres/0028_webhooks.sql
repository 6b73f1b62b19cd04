-- Partner webhooks ride on the DCI subscriptions' outbox, chains and jobs: a subscription is
-- either a DCI subscriber ('dci': notify envelopes) or a partner's webhook ('webhook': plain JSON
-- events signed with HMAC-SHA256 under `secret`). The key must be kept in the clear to sign each
-- delivery; it is shown once when the webhook is made and never listed.
ALTER TABLE dci_subscriptions ADD COLUMN kind TEXT NOT NULL DEFAULT 'dci'
    CHECK (kind IN ('dci', 'webhook'));
ALTER TABLE dci_subscriptions ADD COLUMN secret TEXT;
