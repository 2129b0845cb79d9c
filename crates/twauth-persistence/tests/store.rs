//! The store contract, run against SQLite always and against PostgreSQL when
//! `TWAUTH_TEST_DATABASE_URL` names a server (for example
//! `postgres://postgres@127.0.0.1:5432/postgres`). Each test gets a fresh
//! database, dropped when the test ends.

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration as StdDuration;

use diesel::{Connection, PgConnection, RunQueryDsl};
use time::{Duration, OffsetDateTime};
use twauth_domain::Field;
use twauth_domain::mail::{Mail, MailBody, NoticeEvent};
use twauth_domain::model::ReservedCode;
use twauth_domain::model::{
    CodeEffect, CodeId, CodePurpose, Email, EmailId, KeyPair, KeyPairId, NewCode, NewUser, Session,
    SessionId, UserId,
};
use twauth_domain::ports::{
    AccountLimit, CodeStore, EmailChange, EmailStore, KeyPairStore, OutboxStore, RateDecision,
    RateLimitStore, RateRule, Reservation, SessionStore, Store, StoreError, StoreResult, Taken,
    UserStore,
};
use twauth_domain::secret::{CodeHash, TokenDigest};
use twauth_domain::values::{Alias, EmailAddress, FullName, KeyName, OneTimeCode};
use twauth_persistence::{Backend, Database, PersistenceError, PoolSettings};
use uuid::Uuid;

// Harness.

const POSTGRES_URL_VAR: &str = "TWAUTH_TEST_DATABASE_URL";

fn test_pool() -> PoolSettings {
    PoolSettings {
        max_size: 8,
        min_idle: Some(1),
        connect_timeout: StdDuration::from_secs(10),
    }
}

/// A migrated database that is deleted when the value is dropped, also when
/// the test panics.
struct TestDb {
    db: Option<Database>,
    cleanup: Cleanup,
}

enum Cleanup {
    Folder(#[allow(dead_code)] tempfile::TempDir),
    PostgresDatabase { server_url: String, name: String },
}

impl Deref for TestDb {
    type Target = Database;

    fn deref(&self) -> &Database {
        self.db.as_ref().expect("the database is open until drop")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Close the pool first, so no connection keeps the database open.
        self.db.take();
        if let Cleanup::PostgresDatabase { server_url, name } = &self.cleanup {
            match PgConnection::establish(server_url) {
                Ok(mut conn) => {
                    let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    if let Err(e) = diesel::sql_query(drop).execute(&mut conn) {
                        eprintln!("failed to drop test database {name}: {e}");
                    }
                }
                Err(e) => eprintln!("failed to connect to drop test database {name}: {e}"),
            }
        }
    }
}

fn sqlite_db() -> TestDb {
    let folder = tempfile::tempdir().expect("temporary folder");
    // A nested path checks that `connect` creates missing folders.
    let url = format!("sqlite://{}/data/twauth.db", folder.path().display());
    let db = Database::connect(&url, &test_pool()).expect("SQLite connects");
    assert_eq!(db.backend(), Backend::Sqlite);
    assert!(db.pending_migrations().expect("migration state"));
    db.migrate().expect("SQLite migrates");
    assert!(!db.pending_migrations().expect("migration state"));
    TestDb {
        db: Some(db),
        cleanup: Cleanup::Folder(folder),
    }
}

/// Replaces the database name in a PostgreSQL URL, keeping its options.
fn with_database_name(server_url: &str, name: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{host_part}/{name}?{query}"),
        None => format!("{host_part}/{name}"),
    }
}

fn postgres_db() -> Option<TestDb> {
    let server_url = std::env::var(POSTGRES_URL_VAR).ok()?;
    let name = format!("twauth_test_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::establish(&server_url)
        .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} names no reachable server: {e}"));
    diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .expect("test database is created");
    // From here on, Drop removes the database.
    let mut test_db = TestDb {
        db: None,
        cleanup: Cleanup::PostgresDatabase {
            server_url: server_url.clone(),
            name: name.clone(),
        },
    };
    let db = Database::connect(&with_database_name(&server_url, &name), &test_pool())
        .expect("PostgreSQL connects");
    assert_eq!(db.backend(), Backend::Postgres);
    assert!(db.pending_migrations().expect("migration state"));
    db.migrate().expect("PostgreSQL migrates");
    assert!(!db.pending_migrations().expect("migration state"));
    test_db.db = Some(db);
    Some(test_db)
}

/// Declares each contract function as one test per backend. PostgreSQL
/// tests pass without running when the server variable is unset.
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let db = super::sqlite_db();
                    super::$name(&db);
                }
            )*
        }

        mod postgres {
            $(
                #[test]
                fn $name() {
                    let Some(db) = super::postgres_db() else {
                        eprintln!("{} is unset; skipping", super::POSTGRES_URL_VAR);
                        return;
                    };
                    super::$name(&db);
                }
            )*
        }
    };
}

/// An account limit high enough never to get in the way.
const NO_ACCOUNT_LIMIT: AccountLimit = AccountLimit {
    max_failures: 100,
    window: Duration::hours(1),
};

