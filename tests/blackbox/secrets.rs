//! Secrets at rest and in the log: after a full flow, no bearer token, API
//! secret or one-time code is in the database or in a trace-level log, and
//! no full email address of a user is in the log.

use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::blocking::Response;
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, spawn_with};

const OWNER: &str = "leaky.owner@example.com";
const SECOND: &str = "second.inbox@example.com";

/// Everything secret the flow saw.
#[derive(Default)]
struct Seen {
    tokens: Vec<String>,
    codes: Vec<String>,
}

fn no_store(response: &Response, what: &str) {
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .map(|v| v.as_bytes()),
        Some(&b"no-store"[..]),
        "{what}: Cache-Control"
    );
}

fn accepted(response: Response, what: &str) -> Value {
    assert_eq!(response.status(), 202, "{what}");
    no_store(&response, what);
    response.json().unwrap()
}

fn verify(app: &TestApp, path: &str, bearer: Option<&str>, code_id: &Value, code: &str) {
    let body = json!({"verificationCodeID": code_id, "code": code});
    let response = match bearer {
        Some(bearer) => app.put_auth(path, bearer, &body),
        None => app.put(path, &body),
    };
    assert_eq!(response.status(), 202, "PUT {path}");
}

/// Registers, logs in again, adds and verifies an email, and creates and
/// verifies a key pair, recording every secret handed out.
fn run_full_flow(app: &TestApp) -> Seen {
    let mut seen = Seen::default();

    let started = accepted(
        app.post(
            "/user",
            &json!({"email": OWNER, "fullName": "Leaky Owner", "alias": "leaky"}),
        ),
        "POST /user",
    );
    let code = app.next_code(OWNER);
    verify(
        app,
        "/session/verification",
        None,
        &started["verificationCodeID"],
        &code,
    );
    seen.tokens
        .push(started["bearer"].as_str().unwrap().to_owned());
    seen.codes.push(code);

    let login = accepted(
        app.post("/session", &json!({"email": OWNER})),
        "POST /session",
    );
    let code = app.next_code(OWNER);
    verify(
        app,
        "/session/verification",
        None,
        &login["verificationCodeID"],
        &code,
    );
    let bearer = login["bearer"].as_str().unwrap().to_owned();
    seen.tokens.push(bearer.clone());
    seen.codes.push(code);

    let added = accepted(
        app.post_auth("/email", &bearer, &json!({"address": SECOND})),
        "POST /email",
    );
    let code = app.next_code(SECOND);
    verify(
        app,
        "/email/verification",
        Some(&bearer),
        &added["verificationCodeID"],
        &code,
    );
    seen.codes.push(code);

    let key = accepted(
        app.post_auth(
            "/keypair",
            &bearer,
            &json!({"name": "leak check", "days": 7}),
        ),
        "POST /keypair",
    );
    // The owner's address also gets notices; read mail until the code.
    let code = loop {
        let text = app.next_mail(OWNER);
        if let Some(code) = crate::harness::extract_code(&text) {
            break code;
        }
    };
    verify(
        app,
        "/keypair/verification",
        Some(&bearer),
        &key["verificationCodeID"],
        &code,
    );
    let api_key = key["apiKey"].as_str().unwrap().to_owned();
    let api_secret = key["apiSecret"].as_str().unwrap().to_owned();
    seen.tokens.push(api_secret.clone());
    seen.codes.push(code);

    // Both credentials work, so the flow really stored what it needs.
    for token in &seen.tokens[..2] {
        let response = app.get_auth("/session", token);
        assert_eq!(response.status(), 200, "GET /session");
    }
    let response = app
        .request(Method::GET, "/keypair")
        .header("api-key", &api_key)
        .header("api-secret", &api_secret)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "GET /keypair");
    seen
}

