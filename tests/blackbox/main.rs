//! Black-box tests: each starts the `twauth` binary on a free loopback port
//! with a fresh database (SQLite always, PostgreSQL when
//! `TWAUTH_TEST_DATABASE_URL` is set), reads codes from the file outbox, and
//! checks the HTTP contract.

// Helpers used by only some test modules.
#[allow(dead_code)]
mod harness;

mod abuse;
mod cache;
mod clock;
mod emails;
mod faults;
mod gateway;
mod hostile;
mod keypairs;
mod login;
mod mail;
mod ops;
mod register;
mod relay;
mod secrets;
mod sessions;
mod support;
