//! POST /session, PUT /session/verification and GET /session.

use serde_json::{Value, json};

use crate::harness::{TestApp, assert_error};

fn start_login(app: &TestApp, email: &str) -> Value {
    let response = app.post("/session", &json!({"email": email}));
    assert_eq!(response.status(), 202);
    response.json().unwrap()
}

fn verify(app: &TestApp, login: &Value, code: Value) -> reqwest::blocking::Response {
    app.put(
        "/session/verification",
        &json!({"verificationCodeID": login["verificationCodeID"], "code": code}),
    )
}

fn login_verify_check(app: &TestApp) {
    app.register_user("login@example.com", "login");
    let login = start_login(app, "LOGIN@example.com");
    let code = app.next_code("login@example.com");

    assert_eq!(verify(app, &login, json!(code)).status(), 202);
    let check = app.get_auth("/session", login["bearer"].as_str().unwrap());
    assert_eq!(check.status(), 200);
    assert_eq!(
        check.json::<Value>().unwrap()["sessionID"],
        login["sessionID"]
    );
}

fn login_accepts_code_as_number(app: &TestApp) {
    app.register_user("number@example.com", "number");
    // Draw logins until a code without a leading zero comes up, so the
    // number form can be checked both with and without padding.
    let login = start_login(app, "number@example.com");
    let code = app.next_code("number@example.com");
    let number: u64 = code.parse().unwrap();
    assert_eq!(verify(app, &login, json!(number)).status(), 202);
}

fn login_unknown_address_looks_the_same(app: &TestApp) {
    app.register_user("known@example.com", "known");
    let mails_before = app.mail_files().len();
    let sessions_before = app.count_rows("sessions");

    let known = app.post("/session", &json!({"email": "known@example.com"}));
    let unknown = app.post("/session", &json!({"email": "nobody@example.com"}));
    assert_eq!(known.status(), unknown.status());
    let mut known_headers: Vec<String> = known.headers().keys().map(|k| k.to_string()).collect();
    let mut unknown_headers: Vec<String> =
        unknown.headers().keys().map(|k| k.to_string()).collect();
    known_headers.sort();
    unknown_headers.sort();
    assert_eq!(known_headers, unknown_headers);

    let known: Value = known.json().unwrap();
    let unknown: Value = unknown.json().unwrap();
    let shape = |v: &Value| {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map(str::len), v.is_number()))
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&known), shape(&unknown));

    // Only the known address got mail, and nothing was stored for the other.
    app.next_code("known@example.com");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(app.mail_files().len(), mails_before + 1);
    assert_eq!(app.count_rows("sessions"), sessions_before + 1);

    // Its session can never be verified.
    for guess in ["000000", "123456"] {
        assert_error(verify(app, &unknown, json!(guess)), 401);
    }
}

fn verify_rejects_wrong_code(app: &TestApp) {
    app.register_user("wrong@example.com", "wrong");
    let login = start_login(app, "wrong@example.com");
    let code = app.next_code("wrong@example.com");
    let wrong = if code == "000000" { "000001" } else { "000000" };

    let message = assert_error(verify(app, &login, json!(wrong)), 401);
    assert!(!message.contains(&code));
    assert_error(
        app.get_auth("/session", login["bearer"].as_str().unwrap()),
        401,
    );

    // The right code still works after one miss.
    assert_eq!(verify(app, &login, json!(code)).status(), 202);
}

fn verify_rejects_reused_code(app: &TestApp) {
    app.register_user("reuse@example.com", "reuse");
    let login = start_login(app, "reuse@example.com");
    let code = app.next_code("reuse@example.com");
    assert_eq!(verify(app, &login, json!(code)).status(), 202);
    assert_error(verify(app, &login, json!(code)), 401);
}