/// `reserve_code_attempt` with no account limit in the way, reading a
/// reservation as an option.
trait ReserveExt {
    fn reserve(
        &self,
        id: CodeId,
        purposes: &[CodePurpose],
        user: Option<UserId>,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> StoreResult<Option<ReservedCode>>;
}

impl ReserveExt for Database {
    fn reserve(
        &self,
        id: CodeId,
        purposes: &[CodePurpose],
        user: Option<UserId>,
        now: OffsetDateTime,
        max_attempts: u32,
    ) -> StoreResult<Option<ReservedCode>> {
        let reservation =
            self.reserve_code_attempt(id, purposes, user, now, max_attempts, &NO_ACCOUNT_LIMIT)?;
        Ok(match reservation {
            Reservation::Reserved(code) => Some(code),
            Reservation::NoCode => None,
            Reservation::AccountLocked { .. } => panic!("no account limit was set"),
        })
    }
}

contract_tests!(
    account_limit_locks_every_code,
    account_limit_is_atomic_under_concurrency,
    rate_counter_limits_count_and_gap,
    rate_counter_is_atomic_under_concurrency,
    register_stores_user_email_session_and_mail,
    register_rejects_taken_address,
    register_rejects_taken_alias_any_case,
    find_login_email_follows_verification,
    sessions_find_touch_list_close_extend,
    reserve_attempt_checks_every_condition,
    reserve_attempt_stops_at_max,
    consume_code_applies_registration,
    consume_code_verifies_email_and_key_pair,
    consume_code_rejects_used_and_expired,
    concurrent_reserves_never_exceed_max,
    concurrent_consumes_succeed_once,
    emails_prefer_and_delete_outcomes,
    key_pairs_create_find_list_delete,
    outbox_claim_mark_and_purge,
    concurrent_claimers_never_share_rows,
    concurrent_prefers_keep_one_preferred,
    purge_unverified_users_cascades,
    ping_answers,
);

// Fixtures.

/// Returns a fixed instant plus `seconds`, in whole seconds as both backends
/// store times.
fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).expect("valid time")
}

fn address(text: &str) -> EmailAddress {
    EmailAddress::parse(text, Field::Email).expect("valid address")
}

fn code_mail(to: &EmailAddress, purpose: CodePurpose) -> Mail {
    Mail {
        to: to.clone(),
        body: MailBody::Code {
            purpose,
            code: Some(OneTimeCode::parse("123456").expect("valid code")),
            expires_at: at(600).unix_timestamp(),
        },
    }
}

fn notice_mail(to: &EmailAddress) -> Mail {
    Mail {
        to: to.clone(),
        body: MailBody::Notice {
            event: NoticeEvent::KeyPairCreated {
                name: "ci".to_owned(),
            },
            at: at(0).unix_timestamp(),
            ip: "127.0.0.1".to_owned(),
            user_agent: "test".to_owned(),
        },
    }
}

fn new_code(
    user: UserId,
    purpose: CodePurpose,
    subject: Uuid,
    created_at: OffsetDateTime,
) -> NewCode {
    NewCode {
        id: CodeId(Uuid::new_v4()),
        user_id: user,
        purpose,
        subject,
        hash: CodeHash(format!("hash-of-{subject}")),
        created_at,
        expires_at: created_at + Duration::minutes(10),
    }
}

fn pending_session(user: UserId, created_at: OffsetDateTime) -> Session {
    Session {
        id: SessionId(Uuid::new_v4()),
        user_id: user,
        token_digest: TokenDigest::of(Uuid::new_v4().as_bytes()),
        ip: "127.0.0.1".to_owned(),
        user_agent: "test agent".to_owned(),
        created_at,
        verified_at: None,
        expires_at: created_at + Duration::minutes(10),
        last_seen_at: created_at,
        closed_at: None,
    }
}

struct Registration {
    user: NewUser,
    email: Email,
    session: Session,
    code: NewCode,
    mail: Mail,
}

fn registration(alias: &str, email_address: &str, created_at: OffsetDateTime) -> Registration {
    let user_id = UserId(Uuid::new_v4());
    let email = Email {
        id: EmailId(Uuid::new_v4()),
        user_id,
        address: address(email_address),
        verified: false,
        preferred: true,
        created_at,
    };
    let session = pending_session(user_id, created_at);
    let code = new_code(user_id, CodePurpose::Registration, session.id.0, created_at);
    Registration {
        user: NewUser {
            id: user_id,
            alias: Alias::parse(alias).expect("valid alias"),
            full_name: FullName::parse("Test User").expect("valid name"),
            roles: vec!["admin".to_owned(), "user".to_owned()],
            groups: vec![],
            created_at,
        },
        mail: code_mail(&email.address, CodePurpose::Registration),
        email,
        session,
        code,
    }
}

fn register(
    db: &Database,
    alias: &str,
    email_address: &str,
    created_at: OffsetDateTime,
) -> Registration {
    let r = registration(alias, email_address, created_at);
    db.register(&r.user, &r.email, &r.session, &r.code, &r.mail)
        .expect("registration is stored");
    r
}

/// Registers a user and consumes the registration code, as a completed
/// sign-up leaves it.
fn register_verified(db: &Database, alias: &str, email_address: &str) -> Registration {
    let r = register(db, alias, email_address, at(0));
    let effect = CodeEffect::VerifySession {
        session: r.session.id,
        expires_at: at(86_400),
        registration: true,
    };
    assert!(db.consume_code(r.code.id, at(1), &effect).unwrap());
    r
}

