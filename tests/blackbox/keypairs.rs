//! POST /keypair, PUT /keypair/verification, GET /keypair, GET /keypairs
//! and DELETE /keypair/{id}.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, User, assert_error};
use crate::support::{
    check_key_pair, code_and_notice, create_key_pair, field_names, notice, session_check,
    settled_mail_count, with_key_pair, wrong_code,
};

fn verify_key_pair(
    app: &TestApp,
    bearer: &str,
    key: &Value,
    code: &str,
) -> reqwest::blocking::Response {
    app.put_auth(
        "/keypair/verification",
        bearer,
        &json!({"verificationCodeID": key["verificationCodeID"], "code": code}),
    )
}

/// Creates and verifies a key pair for `user`, whose preferred address is
/// `user.email`. Returns the 202 body of the creation.
fn verified_key_pair(app: &TestApp, user: &User, name: &str) -> Value {
    let key = create_key_pair(app, &user.bearer, name, 30);
    let (code, _) = code_and_notice(app, &user.email);
    assert_eq!(
        verify_key_pair(app, &user.bearer, &key, &code).status(),
        202
    );
    key
}

fn key_headers(key: &Value) -> (&str, &str) {
    (
        key["apiKey"].as_str().unwrap(),
        key["apiSecret"].as_str().unwrap(),
    )
}

fn key_pairs(app: &TestApp, bearer: &str) -> Vec<Value> {
    let response = app.get_auth("/keypairs", bearer);
    assert_eq!(response.status(), 200, "GET /keypairs");
    let body: Value = response.json().unwrap();
    assert_eq!(field_names(&body), ["keys"]);
    body["keys"].as_array().unwrap().clone()
}

fn create_verify_check(app: &TestApp) {
    let user = app.register_user("keys@example.com", "keyholder");

    let response = app.post_auth(
        "/keypair",
        &user.bearer,
        &json!({"name": " ci deploy ", "days": 30}),
    );
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let key: Value = response.json().unwrap();
    assert_eq!(
        field_names(&key),
        [
            "apiKey",
            "apiSecret",
            "expireAt",
            "keyID",
            "keyName",
            "verificationCodeID",
            "verified"
        ]
    );
    assert_eq!(key["verified"], false);
    assert_eq!(key["keyName"], "ci deploy");
    assert!(uuid::Uuid::parse_str(key["keyID"].as_str().unwrap()).is_ok());
    assert!(uuid::Uuid::parse_str(key["verificationCodeID"].as_str().unwrap()).is_ok());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expire_at = key["expireAt"].as_i64().unwrap();
    let thirty_days = 30 * 24 * 60 * 60;
    assert!(
        (now + thirty_days - 60..=now + thirty_days + 60).contains(&expire_at),
        "expireAt {expire_at} is not 30 days after {now}"
    );
    let (api_key, api_secret) = key_headers(&key);
    assert!(api_secret.len() >= 43, "the secret carries 256 bits");

    // The code and a notice go to the preferred address.
    let (code, created) = code_and_notice(app, "keys@example.com");
    assert!(created.contains("ci deploy"), "{created}");

    // Unverified, the key pair authenticates nothing.
    assert_error(check_key_pair(app, api_key, api_secret), 401);

    let verified = verify_key_pair(app, &user.bearer, &key, &code);
    assert_eq!(verified.status(), 202);
    assert_eq!(
        verified.json::<Value>().unwrap(),
        json!({"message": "acknowledged"})
    );

    let response = check_key_pair(app, api_key, api_secret);
    assert_eq!(response.status(), 200);
    let check: Value = response.json().unwrap();
    let session = session_check(app, &user.bearer);
    assert_eq!(
        field_names(&check),
        [
            "apiKey",
            "expireAt",
            "groups",
            "keyID",
            "keyName",
            "roles",
            "userAlias",
            "userID",
            "userName",
            "verified"
        ]
    );
    assert_eq!(check["apiKey"], api_key);
    assert_eq!(check["keyID"], key["keyID"]);
    assert_eq!(check["keyName"], "ci deploy");
    assert_eq!(check["expireAt"], key["expireAt"]);
    assert_eq!(check["verified"], true);
    assert_eq!(check["userID"], session["userID"]);
    assert_eq!(check["userName"], "keyholder Tester");
    assert_eq!(check["userAlias"], "keyholder");
    assert_eq!(check["roles"], json!(["user"]));
    assert_eq!(check["groups"], json!(["public"]));

    let listed = key_pairs(app, &user.bearer);
    assert_eq!(listed.len(), 1);
    assert_eq!(
        field_names(&listed[0]),
        ["apiKey", "expireAt", "keyID", "keyName", "verified"]
    );
    assert_eq!(listed[0]["apiKey"], api_key);
    assert_eq!(listed[0]["keyID"], key["keyID"]);
    assert_eq!(listed[0]["verified"], true);
    let text = app.get_auth("/keypairs", &user.bearer).text().unwrap();
    assert!(!text.contains(api_secret), "the secret is shown only once");
    assert!(
        !app.dump_database().contains(api_secret),
        "the secret is not stored"
    );
}

