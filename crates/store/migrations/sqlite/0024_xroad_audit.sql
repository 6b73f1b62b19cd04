-- Requests relayed by an X-Road (or GovStack information mediator) security server carry the
-- calling member (`X-Road-Client`) and the message id the security servers log (`X-Road-Id`);
-- the audit log keeps both so the two logs can be matched. Older entries have neither, and
-- their canonical form (and hash) does not change.
ALTER TABLE audit_log ADD COLUMN xroad_client TEXT;
ALTER TABLE audit_log ADD COLUMN xroad_id TEXT;
