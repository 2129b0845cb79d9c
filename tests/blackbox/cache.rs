//! The credential cache across processes: two servers on one database, a
//! credential checked (and so cached) on one and revoked through the other,
//! which the first must reject within a second.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, extract_code, spawn, spawn_with};

/// How long a revocation may take to reach another process.
const PROPAGATION_LIMIT: Duration = Duration::from_secs(1);

/// Starts two servers on one database and one outbox, so that either
/// delivery worker may send a code and the test finds it in one folder.
fn two_replicas(backend: Backend) -> Option<(TestApp, TestApp)> {
    let first = spawn(backend)?;
    let outbox = first.outbox.display().to_string();
    let second = spawn_with(
        backend,
        &[
            ("TWAUTH_DATABASE__URL", &first.database_url),
            ("TWAUTH_DATABASE__MIGRATE_ON_START", "false"),
            ("TWAUTH_MAIL__TRANSPORT__DIR", &outbox),
        ],
    )?;
    Some((first, second))
}

/// Sends requests built by `send` every 50 ms until one gets 401, and
/// returns how long that took. Panics past the propagation limit.
fn time_until_rejected(send: impl Fn() -> reqwest::blocking::Response, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        let status = send().status().as_u16();
        if status == 401 {
            return started.elapsed();
        }
        assert_eq!(status, 200, "{what}: unexpected status while waiting");
        assert!(
            started.elapsed() < PROPAGATION_LIMIT,
            "{what}: still accepted {:?} after the revocation",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn check_session(app: &TestApp, bearer: &str) -> reqwest::blocking::Response {
    app.get_auth("/session", bearer)
}

fn check_key_pair(app: &TestApp, key: &str, secret: &str) -> reqwest::blocking::Response {
    app.request(Method::GET, "/keypair")
        .header("api-key", key)
        .header("api-secret", secret)
        .send()
        .expect("send")
}

/// Reads mails to `to` until one carries a code; a key pair's notice may
/// arrive before its code.
fn next_code_skipping_notices(app: &TestApp, to: &str) -> String {
    for _ in 0..3 {
        if let Some(code) = extract_code(&app.next_mail(to)) {
            return code;
        }
    }
    panic!("no code among the next three mails to {to}");
}

fn closed_session_is_rejected_by_other_replica(backend: Backend) {
    let Some((a, b)) = two_replicas(backend) else {
        return;
    };
    let user = a.register_user("cache@example.com", "cached");
    let second = a.login("cache@example.com");

    // Checked twice on B, so the second check is served from B's cache.
    for _ in 0..2 {
        assert_eq!(check_session(&b, &second.bearer).status(), 200);
    }
    assert_eq!(check_session(&a, &second.bearer).status(), 200);

    let closed = a.delete_auth(&format!("/session/{}", second.session_id), &user.bearer);
    assert!(closed.status().is_success(), "close: {}", closed.status());

    // The process that closed the session rejects it at once.
    assert_eq!(check_session(&a, &second.bearer).status(), 401);
    let took = time_until_rejected(|| check_session(&b, &second.bearer), "closed session");
    eprintln!("{backend:?}: closed session rejected by the other replica after {took:?}");

    // The session that closed the other one is untouched.
    assert_eq!(check_session(&b, &user.bearer).status(), 200);
}

fn deleted_key_pair_is_rejected_by_other_replica(backend: Backend) {
    let Some((a, b)) = two_replicas(backend) else {
        return;
    };
    let user = a.register_user("keys-cache@example.com", "keycached");
    let created = a.post_auth("/keypair", &user.bearer, &json!({"name": "ci", "days": 30}));
    assert_eq!(created.status(), 202, "create key pair");
    let key: Value = created.json().unwrap();
    let code = next_code_skipping_notices(&a, "keys-cache@example.com");
    let verified = a.put_auth(
        "/keypair/verification",
        &user.bearer,
        &json!({"verificationCodeID": key["verificationCodeID"], "code": code}),
    );
    assert_eq!(verified.status(), 202, "verify key pair");
    let api_key = key["apiKey"].as_str().unwrap();
    let secret = key["apiSecret"].as_str().unwrap();

    for _ in 0..2 {
        assert_eq!(check_key_pair(&b, api_key, secret).status(), 200);
    }
    // A wrong secret is rejected even while the key pair is cached.
    assert_eq!(check_key_pair(&b, api_key, &"0".repeat(64)).status(), 401);

    let key_id = key["keyID"].as_str().expect("keyID in the creation body");
    let deleted = a.delete_auth(&format!("/keypair/{key_id}"), &user.bearer);
    assert!(
        deleted.status().is_success(),
        "delete: {}",
        deleted.status()
    );

    assert_eq!(check_key_pair(&a, api_key, secret).status(), 401);
    let took = time_until_rejected(|| check_key_pair(&b, api_key, secret), "deleted key pair");
    eprintln!("{backend:?}: deleted key pair rejected by the other replica after {took:?}");
}

mod sqlite {
    use super::*;

    #[test]
    fn closed_session_reaches_other_process() {
        closed_session_is_rejected_by_other_replica(Backend::Sqlite);
    }

    #[test]
    fn deleted_key_pair_reaches_other_process() {
        deleted_key_pair_is_rejected_by_other_replica(Backend::Sqlite);
    }
}

mod postgres {
    use super::*;

    #[test]
    fn closed_session_reaches_other_replica() {
        closed_session_is_rejected_by_other_replica(Backend::Postgres);
    }

    #[test]
    fn deleted_key_pair_reaches_other_replica() {
        deleted_key_pair_is_rejected_by_other_replica(Backend::Postgres);
    }
}