/// Adds an email with its code; returns both.
fn add_email(
    db: &Database,
    user: UserId,
    email_address: &str,
    created_at: OffsetDateTime,
) -> (Email, NewCode) {
    let email = Email {
        id: EmailId(Uuid::new_v4()),
        user_id: user,
        address: address(email_address),
        verified: false,
        preferred: false,
        created_at,
    };
    let code = new_code(user, CodePurpose::Email, email.id.0, created_at);
    db.add_email(
        &email,
        &code,
        &code_mail(&email.address, CodePurpose::Email),
    )
    .expect("email is stored");
    (email, code)
}

fn verify_email(db: &Database, email: &Email, code: &NewCode) {
    let effect = CodeEffect::VerifyEmail { email: email.id };
    assert!(db.consume_code(code.id, code.created_at, &effect).unwrap());
}

fn key_pair(user: UserId, api_key: &str, created_at: OffsetDateTime) -> KeyPair {
    KeyPair {
        id: KeyPairId(Uuid::new_v4()),
        user_id: user,
        name: KeyName::parse("ci").expect("valid name"),
        api_key: api_key.to_owned(),
        secret_digest: TokenDigest::of(api_key.as_bytes()),
        created_at,
        expires_at: created_at + Duration::days(30),
        verified_at: None,
        deleted_at: None,
    }
}

// Users.

fn register_stores_user_email_session_and_mail(db: &Database) {
    let r = register(db, "Alice", "alice@example.com", at(0));

    let user = db.find_user(r.user.id).unwrap().expect("user is stored");
    assert_eq!(user.alias.as_str(), "Alice");
    assert_eq!(user.full_name.as_str(), "Test User");
    assert_eq!(user.roles, vec!["admin".to_owned(), "user".to_owned()]);
    assert!(user.groups.is_empty());
    assert_eq!(user.verified_at, None);
    assert_eq!(user.created_at, at(0));

    assert_eq!(db.list_emails(r.user.id).unwrap(), vec![r.email.clone()]);
    let found = db
        .find_session(&r.session.token_digest)
        .unwrap()
        .expect("session");
    assert_eq!(found.session, r.session);
    assert_eq!(found.user, user);
    assert_eq!(db.pending_count().unwrap(), 1);
    assert!(db.find_user(UserId(Uuid::new_v4())).unwrap().is_none());
}

fn register_rejects_taken_address(db: &Database) {
    register(db, "alice", "alice@example.com", at(0));

    let other = registration("bob", "alice@example.com", at(1));
    let result = db.register(
        &other.user,
        &other.email,
        &other.session,
        &other.code,
        &other.mail,
    );
    assert!(
        matches!(result, Err(StoreError::Conflict(Taken::EmailAddress))),
        "{result:?}"
    );

    // Both values taken: the address is reported, as the memory store does.
    let both = registration("ALICE", "alice@example.com", at(2));
    let result = db.register(
        &both.user,
        &both.email,
        &both.session,
        &both.code,
        &both.mail,
    );
    assert!(
        matches!(result, Err(StoreError::Conflict(Taken::EmailAddress))),
        "{result:?}"
    );

    // A rejected registration leaves nothing behind.
    assert!(db.find_user(other.user.id).unwrap().is_none());
    assert!(
        db.find_session(&other.session.token_digest)
            .unwrap()
            .is_none()
    );
    assert_eq!(db.pending_count().unwrap(), 1);
}

fn register_rejects_taken_alias_any_case(db: &Database) {
    register(db, "Alice", "alice@example.com", at(0));

    let other = registration("aLICE", "other@example.com", at(1));
    let result = db.register(
        &other.user,
        &other.email,
        &other.session,
        &other.code,
        &other.mail,
    );
    assert!(
        matches!(result, Err(StoreError::Conflict(Taken::Alias))),
        "{result:?}"
    );
    assert!(db.find_user(other.user.id).unwrap().is_none());
    assert!(
        db.find_login_email(&address("other@example.com"))
            .unwrap()
            .is_none()
    );
    assert_eq!(db.pending_count().unwrap(), 1);

    // A different alias with that address is fine.
    register(db, "alice2", "other@example.com", at(2));
}

fn find_login_email_follows_verification(db: &Database) {
    let r = register(db, "alice", "alice@example.com", at(0));
    let login = address("alice@example.com");

    // Before verification the registration address works.
    let found = db
        .find_login_email(&login)
        .unwrap()
        .expect("registration address");
    assert_eq!(found.id, r.email.id);

    // An added, unverified email of an unverified user does not.
    let (extra, extra_code) = add_email(db, r.user.id, "extra@example.com", at(5));
    assert!(db.find_login_email(&extra.address).unwrap().is_none());

    let effect = CodeEffect::VerifySession {
        session: r.session.id,
        expires_at: at(86_400),
        registration: true,
    };
    assert!(db.consume_code(r.code.id, at(10), &effect).unwrap());
    let found = db
        .find_login_email(&login)
        .unwrap()
        .expect("verified address");
    assert!(found.verified);

    // Unverified emails of a verified user never work; once verified they do.
    assert!(db.find_login_email(&extra.address).unwrap().is_none());
    verify_email(db, &extra, &extra_code);
    assert!(db.find_login_email(&extra.address).unwrap().is_some());

    assert!(
        db.find_login_email(&address("nobody@example.com"))
            .unwrap()
            .is_none()
    );
}

