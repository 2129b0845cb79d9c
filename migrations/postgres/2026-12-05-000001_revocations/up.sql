-- Revoked credentials, read by every replica to drop them from its
-- in-process credential cache. Rows are written in the same transaction as
-- the change they announce, stamped with the database clock, and deleted
-- after a minute.
CREATE TABLE revocations (
    id         bigserial PRIMARY KEY,
    -- `session`, `key_pair` or `user`: what `subject` names.
    kind       text NOT NULL,
    subject    uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX revocations_created_at ON revocations (created_at);
