DROP TABLE rate_counters;
ALTER TABLE users DROP COLUMN failed_window_start;
ALTER TABLE users DROP COLUMN failed_codes;