fn purge_unverified_users_cascades(db: &Database) {
    let stale = register(db, "stale", "stale@example.com", at(0));
    let kept = register_verified(db, "kept", "kept@example.com");
    let fresh = register(db, "fresh", "fresh@example.com", at(100));
    let (stale_extra, _) = add_email(db, stale.user.id, "stale2@example.com", at(1));

    assert_eq!(db.purge_unverified_users(at(50)).unwrap(), 1);

    assert!(db.find_user(stale.user.id).unwrap().is_none());
    assert!(
        db.find_session(&stale.session.token_digest)
            .unwrap()
            .is_none()
    );
    assert!(db.list_emails(stale.user.id).unwrap().is_empty());
    assert!(db.find_login_email(&stale.email.address).unwrap().is_none());
    let reserved = db
        .reserve(stale.code.id, &[CodePurpose::Registration], None, at(1), 5)
        .unwrap();
    assert!(reserved.is_none());
    assert!(db.find_user(kept.user.id).unwrap().is_some());
    assert!(db.find_user(fresh.user.id).unwrap().is_some());

    // The freed addresses and alias can be registered again.
    register(db, "stale", &stale_extra.address.to_string(), at(60));
}

// Sessions.

fn sessions_find_touch_list_close_extend(db: &Database) {
    let r = register_verified(db, "alice", "alice@example.com");
    let other = register_verified(db, "bob", "bob@example.com");
    let user = r.user.id;

    let second = pending_session(user, at(20));
    let code = new_code(user, CodePurpose::Login, second.id.0, at(20));
    db.start_session(
        &second,
        &code,
        &code_mail(&r.email.address, CodePurpose::Login),
    )
    .unwrap();
    let pending = pending_session(user, at(30));
    let pending_code = new_code(user, CodePurpose::Login, pending.id.0, at(30));
    db.start_session(
        &pending,
        &pending_code,
        &code_mail(&r.email.address, CodePurpose::Login),
    )
    .unwrap();

    let effect = CodeEffect::VerifySession {
        session: second.id,
        expires_at: at(1_000),
        registration: false,
    };
    assert!(db.consume_code(code.id, at(21), &effect).unwrap());
    let verified = db
        .find_session(&second.token_digest)
        .unwrap()
        .expect("session")
        .session;
    assert_eq!(verified.verified_at, Some(at(21)));
    assert_eq!(verified.expires_at, at(1_000));
    assert_eq!(verified.last_seen_at, at(21));

    db.touch_session(second.id, at(40)).unwrap();
    let touched = db
        .find_session(&second.token_digest)
        .unwrap()
        .expect("session")
        .session;
    assert_eq!(touched.last_seen_at, at(40));

    // Verified, open, unexpired sessions only, oldest first.
    let listed: Vec<SessionId> = db
        .list_sessions(user, at(50))
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, vec![r.session.id, second.id]);
    let listed: Vec<SessionId> = db
        .list_sessions(user, at(1_000))
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, vec![r.session.id]);

    // Closing needs the owner and an open session.
    assert!(
        !db.close_session(other.user.id, r.session.id, at(60))
            .unwrap()
    );
    assert!(db.close_session(user, r.session.id, at(60)).unwrap());
    assert!(!db.close_session(user, r.session.id, at(61)).unwrap());
    let closed = db
        .find_session(&r.session.token_digest)
        .unwrap()
        .expect("session")
        .session;
    assert_eq!(closed.closed_at, Some(at(60)));
    let listed: Vec<SessionId> = db
        .list_sessions(user, at(50))
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, vec![second.id]);

    assert!(db.extend_session(second.id, at(5_000)).unwrap());
    let extended = db
        .find_session(&second.token_digest)
        .unwrap()
        .expect("session")
        .session;
    assert_eq!(extended.expires_at, at(5_000));
    assert!(!db.extend_session(r.session.id, at(5_000)).unwrap());
    assert!(
        !db.extend_session(SessionId(Uuid::new_v4()), at(5_000))
            .unwrap()
    );

    assert!(
        db.find_session(&TokenDigest::of(b"unknown"))
            .unwrap()
            .is_none()
    );
}

// Codes.

fn reserve_attempt_checks_every_condition(db: &Database) {
    let r = register(db, "alice", "alice@example.com", at(0));
    let other = register(db, "bob", "bob@example.com", at(0));
    let id = r.code.id;
    let registration = [CodePurpose::Registration];

    let wrong_purpose = db.reserve(
        id,
        &[CodePurpose::Login, CodePurpose::Email],
        None,
        at(1),
        5,
    );
    assert!(wrong_purpose.unwrap().is_none());
    assert!(db.reserve(id, &[], None, at(1), 5).unwrap().is_none());
    let other_user = db.reserve(id, &registration, Some(other.user.id), at(1), 5);
    assert!(other_user.unwrap().is_none());
    let expired = db.reserve(id, &registration, None, r.code.expires_at, 5);
    assert!(expired.unwrap().is_none());
    let unknown = db.reserve(CodeId(Uuid::new_v4()), &registration, None, at(1), 5);
    assert!(unknown.unwrap().is_none());

    let reserved = db
        .reserve(
            id,
            &[CodePurpose::Login, CodePurpose::Registration],
            Some(r.user.id),
            at(1),
            5,
        )
        .unwrap()
        .expect("live code");
    assert_eq!(reserved.id, id);
    assert_eq!(reserved.user_id, r.user.id);
    assert_eq!(reserved.purpose, CodePurpose::Registration);
    assert_eq!(reserved.subject, r.session.id.0);
    assert_eq!(reserved.hash, r.code.hash);
    assert!(
        db.reserve(id, &registration, None, at(1), 5)
            .unwrap()
            .is_some()
    );

    let effect = CodeEffect::VerifySession {
        session: r.session.id,
        expires_at: at(100),
        registration: true,
    };
    assert!(db.consume_code(id, at(2), &effect).unwrap());
    let used = db.reserve(id, &registration, None, at(3), 5);
    assert!(used.unwrap().is_none());
}

