//! Outbox delivery against real components: `deliver_due` over the
//! PostgreSQL and SQLite stores, sending through a counting transport or
//! through `SmtpTransport` to aiosmtpd. Each test gets a fresh database,
//! deleted when the test ends. PostgreSQL tests need
//! `TWAUTH_TEST_DATABASE_URL` (for example
//! `postgres://postgres@127.0.0.1:5432/test`); without it they return early,
//! unless `CI` is set, in which case they fail.

use std::collections::{HashMap, HashSet};
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::Duration as StdDuration;

use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use time::{Duration, OffsetDateTime};
use twauth_domain::delivery::{DeliveryPolicy, DeliveryResult, deliver_due};
use twauth_domain::mail::{Mail, MailBody, MailError};
use twauth_domain::memory::{ManualClock, SystemClock};
use twauth_domain::model::CodePurpose;
use twauth_domain::ports::{Clock, MailTransport, OutboxStore};
use twauth_domain::values::{EmailAddress, OneTimeCode};
use twauth_mail::{MailSettings, SmtpSettings, SmtpTransport, TlsMode};
use twauth_persistence::{Database, PoolSettings};
use uuid::Uuid;

// Helpers used by only some test binaries.
#[allow(dead_code)]
#[path = "../../../tests/blackbox/relay.rs"]
mod relay;

// Harness.

/// A migrated database that is deleted when the value is dropped, also when
/// the test panics. [`TestDb::connect`] opens a new pool on it each time, as
/// each replica of the server has its own.
struct TestDb {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Folder(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    fn sqlite() -> TestDb {
        let folder = tempfile::tempdir().expect("create a temp dir");
        let url = format!("sqlite://{}/twauth.db", folder.path().display());
        let db = TestDb {
            url,
            cleanup: Cleanup::Folder(folder),
        };
        db.connect().migrate().expect("migrate SQLite");
        db
    }

    fn postgres() -> Option<TestDb> {
        let Some(admin_url) = std::env::var("TWAUTH_TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            assert!(
                std::env::var_os("CI").is_none(),
                "TWAUTH_TEST_DATABASE_URL must be set in CI"
            );
            eprintln!("skipped: TWAUTH_TEST_DATABASE_URL is not set");
            return None;
        };
        let name = format!("twauth_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("TWAUTH_TEST_DATABASE_URL names no reachable server: {e}"));
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .expect("create the test database");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        let db = TestDb {
            url: format!("{base}/{name}"),
            cleanup: Cleanup::Postgres {
                admin_url: admin_url.clone(),
                name,
            },
        };
        db.connect().migrate().expect("migrate PostgreSQL");
        Some(db)
    }

    /// Opens a new connection pool on the database.
    fn connect(&self) -> Database {
        let pool = PoolSettings {
            max_size: 4,
            min_idle: Some(1),
            connect_timeout: StdDuration::from_secs(10),
        };
        Database::connect(&self.url, &pool).expect("open the test database")
    }

    /// Reads every outbox row with SQL rather than through the store port.
    fn outbox_rows(&self) -> Vec<OutboxRow> {
        let query = "SELECT payload, attempts, \
                     CASE WHEN sent_at IS NULL THEN 0 ELSE 1 END AS sent, \
                     CASE WHEN failed_at IS NULL THEN 0 ELSE 1 END AS failed \
                     FROM outbox ORDER BY created_at";
        let rows: Vec<RawOutboxRow> = match &self.cleanup {
            Cleanup::Postgres { .. } => {
                let mut conn = PgConnection::establish(&self.url).expect("connect to PostgreSQL");
                diesel::sql_query(query).load(&mut conn)
            }
            Cleanup::Folder(_) => {
                let path = self.url.trim_start_matches("sqlite://");
                let mut conn = SqliteConnection::establish(path).expect("open the SQLite file");
                diesel::sql_query(query).load(&mut conn)
            }
        }
        .expect("read the outbox");
        rows.into_iter().map(OutboxRow::from).collect()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            match PgConnection::establish(admin_url) {
                Ok(mut admin) => {
                    let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    if let Err(e) = diesel::sql_query(drop).execute(&mut admin) {
                        eprintln!("failed to drop test database {name}: {e}");
                    }
                }
                Err(e) => eprintln!("failed to connect to drop test database {name}: {e}"),
            }
        }
    }
}

