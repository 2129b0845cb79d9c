//! POST /user, and the first session it starts.

use serde_json::{Value, json};

use crate::harness::{TestApp, assert_error};

fn register_verify_check(app: &TestApp) {
    let response = app
        .request(reqwest::Method::POST, "/user")
        .header("user-agent", "blackbox/1.0")
        .json(&json!({"email": "Jane.Doe@Example.com", "fullName": "Jane Doe", "alias": "jane"}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "bearer",
            "expireAt",
            "ip",
            "sessionID",
            "userAgent",
            "verificationCodeID"
        ]
    );
    assert_eq!(body["ip"], "127.0.0.1");
    assert_eq!(body["userAgent"], "blackbox/1.0");
    let bearer = body["bearer"].as_str().unwrap();

    // The unverified session authenticates nothing.
    assert_error(app.get_auth("/session", bearer), 401);

    let code = app.next_code("jane.doe@example.com");
    let verified = app.put(
        "/session/verification",
        &json!({"verificationCodeID": body["verificationCodeID"], "code": code}),
    );
    assert_eq!(verified.status(), 202);
    assert_eq!(
        verified.json::<Value>().unwrap(),
        json!({"message": "acknowledged"})
    );

    let check = app.get_auth("/session", bearer);
    assert_eq!(check.status(), 200);
    let session: Value = check.json().unwrap();
    assert_eq!(session["sessionID"], body["sessionID"]);
    assert_eq!(session["alias"], "jane");
    assert_eq!(session["fullName"], "Jane Doe");
    assert_eq!(session["verified"], true);
    assert_eq!(session["roles"], json!(["user"]));
    assert_eq!(session["groups"], json!(["public"]));
    assert_eq!(session["ip"], "127.0.0.1");
    assert_eq!(session["userAgent"], "blackbox/1.0");
    assert!(session["expireAt"].as_i64().unwrap() > body["expireAt"].as_i64().unwrap());
    assert!(uuid::Uuid::parse_str(session["userID"].as_str().unwrap()).is_ok());
    assert_eq!(session.as_object().unwrap().len(), 10);
}

fn register_rejects_taken_address(app: &TestApp) {
    app.register_user("taken@example.com", "first");
    let users_before = app.count_rows("users");

    let response = app.post(
        "/user",
        &json!({"email": "TAKEN@example.com", "fullName": "Other", "alias": "second"}),
    );
    let message = assert_error(response, 409);
    assert!(message.contains("email"), "{message}");
    assert_eq!(app.count_rows("users"), users_before);
}

fn register_rejects_taken_alias(app: &TestApp) {
    app.register_user("one@example.com", "Johny");
    let users_before = app.count_rows("users");

    let response = app.post(
        "/user",
        &json!({"email": "two@example.com", "fullName": "Other", "alias": "johny"}),
    );
    let message = assert_error(response, 409);
    assert!(message.contains("alias"), "{message}");
    assert_eq!(app.count_rows("users"), users_before);
}

fn register_rejects_invalid_fields(app: &TestApp) {
    let valid = json!({"email": "ok@example.com", "fullName": "Ok Name", "alias": "okay"});
    let cases = [
        ("email", json!("not-an-address")),
        ("email", json!("a@b@example.com")),
        ("email", json!("\"q\"@example.com")),
        ("email", json!("a@example.com\r\nBcc: x@example.org")),
        ("email", json!("")),
        ("email", json!(5)),
        ("email", json!(null)),
        ("email", json!(["a@example.com"])),
        ("fullName", json!("")),
        ("fullName", json!("   ")),
        ("fullName", json!("x".repeat(101))),
        ("fullName", json!("bad\u{0}name")),
        ("fullName", json!({"first": "x"})),
        ("alias", json!("a")),
        ("alias", json!("has space")),
        ("alias", json!("x".repeat(33))),
        ("alias", json!(true)),
    ];
    for (field, value) in cases {
        let mut body = valid.clone();
        body[field] = value.clone();
        let message = assert_error(app.post("/user", &body), 400);
        assert!(!message.contains('\n'), "{message}");
        let _ = (field, value);
    }
    for field in ["email", "fullName", "alias"] {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(field);
        let message = assert_error(app.post("/user", &body), 400);
        assert!(message.contains(field), "{message}");
    }
    assert_eq!(app.count_rows("users"), 0);
    assert_eq!(app.count_rows("sessions"), 0);
    assert!(app.mail_files().is_empty());
}

fn register_rejects_malformed_bodies(app: &TestApp) {
    let send = |body: &str, content_type: &str| {
        app.request(reqwest::Method::POST, "/user")
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .unwrap()
    };
    assert_error(send("", "application/json"), 400);
    assert_error(send("{", "application/json"), 400);
    assert_error(send("[]", "application/json"), 400);
    assert_error(send("null", "application/json"), 400);
    assert_error(send(&"[".repeat(10_000), "application/json"), 400);
    assert_error(send(r#"{"email":"a@example.com"}"#, "text/plain"), 415);
    let big = format!(
        r#"{{"email":"a@example.com","fullName":"{}","alias":"abc"}}"#,
        "x".repeat(100_000)
    );
    assert_error(send(&big, "application/json"), 413);
    assert_eq!(app.count_rows("users"), 0);
}

fn register_ignores_unknown_fields(app: &TestApp) {
    let response = app.post(
        "/user",
        &json!({"email": "x@example.com", "fullName": "X", "alias": "xx",
                "roles": ["users_admin"], "verified": true, "userID": uuid::Uuid::nil()}),
    );
    assert_eq!(response.status(), 202);
    let body: Value = response.json().unwrap();
    // Still unverified: the bearer authenticates nothing.
    assert_error(
        app.get_auth("/session", body["bearer"].as_str().unwrap()),
        401,
    );
    let code = app.next_code("x@example.com");
    app.put(
        "/session/verification",
        &json!({"verificationCodeID": body["verificationCodeID"], "code": code}),
    );
    let session: Value = app
        .get_auth("/session", body["bearer"].as_str().unwrap())
        .json()
        .unwrap();
    assert_eq!(session["roles"], json!(["user"]));
    assert_ne!(session["userID"], json!(uuid::Uuid::nil()));
}

fn public_alias_lookup(app: &TestApp) {
    let user = app.register_user("alias@example.com", "Visible");
    let session: Value = app.get_auth("/session", &user.bearer).json().unwrap();
    let id = session["userID"].as_str().unwrap();

    let response = app
        .request(reqwest::Method::GET, &format!("/user/id/{id}"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().unwrap(),
        json!({"alias": "Visible"})
    );

    let unknown = uuid::Uuid::new_v4();
    let response = app
        .request(reqwest::Method::GET, &format!("/user/id/{unknown}"))
        .send()
        .unwrap();
    assert_error(response, 404);
    let response = app
        .request(reqwest::Method::GET, "/user/id/not-a-uuid")
        .send()
        .unwrap();
    assert_error(response, 400);
}

crate::on_both_backends!(
    register_verify_check,
    register_rejects_taken_address,
    register_rejects_taken_alias,
    register_rejects_invalid_fields,
    register_rejects_malformed_bodies,
    register_ignores_unknown_fields,
    public_alias_lookup,
);
