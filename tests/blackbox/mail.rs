//! Code mail over SMTP: the server sends through aiosmtpd, and requests
//! respond at once while the relay hangs.

use std::io::Write as _;
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};
use reqwest::blocking::Response;
use serde_json::{Value, json};
use twauth_domain::mail::{Mail, MailBody};

use crate::harness::{Backend, TestApp, decode_text_part, extract_code, spawn_with};
use crate::relay::{Aiosmtpd, SilentRelay};

/// The maximum time a request may take while the delivery worker waits on a
/// relay that never replies. It is generous, so that a slow test machine
/// passes. A request that waited for the SMTP time-out would take a minute.
const MAX_LATENCY: Duration = Duration::from_secs(2);

/// SMTP time-out of the server under test, longer than any test here runs.
const SMTP_TIMEOUT_SECONDS: &str = "60";

/// Declares one test per backend for a function `fn(Backend)`.
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(crate::harness::Backend::Sqlite);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::$name(crate::harness::Backend::Postgres);
                }
            )*
        }
    };
}

per_backend!(smtp_code_mail_signs_in, hung_relay_does_not_delay_requests);

/// Starts the server with the SMTP transport, without TLS, pointed at a
/// loopback port.
fn spawn_with_smtp(backend: Backend, port: u16) -> Option<TestApp> {
    let port = port.to_string();
    spawn_with(
        backend,
        &[
            ("TWAUTH_MAIL__TRANSPORT__TRANSPORT", "smtp"),
            ("TWAUTH_MAIL__TRANSPORT__HOST", "127.0.0.1"),
            ("TWAUTH_MAIL__TRANSPORT__PORT", &port),
            ("TWAUTH_MAIL__TRANSPORT__TLS", "none"),
            ("TWAUTH_MAIL__TRANSPORT__TIMEOUT", SMTP_TIMEOUT_SECONDS),
        ],
    )
}

/// One outbox row, read with SQL.
struct OutboxRow {
    /// The stored JSON payload, to search for a code as text.
    payload: String,
    mail: Mail,
    sent: bool,
}

fn outbox_rows(app: &TestApp) -> Vec<OutboxRow> {
    #[derive(diesel::QueryableByName)]
    struct Raw {
        #[diesel(sql_type = diesel::sql_types::Text)]
        payload: String,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        sent: i32,
    }
    let query = "SELECT payload, CASE WHEN sent_at IS NULL THEN 0 ELSE 1 END AS sent \
                 FROM outbox ORDER BY created_at";
    let rows: Vec<Raw> = match app.backend {
        Backend::Postgres => {
            let mut conn = PgConnection::establish(&app.database_url).unwrap();
            diesel::sql_query(query).load(&mut conn).unwrap()
        }
        Backend::Sqlite => {
            let path = app.database_url.trim_start_matches("sqlite://");
            let mut conn = SqliteConnection::establish(path).unwrap();
            diesel::sql_query(query).load(&mut conn).unwrap()
        }
    };
    rows.into_iter()
        .map(|raw| OutboxRow {
            mail: serde_json::from_str(&raw.payload).expect("decode a stored message"),
            payload: raw.payload,
            sent: raw.sent == 1,
        })
        .collect()
}