fn create_rejects_invalid_fields(app: &TestApp) {
    let user = app.register_user("strict@example.com", "strict");
    let mail_before = settled_mail_count(app);
    let codes_before = app.count_rows("codes");

    let cases = [
        ("days", json!(0)),
        ("days", json!(-1)),
        ("days", json!(366)),
        ("days", json!(1.5)),
        ("days", json!("10")),
        ("days", json!(null)),
        ("days", json!(i64::MAX)),
        ("name", json!("")),
        ("name", json!("   ")),
        ("name", json!("x".repeat(101))),
        ("name", json!("bad\u{7}name")),
        ("name", json!(5)),
    ];
    for (field, value) in cases {
        let mut body = json!({"name": "ok", "days": 30});
        body[field] = value.clone();
        let response = app.post_auth("/keypair", &user.bearer, &body);
        assert_eq!(response.status(), 400, "{field} = {value}");
        assert_error(response, 400);
    }
    for field in ["name", "days"] {
        let mut body = json!({"name": "ok", "days": 30});
        body.as_object_mut().unwrap().remove(field);
        let message = assert_error(app.post_auth("/keypair", &user.bearer, &body), 400);
        assert!(message.contains(field), "{message}");
    }
    assert_eq!(app.count_rows("key_pairs"), 0);
    assert_eq!(app.count_rows("codes"), codes_before);
    assert_eq!(settled_mail_count(app), mail_before);
    assert!(key_pairs(app, &user.bearer).is_empty());

    // The bounds themselves are accepted.
    create_key_pair(app, &user.bearer, "one day", 1);
    create_key_pair(app, &user.bearer, &"y".repeat(100), 365);
    assert_eq!(app.count_rows("key_pairs"), 2);
}

fn check_rejects_bad_credentials(app: &TestApp) {
    let user = app.register_user("checked@example.com", "checked");
    let key = verified_key_pair(app, &user, "gateway");
    let (api_key, api_secret) = key_headers(&key);
    assert_eq!(check_key_pair(app, api_key, api_secret).status(), 200);

    let mut wrong_secret = api_secret.to_owned();
    let last = wrong_secret.pop().unwrap();
    wrong_secret.push(if last == 'A' { 'B' } else { 'A' });
    assert_error(check_key_pair(app, api_key, &wrong_secret), 401);
    assert_error(check_key_pair(app, "unknown-key", api_secret), 401);
    assert_error(check_key_pair(app, api_key, ""), 401);
    assert_error(check_key_pair(app, api_key, &user.bearer), 401);

    let only_key = app
        .request(Method::GET, "/keypair")
        .header("api-key", api_key)
        .send()
        .unwrap();
    assert_error(only_key, 401);
    let only_secret = app
        .request(Method::GET, "/keypair")
        .header("api-secret", api_secret)
        .send()
        .unwrap();
    assert_error(only_secret, 401);
    assert_error(app.request(Method::GET, "/keypair").send().unwrap(), 401);
    // A bearer token is not a key pair credential.
    assert_error(app.get_auth("/keypair", &user.bearer), 401);

    assert_eq!(check_key_pair(app, api_key, api_secret).status(), 200);
}

fn verify_rejects_foreign_codes(app: &TestApp) {
    let owner = app.register_user("maker@example.com", "maker");
    let other = app.register_user("taker@example.com", "taker");
    let key = create_key_pair(app, &owner.bearer, "owned", 30);
    let (code, _) = code_and_notice(app, "maker@example.com");

    let wrong = assert_error(
        verify_key_pair(app, &owner.bearer, &key, wrong_code(&code)),
        401,
    );
    let foreign = assert_error(verify_key_pair(app, &other.bearer, &key, &code), 401);
    assert_eq!(foreign, wrong, "another user's code reads as a wrong code");

    // A login code of the owner, with its right code.
    let login = crate::support::start_login(app, "maker@example.com");
    let login_code = app.next_code("maker@example.com");
    let response = app.put_auth(
        "/keypair/verification",
        &owner.bearer,
        &json!({"verificationCodeID": login["verificationCodeID"], "code": login_code}),
    );
    assert_eq!(
        assert_error(response, 401),
        wrong,
        "a login code reads as a wrong code"
    );
    let response = app.put_auth(
        "/keypair/verification",
        &owner.bearer,
        &json!({"verificationCodeID": "nope", "code": code}),
    );
    assert_error(response, 400);

    let (api_key, api_secret) = key_headers(&key);
    assert_error(check_key_pair(app, api_key, api_secret), 401);
    assert_eq!(key_pairs(app, &owner.bearer)[0]["verified"], false);
    assert!(key_pairs(app, &other.bearer).is_empty());

    assert_eq!(
        verify_key_pair(app, &owner.bearer, &key, &code).status(),
        202
    );
    assert_eq!(check_key_pair(app, api_key, api_secret).status(), 200);
}