fn code_dies_after_five_wrong_attempts(app: &TestApp) {
    app.register_user("dead@example.com", "dead");
    let login = start_login(app, "dead@example.com");
    let code = app.next_code("dead@example.com");
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..5 {
        assert_error(verify(app, &login, json!(wrong)), 401);
    }
    let message = assert_error(verify(app, &login, json!(code)), 401);
    let unknown = assert_error(
        app.put(
            "/session/verification",
            &json!({"verificationCodeID": uuid::Uuid::new_v4(), "code": code}),
        ),
        401,
    );
    assert_eq!(
        message, unknown,
        "a dead code and an unknown id read the same"
    );
}

fn malformed_code_is_not_an_attempt(app: &TestApp) {
    app.register_user("shape@example.com", "shape");
    let login = start_login(app, "shape@example.com");
    let code = app.next_code("shape@example.com");
    for bad in [
        json!("12345"),
        json!(""),
        json!("abcdef"),
        json!("1234567"),
        json!(-1),
        json!(1.5),
        json!(null),
        json!([1]),
        json!(1_000_000),
    ] {
        assert_error(verify(app, &login, bad), 400);
    }
    assert_error(
        app.put(
            "/session/verification",
            &json!({"verificationCodeID": "nope", "code": code}),
        ),
        400,
    );
    assert_error(
        app.put("/session/verification", &json!({"code": code})),
        400,
    );
    // None of the above spent an attempt: five wrong ones are still allowed.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..4 {
        assert_error(verify(app, &login, json!(wrong)), 401);
    }
    assert_eq!(verify(app, &login, json!(code)).status(), 202);
}

fn login_rejects_invalid_address(app: &TestApp) {
    for bad in [
        json!("nope"),
        json!(""),
        json!(7),
        json!(null),
        json!("a@b.c\nx"),
    ] {
        assert_error(app.post("/session", &json!({"email": bad})), 400);
    }
    assert_error(app.post("/session", &json!({})), 400);
    assert_eq!(app.count_rows("sessions"), 0);
}

fn check_accepts_bearer_forms(app: &TestApp) {
    let user = app.register_user("forms@example.com", "forms");
    for value in [
        format!("Bearer {}", user.bearer),
        format!("bearer {}", user.bearer),
        format!("BEARER {}", user.bearer),
        user.bearer.clone(),
    ] {
        let response = app
            .request(reqwest::Method::GET, "/session")
            .header("authorization", value.clone())
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{value}");
    }
}

fn check_rejects_bad_credentials(app: &TestApp) {
    let user = app.register_user("creds@example.com", "creds");
    let send = |value: Option<&str>| {
        let mut request = app.request(reqwest::Method::GET, "/session");
        if let Some(value) = value {
            request = request.header("authorization", value);
        }
        request.send().unwrap()
    };
    assert_error(send(None), 401);
    assert_error(send(Some("Bearer ")), 401);
    assert_error(send(Some("Basic dXNlcjpwYXNz")), 401);
    assert_error(send(Some(&format!("Bearer {}x", user.bearer))), 401);
    assert_error(send(Some(&format!("Bearer {}", "a".repeat(64)))), 401);
    assert_error(send(Some(&format!("Bearer {}", "a".repeat(5000)))), 401);
}

fn unknown_route_and_method(app: &TestApp) {
    let response = app.request(reqwest::Method::GET, "/nope").send().unwrap();
    assert_error(response, 404);
    let response = app.raw(reqwest::Method::GET, "/elsewhere").send().unwrap();
    assert_error(response, 404);
    let response = app
        .request(reqwest::Method::PATCH, "/session")
        .send()
        .unwrap();
    assert_error(response, 405);
    let response = app.request(reqwest::Method::GET, "/user").send().unwrap();
    assert_error(response, 405);
}

crate::on_both_backends!(
    login_verify_check,
    login_accepts_code_as_number,
    login_unknown_address_looks_the_same,
    verify_rejects_wrong_code,
    verify_rejects_reused_code,
    code_dies_after_five_wrong_attempts,
    malformed_code_is_not_an_attempt,
    login_rejects_invalid_address,
    check_accepts_bearer_forms,
    check_rejects_bad_credentials,
    unknown_route_and_method,
);
