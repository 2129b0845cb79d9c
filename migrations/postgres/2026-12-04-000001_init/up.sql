-- Users, their emails, sessions, one-time codes, key pairs and the mail
-- outbox. Times are timestamptz; ids are uuid; digests are SHA-256 bytea.

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    alias       text NOT NULL,
    -- The lower-cased alias, which decides uniqueness.
    alias_key   text NOT NULL,
    full_name   text NOT NULL,
    -- JSON arrays of strings.
    roles       text NOT NULL DEFAULT '[]',
    groups      text NOT NULL DEFAULT '[]',
    verified_at timestamptz,
    created_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_alias_key_unique ON users (alias_key);
CREATE INDEX users_unverified_created_at ON users (created_at) WHERE verified_at IS NULL;

CREATE TABLE emails (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address    text NOT NULL,
    verified   boolean NOT NULL DEFAULT false,
    preferred  boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX emails_address_unique ON emails (address);
CREATE INDEX emails_user_id ON emails (user_id, created_at);
-- At most one preferred email per user.
CREATE UNIQUE INDEX emails_one_preferred_per_user ON emails (user_id) WHERE preferred;

CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_digest bytea NOT NULL,
    ip           text NOT NULL,
    user_agent   text NOT NULL,
    created_at   timestamptz NOT NULL,
    verified_at  timestamptz,
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    closed_at    timestamptz
);
CREATE UNIQUE INDEX sessions_token_digest_unique ON sessions (token_digest);
CREATE INDEX sessions_user_id ON sessions (user_id, created_at);

CREATE TABLE codes (
    id         uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL,
    -- The session, email or key pair the code verifies.
    subject    uuid NOT NULL,
    -- bcrypt hash of the code.
    hash       text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    used_at    timestamptz
);
CREATE INDEX codes_user_id ON codes (user_id);

CREATE TABLE key_pairs (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL,
    api_key       text NOT NULL,
    secret_digest bytea NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    verified_at   timestamptz,
    deleted_at    timestamptz
);
CREATE UNIQUE INDEX key_pairs_api_key_unique ON key_pairs (api_key);
CREATE INDEX key_pairs_user_id ON key_pairs (user_id, created_at);

CREATE TABLE outbox (
    id         uuid PRIMARY KEY,
    -- The message as JSON; redacted once it is sent or failed.
    payload    text NOT NULL,
    recipient  text NOT NULL,
    kind       text NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    due_at     timestamptz NOT NULL,
    sent_at    timestamptz,
    failed_at  timestamptz,
    last_error text
);
CREATE INDEX outbox_due ON outbox (due_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_finished ON outbox (coalesce(sent_at, failed_at));