#[derive(diesel::QueryableByName)]
struct RawOutboxRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    payload: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    attempts: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    sent: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    failed: i32,
}

/// One stored outbox row.
struct OutboxRow {
    /// The stored JSON payload, to search for a code as text.
    payload: String,
    mail: Mail,
    attempts: i32,
    sent: bool,
    failed: bool,
}

impl From<RawOutboxRow> for OutboxRow {
    fn from(raw: RawOutboxRow) -> Self {
        OutboxRow {
            mail: serde_json::from_str(&raw.payload).expect("decode a stored message"),
            payload: raw.payload,
            attempts: raw.attempts,
            sent: raw.sent == 1,
            failed: raw.failed == 1,
        }
    }
}

/// Declares one test per backend for a function `fn(&TestDb)`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::TestDb::sqlite());
                }
            )*
        }

        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(db) = super::TestDb::postgres() {
                        super::$name(&db);
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    two_workers_send_each_message_once,
    retry_delivers_once_relay_is_up,
);

fn code_mail(to: &str, code: &str) -> Mail {
    Mail {
        to: EmailAddress::from_trusted(to.into()),
        body: MailBody::Code {
            purpose: CodePurpose::Login,
            code: Some(OneTimeCode::parse(code).expect("valid code")),
            expires_at: 1_893_499_800,
        },
    }
}

/// Counts the messages it accepts per recipient.
#[derive(Default)]
struct CountingTransport {
    sends: Mutex<HashMap<String, u32>>,
}

impl MailTransport for CountingTransport {
    fn send(&self, mail: &Mail) -> Result<String, MailError> {
        // Stands in for the network time of a real relay, so that the two
        // workers' claims interleave.
        thread::sleep(StdDuration::from_millis(1));
        *self
            .sends
            .lock()
            .unwrap()
            .entry(mail.to.as_str().to_owned())
            .or_default() += 1;
        Ok(format!("<{}@test>", Uuid::new_v4()))
    }
}

// Tests.

/// Two workers with a pool each drain one outbox, as two replicas do.
fn two_workers_send_each_message_once(db: &TestDb) {
    const MESSAGES: usize = 200;
    let recipients: Vec<String> = (0..MESSAGES)
        .map(|i| format!("user{i}@example.com"))
        .collect();
    let mails: Vec<Mail> = recipients
        .iter()
        .enumerate()
        .map(|(i, to)| code_mail(to, &format!("{:06}", 100_000 + i)))
        .collect();
    db.connect()
        .enqueue(&mails, OffsetDateTime::now_utc())
        .expect("queue the messages");
    let transport = CountingTransport::default();
    let policy = DeliveryPolicy {
        batch_size: 8,
        ..DeliveryPolicy::default()
    };

    let barrier = Barrier::new(2);
    let sent_by_worker: Vec<Vec<Uuid>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let store = db.connect();
                    barrier.wait();
                    let mut sent = Vec::new();
                    loop {
                        let report = deliver_due(&store, &transport, &SystemClock, &policy)
                            .expect("deliver a batch");
                        if report.is_empty() {
                            return sent;
                        }
                        assert_eq!(report.retried, 0, "{report:?}");
                        assert_eq!(report.failed, 0, "{report:?}");
                        sent.extend(report.outcomes.iter().map(|outcome| outcome.id));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("worker thread"))
            .collect()
    });

    for (worker, sent) in sent_by_worker.iter().enumerate() {
        assert!(!sent.is_empty(), "worker {worker} sent nothing");
    }
    let all_sent: Vec<Uuid> = sent_by_worker.concat();
    let unique: HashSet<Uuid> = all_sent.iter().copied().collect();
    assert_eq!(all_sent.len(), MESSAGES, "messages reported sent");
    assert_eq!(unique.len(), MESSAGES, "distinct outbox ids reported sent");

    let sends = transport.sends.lock().unwrap();
    assert_eq!(sends.len(), MESSAGES, "distinct recipients");
    for to in &recipients {
        assert_eq!(sends.get(to), Some(&1), "messages sent to {to}");
    }

    assert_eq!(db.connect().pending_count().expect("count pending"), 0);
    let rows = db.outbox_rows();
    assert_eq!(rows.len(), MESSAGES);
    for row in &rows {
        assert!(row.sent, "a row is not marked sent");
        assert!(!row.failed, "a row is marked failed");
        assert!(!row.mail.holds_code(), "a sent row still holds its code");
        assert_eq!(row.attempts, 0);
    }
}

