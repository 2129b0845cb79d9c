-- Users, their emails, sessions, one-time codes, key pairs and the mail
-- outbox. Times are Unix seconds; ids are 16-byte blobs; digests are
-- SHA-256 blobs. Booleans are 0 or 1.

CREATE TABLE users (
    id          blob NOT NULL PRIMARY KEY,
    alias       text NOT NULL,
    -- The lower-cased alias, which decides uniqueness.
    alias_key   text NOT NULL,
    full_name   text NOT NULL,
    -- JSON arrays of strings.
    roles       text NOT NULL DEFAULT '[]',
    groups      text NOT NULL DEFAULT '[]',
    verified_at bigint,
    created_at  bigint NOT NULL
);
CREATE UNIQUE INDEX users_alias_key_unique ON users (alias_key);
CREATE INDEX users_unverified_created_at ON users (created_at) WHERE verified_at IS NULL;

CREATE TABLE emails (
    id         blob NOT NULL PRIMARY KEY,
    user_id    blob NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address    text NOT NULL,
    verified   boolean NOT NULL DEFAULT 0,
    preferred  boolean NOT NULL DEFAULT 0,
    created_at bigint NOT NULL
);
CREATE UNIQUE INDEX emails_address_unique ON emails (address);
CREATE INDEX emails_user_id ON emails (user_id, created_at);
-- At most one preferred email per user.
CREATE UNIQUE INDEX emails_one_preferred_per_user ON emails (user_id) WHERE preferred = 1;

CREATE TABLE sessions (
    id           blob NOT NULL PRIMARY KEY,
    user_id      blob NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_digest blob NOT NULL,
    ip           text NOT NULL,
    user_agent   text NOT NULL,
    created_at   bigint NOT NULL,
    verified_at  bigint,
    expires_at   bigint NOT NULL,
    last_seen_at bigint NOT NULL,
    closed_at    bigint
);
CREATE UNIQUE INDEX sessions_token_digest_unique ON sessions (token_digest);
CREATE INDEX sessions_user_id ON sessions (user_id, created_at);

CREATE TABLE codes (
    id         blob NOT NULL PRIMARY KEY,
    user_id    blob NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL,
    -- The session, email or key pair the code verifies.
    subject    blob NOT NULL,
    -- bcrypt hash of the code.
    hash       text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    used_at    bigint
);
CREATE INDEX codes_user_id ON codes (user_id);

CREATE TABLE key_pairs (
    id            blob NOT NULL PRIMARY KEY,
    user_id       blob NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL,
    api_key       text NOT NULL,
    secret_digest blob NOT NULL,
    created_at    bigint NOT NULL,
    expires_at    bigint NOT NULL,
    verified_at   bigint,
    deleted_at    bigint
);
CREATE UNIQUE INDEX key_pairs_api_key_unique ON key_pairs (api_key);
CREATE INDEX key_pairs_user_id ON key_pairs (user_id, created_at);

CREATE TABLE outbox (
    id         blob NOT NULL PRIMARY KEY,
    -- The message as JSON; redacted once it is sent or failed.
    payload    text NOT NULL,
    recipient  text NOT NULL,
    kind       text NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    created_at bigint NOT NULL,
    due_at     bigint NOT NULL,
    sent_at    bigint,
    failed_at  bigint,
    last_error text
);
CREATE INDEX outbox_due ON outbox (due_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_finished ON outbox (coalesce(sent_at, failed_at));