fn reserve_attempt_stops_at_max(db: &Database) {
    let r = register(db, "alice", "alice@example.com", at(0));
    let purposes = [CodePurpose::Registration];
    for attempt in 1..=3 {
        let reserved = db.reserve(r.code.id, &purposes, None, at(1), 3).unwrap();
        assert!(reserved.is_some(), "attempt {attempt} is within the limit");
    }
    assert!(
        db.reserve(r.code.id, &purposes, None, at(1), 3)
            .unwrap()
            .is_none()
    );
    // A higher limit lets the stored counter continue.
    assert!(
        db.reserve(r.code.id, &purposes, None, at(1), 4)
            .unwrap()
            .is_some()
    );
    assert!(
        db.reserve(r.code.id, &purposes, None, at(1), 4)
            .unwrap()
            .is_none()
    );
}

fn consume_code_applies_registration(db: &Database) {
    let r = register(db, "alice", "alice@example.com", at(0));
    let (extra, _) = add_email(db, r.user.id, "extra@example.com", at(1));
    let effect = CodeEffect::VerifySession {
        session: r.session.id,
        expires_at: at(86_400),
        registration: true,
    };
    assert!(db.consume_code(r.code.id, at(5), &effect).unwrap());

    let user = db.find_user(r.user.id).unwrap().expect("user");
    assert_eq!(user.verified_at, Some(at(5)));
    let emails = db.list_emails(r.user.id).unwrap();
    let preferred = emails
        .iter()
        .find(|e| e.id == r.email.id)
        .expect("first email");
    assert!(preferred.verified);
    let added = emails
        .iter()
        .find(|e| e.id == extra.id)
        .expect("added email");
    assert!(
        !added.verified,
        "only the preferred email is verified by registration"
    );
    let session = db
        .find_session(&r.session.token_digest)
        .unwrap()
        .expect("session")
        .session;
    assert_eq!(session.verified_at, Some(at(5)));
    assert_eq!(session.expires_at, at(86_400));
}

fn consume_code_verifies_email_and_key_pair(db: &Database) {
    let r = register_verified(db, "alice", "alice@example.com");
    let (extra, code) = add_email(db, r.user.id, "extra@example.com", at(10));
    verify_email(db, &extra, &code);
    let emails = db.list_emails(r.user.id).unwrap();
    assert!(
        emails
            .iter()
            .find(|e| e.id == extra.id)
            .expect("email")
            .verified
    );

    let key = key_pair(r.user.id, "key-1", at(20));
    let key_code = new_code(r.user.id, CodePurpose::KeyPair, key.id.0, at(20));
    db.create_key_pair(
        &key,
        &key_code,
        &code_mail(&r.email.address, CodePurpose::KeyPair),
    )
    .unwrap();
    let effect = CodeEffect::VerifyKeyPair { key_pair: key.id };
    assert!(db.consume_code(key_code.id, at(21), &effect).unwrap());
    let found = db.find_key_pair("key-1").unwrap().expect("key pair");
    assert_eq!(found.key_pair.verified_at, Some(at(21)));
}

fn consume_code_rejects_used_and_expired(db: &Database) {
    let r = register(db, "alice", "alice@example.com", at(0));
    let effect = CodeEffect::VerifySession {
        session: r.session.id,
        expires_at: at(86_400),
        registration: true,
    };
    assert!(
        !db.consume_code(r.code.id, r.code.expires_at, &effect)
            .unwrap()
    );
    assert!(
        db.find_user(r.user.id)
            .unwrap()
            .expect("user")
            .verified_at
            .is_none()
    );
    assert!(db.consume_code(r.code.id, at(1), &effect).unwrap());
    assert!(!db.consume_code(r.code.id, at(2), &effect).unwrap());
    assert!(
        !db.consume_code(CodeId(Uuid::new_v4()), at(2), &effect)
            .unwrap()
    );
}

fn concurrent_reserves_never_exceed_max(db: &Database) {
    let r = register(db, "alice", "alice@example.com", at(0));
    let threads = 50;
    let max_attempts = 5;
    let barrier = Arc::new(Barrier::new(threads));
    let successes: usize = thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                let code = r.code.id;
                scope.spawn(move || {
                    barrier.wait();
                    db.reserve(
                        code,
                        &[CodePurpose::Registration],
                        None,
                        at(1),
                        max_attempts,
                    )
                    .expect("reserve succeeds or finds no live code")
                    .is_some()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| usize::from(h.join().unwrap()))
            .sum()
    });
    assert_eq!(successes, max_attempts as usize);
}

fn concurrent_consumes_succeed_once(db: &Database) {
    let r = register(db, "alice", "alice@example.com", at(0));
    let threads = 10;
    let barrier = Arc::new(Barrier::new(threads));
    let effect = CodeEffect::VerifySession {
        session: r.session.id,
        expires_at: at(86_400),
        registration: true,
    };
    let successes: usize = thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                let effect = &effect;
                let code = r.code.id;
                scope.spawn(move || {
                    barrier.wait();
                    db.consume_code(code, at(1), effect).expect("consume runs")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| usize::from(h.join().unwrap()))
            .sum()
    });
    assert_eq!(successes, 1);
}