fn delete_key_pair(app: &TestApp) {
    let owner = app.register_user("deleter@example.com", "deleter");
    let other = app.register_user("bystander@example.com", "bystander");
    let key = verified_key_pair(app, &owner, "temporary");
    let (api_key, api_secret) = key_headers(&key);
    let key_id = key["keyID"].as_str().unwrap();

    let mail_before = settled_mail_count(app);
    let foreign = assert_error(
        app.delete_auth(&format!("/keypair/{key_id}"), &other.bearer),
        404,
    );
    let unknown = assert_error(
        app.delete_auth(&format!("/keypair/{}", uuid::Uuid::new_v4()), &owner.bearer),
        404,
    );
    assert_eq!(foreign, unknown, "another user's key pair reads as unknown");
    assert_error(app.delete_auth("/keypair/not-a-uuid", &owner.bearer), 400);
    assert_eq!(check_key_pair(app, api_key, api_secret).status(), 200);
    assert_eq!(app.count_rows("key_pairs WHERE deleted_at IS NOT NULL"), 0);
    assert_eq!(settled_mail_count(app), mail_before);

    let response = app.delete_auth(&format!("/keypair/{key_id}"), &owner.bearer);
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().unwrap(),
        json!({"message": "acknowledged"})
    );
    let text = notice(app, "deleter@example.com");
    assert!(text.contains("temporary"), "{text}");

    assert_error(check_key_pair(app, api_key, api_secret), 401);
    assert!(key_pairs(app, &owner.bearer).is_empty());
    assert_error(
        app.delete_auth(&format!("/keypair/{key_id}"), &owner.bearer),
        404,
    );
}

fn key_pair_manages_nothing(app: &TestApp) {
    let user = app.register_user("limited@example.com", "limited");
    let key = verified_key_pair(app, &user, "limited");
    let (api_key, api_secret) = key_headers(&key);

    // Neither half of a key pair is a bearer token.
    assert_error(app.get_auth("/session", api_secret), 401);
    assert_error(app.get_auth("/session", api_key), 401);

    let before = ["key_pairs", "emails", "codes"].map(|table| app.count_rows(table));
    let requests: [(Method, String, Option<Value>); 7] = [
        (
            Method::POST,
            "/keypair".into(),
            Some(json!({"name": "minted", "days": 365})),
        ),
        (
            Method::POST,
            "/email".into(),
            Some(json!({"address": "attacker@example.org"})),
        ),
        (Method::GET, "/keypairs".into(), None),
        (Method::GET, "/emails".into(), None),
        (Method::GET, "/sessions".into(), None),
        (Method::PUT, "/session/extend".into(), Some(json!({}))),
        (
            Method::DELETE,
            format!("/keypair/{}", key["keyID"].as_str().unwrap()),
            None,
        ),
    ];
    for (method, path, body) in &requests {
        let mut request = with_key_pair(app, method.clone(), path, api_key, api_secret);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
        assert_error(response, 401);
    }
    assert_eq!(
        ["key_pairs", "emails", "codes"].map(|table| app.count_rows(table)),
        before
    );
    assert_eq!(check_key_pair(app, api_key, api_secret).status(), 200);
}

fn code_of_deleted_key_pair_is_dead(app: &TestApp) {
    let user = app.register_user("undo@example.com", "undo");
    let key = create_key_pair(app, &user.bearer, "mistake", 30);
    let (code, _) = code_and_notice(app, "undo@example.com");
    let key_id = key["keyID"].as_str().unwrap();
    let deleted = app.delete_auth(&format!("/keypair/{key_id}"), &user.bearer);
    assert_eq!(deleted.status(), 200);
    notice(app, "undo@example.com");

    // The key pair is gone, so its code verifies nothing.
    assert_error(verify_key_pair(app, &user.bearer, &key, &code), 401);
    let (api_key, api_secret) = key_headers(&key);
    assert_error(check_key_pair(app, api_key, api_secret), 401);
    assert_eq!(app.count_rows("key_pairs WHERE verified_at IS NOT NULL"), 0);
}

crate::on_both_backends!(
    create_verify_check,
    create_rejects_invalid_fields,
    check_rejects_bad_credentials,
    verify_rejects_foreign_codes,
    delete_key_pair,
    key_pair_manages_nothing,
    code_of_deleted_key_pair_is_dead,
);
