//! Black-box tests: each starts the `twauth` binary on a free loopback port
//! with a fresh database (SQLite always, PostgreSQL when
//! `TWAUTH_TEST_DATABASE_URL` is set), reads codes from the file outbox, and
//! checks the HTTP contract.

mod harness;

mod login;
mod register;