// Emails.

fn emails_prefer_and_delete_outcomes(db: &Database) {
    let r = register_verified(db, "alice", "alice@example.com");
    let other = register_verified(db, "bob", "bob@example.com");
    let user = r.user.id;
    let (second, second_code) = add_email(db, user, "second@example.com", at(10));
    let (unverified, _) = add_email(db, user, "unverified@example.com", at(20));

    let taken = Email {
        id: EmailId(Uuid::new_v4()),
        ..second.clone()
    };
    let code = new_code(user, CodePurpose::Email, taken.id.0, at(30));
    let result = db.add_email(
        &taken,
        &code,
        &code_mail(&taken.address, CodePurpose::Email),
    );
    assert!(
        matches!(result, Err(StoreError::Conflict(Taken::EmailAddress))),
        "{result:?}"
    );

    assert_eq!(
        db.prefer_email(user, unverified.id).unwrap(),
        EmailChange::Unverified
    );
    assert_eq!(
        db.prefer_email(user, other.email.id).unwrap(),
        EmailChange::NotFound
    );
    assert_eq!(
        db.prefer_email(user, EmailId(Uuid::new_v4())).unwrap(),
        EmailChange::NotFound
    );

    verify_email(db, &second, &second_code);
    let EmailChange::Done(preferred) = db.prefer_email(user, second.id).unwrap() else {
        panic!("a verified email can be preferred");
    };
    assert!(preferred.preferred);
    assert!(preferred.verified);
    let emails = db.list_emails(user).unwrap();
    let ids: Vec<EmailId> = emails.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        vec![r.email.id, second.id, unverified.id],
        "oldest first"
    );
    let preferred_ids: Vec<EmailId> = emails
        .iter()
        .filter(|e| e.preferred)
        .map(|e| e.id)
        .collect();
    assert_eq!(preferred_ids, vec![second.id]);
    // Preferring the preferred email again changes nothing.
    assert!(matches!(
        db.prefer_email(user, second.id).unwrap(),
        EmailChange::Done(_)
    ));

    assert_eq!(
        db.delete_email(user, second.id).unwrap(),
        EmailChange::Preferred
    );
    assert_eq!(
        db.delete_email(user, other.email.id).unwrap(),
        EmailChange::NotFound
    );
    let EmailChange::Done(deleted) = db.delete_email(user, r.email.id).unwrap() else {
        panic!("an email that is not preferred can be deleted");
    };
    assert_eq!(deleted.id, r.email.id);
    assert_eq!(
        db.delete_email(user, r.email.id).unwrap(),
        EmailChange::NotFound
    );
    assert_eq!(db.list_emails(user).unwrap().len(), 2);
    assert_eq!(db.list_emails(other.user.id).unwrap().len(), 1);
}

fn concurrent_prefers_keep_one_preferred(db: &Database) {
    let r = register_verified(db, "alice", "alice@example.com");
    let user = r.user.id;
    let (second, second_code) = add_email(db, user, "second@example.com", at(10));
    verify_email(db, &second, &second_code);

    let threads = 10;
    let barrier = Arc::new(Barrier::new(threads));
    thread::scope(|scope| {
        for index in 0..threads {
            let barrier = Arc::clone(&barrier);
            let target = if index % 2 == 0 {
                r.email.id
            } else {
                second.id
            };
            scope.spawn(move || {
                barrier.wait();
                let change = db.prefer_email(user, target).expect("prefer runs");
                assert!(matches!(change, EmailChange::Done(_)), "{change:?}");
            });
        }
    });
    let preferred = db
        .list_emails(user)
        .unwrap()
        .iter()
        .filter(|e| e.preferred)
        .count();
    assert_eq!(preferred, 1);
}

// Key pairs.

fn key_pairs_create_find_list_delete(db: &Database) {
    let r = register_verified(db, "alice", "alice@example.com");
    let other = register_verified(db, "bob", "bob@example.com");
    let user = r.user.id;
    let first = key_pair(user, "key-1", at(10));
    let second = key_pair(user, "key-2", at(20));
    for key in [&first, &second] {
        let code = new_code(user, CodePurpose::KeyPair, key.id.0, key.created_at);
        db.create_key_pair(
            key,
            &code,
            &code_mail(&r.email.address, CodePurpose::KeyPair),
        )
        .unwrap();
    }

    let found = db.find_key_pair("key-1").unwrap().expect("key pair");
    assert_eq!(found.key_pair, first);
    assert_eq!(found.user.id, user);
    assert!(db.find_key_pair("missing").unwrap().is_none());
    assert_eq!(
        db.list_key_pairs(user).unwrap(),
        vec![first.clone(), second.clone()]
    );

    assert!(
        db.delete_key_pair(other.user.id, first.id, at(30))
            .unwrap()
            .is_none()
    );
    let deleted = db
        .delete_key_pair(user, first.id, at(30))
        .unwrap()
        .expect("deleted");
    assert_eq!(deleted.deleted_at, Some(at(30)));
    assert!(
        db.delete_key_pair(user, first.id, at(31))
            .unwrap()
            .is_none()
    );
    assert_eq!(db.list_key_pairs(user).unwrap(), vec![second]);
    // A deleted key pair is still found, so the caller can tell it is deleted.
    let found = db
        .find_key_pair("key-1")
        .unwrap()
        .expect("deleted key pair");
    assert_eq!(found.key_pair.deleted_at, Some(at(30)));
}