/// The forms a token could take in a dump: as sent, upper-cased, the hex of
/// its text (how PostgreSQL dumps a `bytea` holding it), and the raw bytes
/// its hex stands for (how SQLite stores a blob).
fn token_forms(token: &str) -> Vec<Vec<u8>> {
    let mut forms = vec![
        token.as_bytes().to_vec(),
        token.to_ascii_uppercase().into_bytes(),
        hex_of(token.as_bytes()).into_bytes(),
    ];
    if let Some(raw) = unhex(token) {
        forms.push(raw);
    }
    forms
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Whether `code` appears in `text` as a whole run of digits. A code inside
/// a longer number (a Unix time, say) is a coincidence, not a leak.
fn contains_code(text: &[u8], code: &str) -> bool {
    let code = code.as_bytes();
    text.windows(code.len()).enumerate().any(|(i, window)| {
        let before = i.checked_sub(1).map(|j| text[j]);
        let after = text.get(i + code.len()).copied();
        window == code
            && !before.is_some_and(|b| b.is_ascii_digit())
            && !after.is_some_and(|b| b.is_ascii_digit())
    })
}

/// Waits until the delivery worker has marked every outbox message sent,
/// which is when it redacts the code from the stored message.
fn wait_for_outbox_sent(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.count_rows("outbox WHERE sent_at IS NULL AND failed_at IS NULL") > 0 {
        assert!(Instant::now() < deadline, "the outbox was not drained");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every byte the database holds for the test: `pg_dump` output, or for
/// SQLite the raw database file and its write-ahead log.
fn database_bytes(app: &TestApp) -> Vec<u8> {
    let mut bytes = app.dump_database().into_bytes();
    if app.backend == Backend::Sqlite {
        // `dump_database` decodes lossily; the raw bytes keep blobs intact.
        let path = app.database_url.trim_start_matches("sqlite://");
        for suffix in ["", "-wal", "-journal"] {
            bytes.extend(std::fs::read(format!("{path}{suffix}")).unwrap_or_default());
        }
    }
    bytes
}

/// The log without the timestamp that starts each line, whose microseconds
/// are six digits and could match a code by chance.
fn log_without_timestamps(log: &str) -> String {
    log.lines()
        .map(|line| line.split_once(' ').map_or("", |(_, rest)| rest))
        .collect::<Vec<_>>()
        .join("\n")
}

fn no_secret_at_rest_or_in_log(backend: Backend) {
    let Some(app) = spawn_with(backend, &[("TWAUTH_LOG__LEVEL", "trace")]) else {
        return;
    };
    let seen = run_full_flow(&app);

    // The outbox row of a code mail holds the code until the worker has
    // written the message and marked it sent; `next_code` above only saw
    // the file, so wait for the mark before reading the database.
    wait_for_outbox_sent(&app);

    let database = database_bytes(&app);
    for token in &seen.tokens {
        for form in token_forms(token) {
            assert!(
                !contains(&database, &form),
                "a token is stored in clear ({} bytes)",
                form.len()
            );
        }
    }
    for code in &seen.codes {
        assert!(!contains_code(&database, code), "a code is stored in clear");
        let hex = hex_of(code.as_bytes());
        assert!(
            !contains(&database, hex.as_bytes()),
            "a code is stored as hex"
        );
    }

    let log = app.log();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "the log is verbose"
    );
    let log = log_without_timestamps(&log);
    for token in &seen.tokens {
        assert!(!log.contains(token.as_str()), "a token is in the log");
        assert!(
            !log.contains(&token.to_ascii_uppercase()),
            "a token is in the log"
        );
    }
    for code in &seen.codes {
        assert!(!contains_code(log.as_bytes(), code), "a code is in the log");
    }
    for address in [OWNER, SECOND] {
        assert!(!log.contains(address), "{address} is in the log");
    }
}

#[test]
fn sqlite_no_secret_at_rest_or_in_log() {
    no_secret_at_rest_or_in_log(Backend::Sqlite);
}

#[test]
fn postgres_no_secret_at_rest_or_in_log() {
    no_secret_at_rest_or_in_log(Backend::Postgres);
}