/// A code mail queued while the relay is down is sent once it is up, after
/// the retry delay, and only once.
fn retry_delivers_once_relay_is_up(db: &TestDb) {
    if !relay::aiosmtpd_available() {
        return;
    }
    let port = relay::free_port();
    let settings = SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        timeout: StdDuration::from_secs(10),
        ..SmtpSettings::default()
    };
    let transport = SmtpTransport::new(&settings, MailSettings::default()).expect("SMTP transport");
    let store = db.connect();
    let clock = ManualClock::new(OffsetDateTime::now_utc().replace_nanosecond(0).unwrap());
    let policy = DeliveryPolicy::default();
    store
        .enqueue(&[code_mail("someone@example.com", "042917")], clock.now())
        .expect("queue the message");

    // Nothing listens on the port yet.
    let report = deliver_due(&store, &transport, &clock, &policy).expect("first attempt");
    assert_eq!(report.sent, 0, "{report:?}");
    assert_eq!(report.retried, 1, "{report:?}");
    let DeliveryResult::Retry {
        next_attempt_at,
        error,
    } = &report.outcomes[0].result
    else {
        panic!("expected a retry, got {report:?}");
    };
    assert_eq!(*next_attempt_at, clock.now() + policy.first_retry);
    assert!(error.starts_with("transient:"), "{error}");
    let rows = db.outbox_rows();
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].mail.holds_code(),
        "a retried message keeps its code"
    );
    assert!(!rows[0].sent);
    assert_eq!(rows[0].attempts, 1);

    let Some(relay) = relay::Aiosmtpd::start_on(port) else {
        return;
    };

    clock.advance(policy.first_retry - Duration::seconds(1));
    let early = deliver_due(&store, &transport, &clock, &policy).expect("early call");
    assert!(early.is_empty(), "sent before the retry delay: {early:?}");
    assert!(relay.messages().is_empty());

    clock.advance(Duration::seconds(1));
    let report = deliver_due(&store, &transport, &clock, &policy).expect("second attempt");
    assert_eq!(report.sent, 1, "{report:?}");
    assert_eq!(report.outcomes[0].attempt, 2);
    let DeliveryResult::Sent { message_id } = &report.outcomes[0].result else {
        panic!("expected a sent message, got {report:?}");
    };
    let messages = relay.messages();
    assert_eq!(messages.len(), 1, "messages in the Maildir");
    assert!(messages[0].contains("042917"), "the code is in the message");
    assert!(
        messages[0].contains(&format!("Message-ID: {message_id}")),
        "{message_id} is not the stored message's Message-ID"
    );

    for _ in 0..3 {
        clock.advance(Duration::minutes(10));
        let later = deliver_due(&store, &transport, &clock, &policy).expect("later call");
        assert!(later.is_empty(), "sent again: {later:?}");
    }
    assert_eq!(relay.messages().len(), 1, "messages in the Maildir");
    let rows = db.outbox_rows();
    assert!(rows[0].sent);
    assert!(!rows[0].mail.holds_code(), "a sent message keeps its code");
    assert!(!rows[0].payload.contains("042917"), "{}", rows[0].payload);
}