// Outbox.

fn outbox_claim_mark_and_purge(db: &Database) {
    let r = register(db, "alice", "alice@example.com", at(0));
    db.enqueue(&[notice_mail(&r.email.address)], at(5)).unwrap();
    assert_eq!(db.pending_count().unwrap(), 2);

    assert!(
        db.claim_due(at(-1), 10, Duration::minutes(1))
            .unwrap()
            .is_empty()
    );
    let claimed = db.claim_due(at(10), 10, Duration::minutes(1)).unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].mail, r.mail, "oldest first");
    assert_eq!(claimed[0].attempts, 0);
    assert_eq!(claimed[0].created_at, at(0).unix_timestamp());
    assert_eq!(claimed[1].created_at, at(5).unix_timestamp());

    // Leased rows stay hidden until the lease ends.
    assert!(
        db.claim_due(at(69), 10, Duration::minutes(1))
            .unwrap()
            .is_empty()
    );
    let again = db.claim_due(at(70), 1, Duration::minutes(1)).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, claimed[0].id);

    let code_mail = &claimed[0];
    db.mark_retry(code_mail.id, at(200), "relay busy").unwrap();
    assert!(
        db.claim_due(at(199), 10, Duration::minutes(1))
            .unwrap()
            .iter()
            .all(|e| e.id != code_mail.id)
    );
    let retried = db.claim_due(at(200), 10, Duration::minutes(1)).unwrap();
    let retried = retried
        .iter()
        .find(|e| e.id == code_mail.id)
        .expect("due again");
    assert_eq!(retried.attempts, 1);

    db.mark_sent(code_mail.id, at(300), &code_mail.mail.redacted())
        .unwrap();
    db.mark_failed(
        claimed[1].id,
        at(400),
        &claimed[1].mail.redacted(),
        "rejected",
    )
    .unwrap();
    assert_eq!(db.pending_count().unwrap(), 0);
    assert!(
        db.claim_due(at(10_000), 10, Duration::minutes(1))
            .unwrap()
            .is_empty()
    );

    assert_eq!(db.purge_finished(at(300)).unwrap(), 0);
    assert_eq!(db.purge_finished(at(301)).unwrap(), 1);
    assert_eq!(db.purge_finished(at(401)).unwrap(), 1);
}

fn concurrent_claimers_never_share_rows(db: &Database) {
    let to = address("alice@example.com");
    let mails: Vec<Mail> = (0..40).map(|_| notice_mail(&to)).collect();
    db.enqueue(&mails, at(0)).unwrap();

    let workers = 4;
    let barrier = Arc::new(Barrier::new(workers));
    let claimed: Vec<Uuid> = thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let mut ids = Vec::new();
                    loop {
                        let batch = db
                            .claim_due(at(1), 3, Duration::hours(1))
                            .expect("claim runs");
                        if batch.is_empty() {
                            return ids;
                        }
                        ids.extend(batch.iter().map(|e| e.id));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let unique: HashSet<Uuid> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), 40);
    assert_eq!(unique.len(), 40);
}

fn ping_answers(db: &Database) {
    db.ping().expect("database answers");
    db.migrate().expect("migrating twice is a no-op");
}

// Tests that need no database server.

#[test]
fn unreachable_postgres_is_unavailable() {
    let settings = PoolSettings {
        max_size: 1,
        min_idle: Some(0),
        connect_timeout: StdDuration::from_millis(500),
    };
    // Port 1 on the loopback address has no server.
    let db = Database::connect("postgres://postgres@127.0.0.1:1/twauth", &settings)
        .expect("the pool opens lazily");
    assert_eq!(db.backend(), Backend::Postgres);
    assert!(matches!(db.ping(), Err(StoreError::Unavailable(_))));
    assert!(matches!(
        db.find_user(UserId(Uuid::new_v4())),
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        db.migrate(),
        Err(PersistenceError::Unavailable(_))
    ));
}

#[test]
fn connect_rejects_unknown_scheme() {
    let result = Database::connect(
        "mysql://root:secret@127.0.0.1/twauth",
        &PoolSettings::default(),
    );
    let Err(error) = result else {
        panic!("mysql is not a supported backend");
    };
    assert!(matches!(error, PersistenceError::UnsupportedUrl(ref scheme) if scheme == "mysql"));
    assert!(
        !error.to_string().contains("secret"),
        "the message hides the password"
    );
}

#[test]
fn sqlite_memory_database_is_shared_by_the_pool() {
    let db = Database::connect("sqlite::memory:", &PoolSettings::default()).expect("connects");
    db.migrate().expect("migrates");
    let r = register(&db, "alice", "alice@example.com", at(0));
    let clone = db.clone();
    assert!(clone.find_user(r.user.id).unwrap().is_some());
    assert!(
        clone
            .find_session(&r.session.token_digest)
            .unwrap()
            .is_some()
    );
}

