//! Limits on codes, mail and requests, and what a client cannot learn.

use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, assert_error, spawn_with};

fn retry_after(response: &reqwest::blocking::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .expect("Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn codes_per_address_are_limited(backend: Backend) {
    let Some(app) = spawn_with(
        backend,
        &[
            ("TWAUTH_LIMITS__CODES_PER_ADDRESS", "3"),
            ("TWAUTH_LIMITS__CODES_PER_ADDRESS_GAP", "0"),
        ],
    ) else {
        return;
    };
    app.register_user("flood@example.com", "flood");
    for _ in 0..2 {
        let response = app.post("/session", &json!({"email": "flood@example.com"}));
        assert_eq!(response.status(), 202);
    }
    let sessions_before = app.count_rows("sessions");
    let response = app.post("/session", &json!({"email": "FLOOD@example.com"}));
    let wait = retry_after(&response);
    assert!(wait > 0, "Retry-After {wait}");
    assert!(wait <= 900, "Retry-After {wait}");
    assert_error(response, 429);
    assert_eq!(app.count_rows("sessions"), sessions_before);

    // An address without an account is limited the same way, so the limit
    // reveals nothing about which addresses exist.
    for _ in 0..3 {
        let response = app.post("/session", &json!({"email": "ghost@example.com"}));
        assert_eq!(response.status(), 202);
    }
    assert_error(
        app.post("/session", &json!({"email": "ghost@example.com"})),
        429,
    );
}

fn code_gap_is_enforced(backend: Backend) {
    let Some(app) = spawn_with(backend, &[("TWAUTH_LIMITS__CODES_PER_ADDRESS_GAP", "60")]) else {
        return;
    };
    let response = app.post(
        "/user",
        &json!({"email": "gap@example.com", "fullName": "Gap", "alias": "gap"}),
    );
    assert_eq!(response.status(), 202);
    let response = app.post("/session", &json!({"email": "gap@example.com"}));
    let wait = retry_after(&response);
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_error(response, 429);
}

fn account_locks_after_failures(backend: Backend) {
    let Some(app) = spawn_with(backend, &[("TWAUTH_LIMITS__ACCOUNT_FAILURES", "3")]) else {
        return;
    };
    app.register_user("lock@example.com", "lock");

    // Three wrong guesses spread over two codes reach the account ceiling.
    let mut logins = Vec::new();
    for _ in 0..2 {
        let login: Value = app
            .post("/session", &json!({"email": "lock@example.com"}))
            .json()
            .unwrap();
        let code = app.next_code("lock@example.com");
        logins.push((login, code));
    }
    let wrong = |code: &str| if code == "000000" { "000001" } else { "000000" }.to_owned();
    let guesses = [
        (0, wrong(&logins[0].1)),
        (0, wrong(&logins[0].1)),
        (1, wrong(&logins[1].1)),
    ];
    for (index, guess) in guesses {
        let response = app.put(
            "/session/verification",
            &json!({"verificationCodeID": logins[index].0["verificationCodeID"], "code": guess}),
        );
        assert_error(response, 401);
    }

    // Now even the right code is refused, with a delay to wait.
    let (login, code) = &logins[1];
    let response = app.put(
        "/session/verification",
        &json!({"verificationCodeID": login["verificationCodeID"], "code": code}),
    );
    let wait = retry_after(&response);
    assert!(wait > 3000, "Retry-After {wait}");
    assert!(wait <= 3600, "Retry-After {wait}");
    let message = assert_error(response, 429);
    assert!(message.contains("account"), "{message}");
    assert_error(
        app.get_auth("/session", login["bearer"].as_str().unwrap()),
        401,
    );
}

fn forged_forwarded_for_changes_nothing(backend: Backend) {
    let Some(app) = spawn_with(backend, &[("TWAUTH_LIMITS__REGISTRATIONS_PER_CLIENT", "2")]) else {
        return;
    };
    for (i, forged) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .iter()
        .enumerate()
    {
        let response = app
            .request(reqwest::Method::POST, "/user")
            .header("x-forwarded-for", *forged)
            .json(&json!({"email": format!("f{i}@example.com"), "fullName": "F", "alias": format!("ff{i}")}))
            .send()
            .unwrap();
        if i < 2 {
            assert_eq!(response.status(), 202);
            let body: Value = response.json().unwrap();
            assert_eq!(
                body["ip"], "127.0.0.1",
                "an untrusted peer's header is ignored"
            );
        } else {
            assert_error(response, 429);
        }
    }
}

fn trusted_proxy_forwards_client(backend: Backend) {
    let Some(app) = spawn_with(backend, &[("TWAUTH_SERVER__TRUSTED_PROXIES", "127.0.0.1")]) else {
        return;
    };
    let response = app
        .request(reqwest::Method::POST, "/user")
        .header("x-forwarded-for", "203.0.113.9, 127.0.0.1")
        .json(&json!({"email": "p@example.com", "fullName": "P", "alias": "pp"}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().unwrap();
    assert_eq!(body["ip"], "203.0.113.9");
}

fn concurrent_right_codes_succeed_once(app: &TestApp) {
    app.register_user("race@example.com", "race");
    let login: Value = app
        .post("/session", &json!({"email": "race@example.com"}))
        .json()
        .unwrap();
    let code = app.next_code("race@example.com");
    let body = json!({"verificationCodeID": login["verificationCodeID"], "code": code});
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| scope.spawn(|| app.put("/session/verification", &body).status().as_u16()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 202 || *s == 401),
        "{statuses:?}"
    );
}

fn concurrent_wrong_codes_respect_limit(backend: Backend) {
    // The account ceiling is set above the number of guesses, so only the
    // code's own limit of five can stop them.
    let Some(app) = spawn_with(backend, &[("TWAUTH_LIMITS__ACCOUNT_FAILURES", "100")]) else {
        return;
    };
    let app = &app;
    app.register_user("guess@example.com", "guess");
    let login: Value = app
        .post("/session", &json!({"email": "guess@example.com"}))
        .json()
        .unwrap();
    let code = app.next_code("guess@example.com");
    let guesses: Vec<String> = (0..100u32)
        .map(|n| format!("{:06}", n))
        .filter(|g| *g != code)
        .take(60)
        .collect();
    std::thread::scope(|scope| {
        for chunk in guesses.chunks(10) {
            let login = &login;
            scope.spawn(move || {
                for guess in chunk {
                    let body =
                        json!({"verificationCodeID": login["verificationCodeID"], "code": guess});
                    let status = app.put("/session/verification", &body).status().as_u16();
                    assert_eq!(status, 401);
                }
            });
        }
    });
    // After 60 concurrent wrong guesses the code is dead, the right code
    // included: at most five attempts were ever taken.
    let body = json!({"verificationCodeID": login["verificationCodeID"], "code": code});
    assert_error(app.put("/session/verification", &body), 401);
}

mod sqlite {
    use crate::harness::Backend::Sqlite;

    #[test]
    fn codes_per_address_are_limited() {
        super::codes_per_address_are_limited(Sqlite);
    }
    #[test]
    fn code_gap_is_enforced() {
        super::code_gap_is_enforced(Sqlite);
    }
    #[test]
    fn account_locks_after_failures() {
        super::account_locks_after_failures(Sqlite);
    }
    #[test]
    fn forged_forwarded_for_changes_nothing() {
        super::forged_forwarded_for_changes_nothing(Sqlite);
    }
    #[test]
    fn trusted_proxy_forwards_client() {
        super::trusted_proxy_forwards_client(Sqlite);
    }
    #[test]
    fn concurrent_wrong_codes_respect_limit() {
        super::concurrent_wrong_codes_respect_limit(Sqlite);
    }
}

mod postgres {
    use crate::harness::Backend::Postgres;

    #[test]
    fn codes_per_address_are_limited() {
        super::codes_per_address_are_limited(Postgres);
    }
    #[test]
    fn code_gap_is_enforced() {
        super::code_gap_is_enforced(Postgres);
    }
    #[test]
    fn account_locks_after_failures() {
        super::account_locks_after_failures(Postgres);
    }
    #[test]
    fn forged_forwarded_for_changes_nothing() {
        super::forged_forwarded_for_changes_nothing(Postgres);
    }
    #[test]
    fn trusted_proxy_forwards_client() {
        super::trusted_proxy_forwards_client(Postgres);
    }
    #[test]
    fn concurrent_wrong_codes_respect_limit() {
        super::concurrent_wrong_codes_respect_limit(Postgres);
    }
}

mod concurrency {
    use super::concurrent_right_codes_succeed_once;

    crate::on_both_backends!(concurrent_right_codes_succeed_once);
}