/// Waits until every outbox row is marked sent. The worker marks a message
/// right after the relay accepts it, so the row may lag the Maildir.
fn wait_until_all_sent(app: &TestApp) -> Vec<OutboxRow> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = outbox_rows(app);
        if rows.iter().all(|row| row.sent) {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "outbox rows not marked sent within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Registers through the API, reads the code from the message aiosmtpd
/// stored, and signs in with it.
fn smtp_code_mail_signs_in(backend: Backend) {
    let Some(relay) = Aiosmtpd::start() else {
        return;
    };
    let Some(app) = spawn_with_smtp(backend, relay.port) else {
        return;
    };

    let registered = app.post(
        "/user",
        &json!({"email": "smtp@example.com", "fullName": "Smtp Tester", "alias": "smtp"}),
    );
    assert_eq!(registered.status(), 202);
    let body: Value = registered.json().unwrap();

    let message = relay.wait_for_message_to("smtp@example.com");
    let code = extract_code(&decode_text_part(&message))
        .unwrap_or_else(|| panic!("no code in the message:\n{message}"));
    let verified = app.put(
        "/session/verification",
        &json!({"verificationCodeID": body["verificationCodeID"], "code": code}),
    );
    assert_eq!(verified.status(), 202);
    let session = app.get_auth("/session", body["bearer"].as_str().unwrap());
    assert_eq!(session.status(), 200);
    assert_eq!(
        session.json::<Value>().unwrap()["sessionID"],
        body["sessionID"]
    );

    let rows = wait_until_all_sent(&app);
    assert_eq!(rows.len(), 1, "outbox rows");
    assert!(
        !rows[0].mail.holds_code(),
        "the sent row still holds its code"
    );
    assert!(!rows[0].payload.contains(&code), "{}", rows[0].payload);
    assert_eq!(relay.messages().len(), 1, "messages in the Maildir");
    let log = app.log();
    assert!(log.contains("mail sent"), "{log}");
    assert!(!log.contains(&code), "the server log contains the code");
}

/// Sends a request and returns the response with how long it took.
fn timed(send: impl FnOnce() -> Response) -> (Response, Duration) {
    let started = Instant::now();
    let response = send();
    (response, started.elapsed())
}

/// Fails when a request took longer than [`MAX_LATENCY`], and prints its
/// latency.
fn check_latency(
    backend: Backend,
    request: &str,
    response: Response,
    elapsed: Duration,
) -> Response {
    assert_eq!(response.status(), 202, "{request}");
    assert!(
        elapsed < MAX_LATENCY,
        "{request} took {elapsed:?} on {backend:?} while the relay hung"
    );
    // Written to the stream directly so that `--nocapture` shows it.
    let _ = writeln!(std::io::stderr(), "{backend:?} {request}: {elapsed:?}");
    response
}

/// Requests that queue code mail respond at once while the delivery worker is
/// stuck on a relay that accepts the connection and never replies.
fn hung_relay_does_not_delay_requests(backend: Backend) {
    let relay = SilentRelay::start();
    let Some(app) = spawn_with_smtp(backend, relay.port) else {
        return;
    };

    let (response, elapsed) = timed(|| {
        app.post(
            "/user",
            &json!({"email": "hung@example.com", "fullName": "Hung Tester", "alias": "hung"}),
        )
    });
    let registered: Value = check_latency(backend, "POST /user", response, elapsed)
        .json()
        .unwrap();
    // The worker has taken the first message and waits for the greeting.
    relay.wait_for_connections(1, Duration::from_secs(10));

    // The code is still in the outbox, since the message was not sent.
    let rows = outbox_rows(&app);
    let MailBody::Code {
        code: Some(code), ..
    } = &rows[0].mail.body
    else {
        panic!("the queued registration mail holds no code");
    };
    let code = code.expose().to_owned();
    let (response, elapsed) = timed(|| {
        app.put(
            "/session/verification",
            &json!({"verificationCodeID": registered["verificationCodeID"], "code": code}),
        )
    });
    check_latency(backend, "PUT /session/verification", response, elapsed);

    for i in 0..3 {
        let (response, elapsed) = timed(|| {
            app.post(
                "/user",
                &json!({
                    "email": format!("hung{i}@example.com"),
                    "fullName": "Hung Tester",
                    "alias": format!("hung{i}"),
                }),
            )
        });
        check_latency(backend, "POST /user", response, elapsed);
        let (response, elapsed) =
            timed(|| app.post("/session", &json!({"email": "hung@example.com"})));
        check_latency(backend, "POST /session", response, elapsed);
    }

    assert_eq!(
        relay.accepted(),
        1,
        "the worker left the hung connection before the requests ended"
    );
    let rows = outbox_rows(&app);
    assert_eq!(rows.len(), 7, "queued messages");
    assert!(rows.iter().all(|row| !row.sent), "a message was sent");
    assert!(rows.iter().all(|row| row.mail.holds_code()));
}