#[test]
fn sqlite_url_forms_open_files() {
    let folder = tempfile::tempdir().expect("temporary folder");
    for (index, prefix) in ["sqlite://", "sqlite:"].iter().enumerate() {
        let path = folder.path().join(format!("nested{index}/db.sqlite"));
        let url = format!("{prefix}{}", path.display());
        let db = Database::connect(&url, &PoolSettings::default()).expect("connects");
        db.migrate().expect("migrates");
        assert!(path.exists(), "{url} creates {}", path.display());
    }
}

#[test]
fn database_name_replaced_in_url() {
    assert_eq!(
        with_database_name("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database_name("postgres://127.0.0.1?sslmode=disable", "x"),
        "postgres://127.0.0.1/x?sslmode=disable"
    );
}

fn account_limit_locks_every_code(db: &Database) {
    let r = register(db, "alice", "alice@example.com", at(0));
    let limit = AccountLimit {
        max_failures: 3,
        window: Duration::hours(1),
    };
    let purposes = [CodePurpose::Registration];
    for _ in 0..3 {
        let reservation = db
            .reserve_code_attempt(r.code.id, &purposes, None, at(1), 10, &limit)
            .unwrap();
        assert!(matches!(reservation, Reservation::Reserved(_)));
    }
    let locked = db
        .reserve_code_attempt(r.code.id, &purposes, None, at(60), 10, &limit)
        .unwrap();
    let Reservation::AccountLocked { retry_after } = locked else {
        panic!("expected the account to be locked, got {locked:?}");
    };
    assert_eq!(retry_after, Duration::hours(1) - Duration::seconds(59));

    // Once the window has passed, the account may try again; a second code
    // keeps the test clear of the first one's expiry.
    let session = pending_session(r.user.id, at(3600));
    let code = new_code(r.user.id, CodePurpose::Login, session.id.0, at(3600));
    let mail = code_mail(&r.email.address, CodePurpose::Login);
    db.start_session(&session, &code, &mail).unwrap();
    for _ in 0..2 {
        let reservation = db
            .reserve_code_attempt(code.id, &[CodePurpose::Login], None, at(3601), 10, &limit)
            .unwrap();
        assert!(matches!(reservation, Reservation::Reserved(_)));
    }

    // A consumed code clears the count: three more failures fit again.
    let effect = CodeEffect::VerifySession {
        session: session.id,
        expires_at: at(100_000),
        registration: false,
    };
    assert!(db.consume_code(code.id, at(3602), &effect).unwrap());
    let session = pending_session(r.user.id, at(3603));
    let code = new_code(r.user.id, CodePurpose::Login, session.id.0, at(3603));
    db.start_session(&session, &code, &mail).unwrap();
    for _ in 0..3 {
        let reservation = db
            .reserve_code_attempt(code.id, &[CodePurpose::Login], None, at(3604), 10, &limit)
            .unwrap();
        assert!(matches!(reservation, Reservation::Reserved(_)));
    }
}

fn account_limit_is_atomic_under_concurrency(db: &Database) {
    let r = register(db, "alice", "alice@example.com", at(0));
    let limit = AccountLimit {
        max_failures: 7,
        window: Duration::hours(1),
    };
    let threads = 40;
    let barrier = Arc::new(Barrier::new(threads));
    let reserved: usize = thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                let limit = &limit;
                let code = r.code.id;
                scope.spawn(move || {
                    barrier.wait();
                    let reservation = db
                        .reserve_code_attempt(
                            code,
                            &[CodePurpose::Registration],
                            None,
                            at(1),
                            1000,
                            limit,
                        )
                        .expect("reserve succeeds or is refused");
                    usize::from(matches!(reservation, Reservation::Reserved(_)))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(reserved, 7);
}

fn rate_counter_limits_count_and_gap(db: &Database) {
    let rule = RateRule {
        max: 3,
        window: Duration::minutes(15),
        min_gap: Duration::seconds(60),
    };
    let key = "code:alice@example.com";
    assert_eq!(db.hit(key, at(0), &rule).unwrap(), RateDecision::Allowed);
    assert_eq!(
        db.hit(key, at(10), &rule).unwrap(),
        RateDecision::Limited {
            retry_after: Duration::seconds(50)
        }
    );
    assert_eq!(db.hit(key, at(60), &rule).unwrap(), RateDecision::Allowed);
    assert_eq!(db.hit(key, at(120), &rule).unwrap(), RateDecision::Allowed);
    assert_eq!(
        db.hit(key, at(180), &rule).unwrap(),
        RateDecision::Limited {
            retry_after: Duration::seconds(900 - 180)
        }
    );
    // Other keys count apart.
    assert_eq!(
        db.hit("code:bob@example.com", at(180), &rule).unwrap(),
        RateDecision::Allowed
    );
    // A new window starts fresh.
    assert_eq!(db.hit(key, at(900), &rule).unwrap(), RateDecision::Allowed);

    assert_eq!(db.purge_rate_counters(at(900)).unwrap(), 1);
    assert_eq!(db.purge_rate_counters(at(900)).unwrap(), 0);
}

fn rate_counter_is_atomic_under_concurrency(db: &Database) {
    let rule = RateRule {
        max: 9,
        window: Duration::minutes(15),
        min_gap: Duration::ZERO,
    };
    let threads = 40;
    let barrier = Arc::new(Barrier::new(threads));
    let allowed: usize = thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                let rule = &rule;
                scope.spawn(move || {
                    barrier.wait();
                    let decision = db.hit("client:login:203.0.113.7", at(5), rule).unwrap();
                    usize::from(decision == RateDecision::Allowed)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(allowed, 9);
}
