-- Revoked credentials, read by every process to drop them from its
-- in-process credential cache. Rows are written in the same transaction as
-- the change they announce, stamped with the database clock in Unix
-- seconds, and deleted after a minute.
CREATE TABLE revocations (
    id         integer PRIMARY KEY AUTOINCREMENT,
    -- `session`, `key_pair` or `user`: what `subject` names.
    kind       text NOT NULL,
    subject    blob NOT NULL,
    created_at bigint NOT NULL DEFAULT (unixepoch())
);
CREATE INDEX revocations_created_at ON revocations (created_at);
