-- Counters behind the abuse limits. Times are Unix seconds.

-- Wrong codes per account in the current window, cleared by a right one.
ALTER TABLE users ADD COLUMN failed_codes integer NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN failed_window_start bigint;

-- Fixed-window counters keyed by what they limit, such as
-- `code:<address>` or `client:login:<ip>`.
CREATE TABLE rate_counters (
    key          text NOT NULL PRIMARY KEY,
    window_start bigint NOT NULL,
    count        integer NOT NULL,
    last_at      bigint NOT NULL
);
CREATE INDEX rate_counters_window_start ON rate_counters (window_start);
