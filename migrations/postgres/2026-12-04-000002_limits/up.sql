-- Counters behind the abuse limits. They live in the database so that
-- every replica enforces the same counts.

-- Wrong codes per account in the current window, cleared by a right one.
ALTER TABLE users ADD COLUMN failed_codes integer NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN failed_window_start timestamptz;

-- Fixed-window counters keyed by what they limit, such as
-- `code:<address>` or `client:login:<ip>`.
CREATE TABLE rate_counters (
    key          text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    count        integer NOT NULL,
    last_at      timestamptz NOT NULL
);
CREATE INDEX rate_counters_window_start ON rate_counters (window_start);
