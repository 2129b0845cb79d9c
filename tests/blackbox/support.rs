//! Request helpers shared by the session, email and key pair tests.

use reqwest::Method;
use reqwest::blocking::Response;
use serde_json::{Value, json};

use crate::harness::{TestApp, extract_code};

/// Returns the field names of a JSON object, sorted.
pub fn field_names(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = body
        .as_object()
        .expect("a JSON object")
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

/// Returns a well-formed code that differs from `code`.
pub fn wrong_code(code: &str) -> &'static str {
    if code == "000000" { "000001" } else { "000000" }
}

/// Reads the next `count` messages to `to` and splits them into the codes
/// they carry and the texts of those that carry none (the notices).
pub fn read_mail(app: &TestApp, to: &str, count: usize) -> (Vec<String>, Vec<String>) {
    let mut codes = Vec::new();
    let mut notices = Vec::new();
    for _ in 0..count {
        let text = app.next_mail(to);
        match extract_code(&text) {
            Some(code) => codes.push(code),
            None => notices.push(text),
        }
    }
    (codes, notices)
}

/// Reads one code mail and one notice to `to`, in either order, and returns
/// the code and the notice's text.
pub fn code_and_notice(app: &TestApp, to: &str) -> (String, String) {
    let (mut codes, mut notices) = read_mail(app, to, 2);
    assert_eq!(codes.len(), 1, "one code mail to {to}");
    assert_eq!(notices.len(), 1, "one notice to {to}");
    (codes.remove(0), notices.remove(0))
}

/// Reads one notice to `to` and checks that it carries no code.
pub fn notice(app: &TestApp, to: &str) -> String {
    let text = app.next_mail(to);
    assert_eq!(extract_code(&text), None, "a notice holds no code:\n{text}");
    text
}

/// Waits long enough for the delivery worker to write any queued mail, then
/// returns how many messages the outbox contains.
pub fn settled_mail_count(app: &TestApp) -> usize {
    std::thread::sleep(std::time::Duration::from_millis(300));
    app.mail_files().len()
}

/// Starts a login for `email` without verifying it. Returns the 202 body.
pub fn start_login(app: &TestApp, email: &str) -> Value {
    let response = app.post("/session", &json!({"email": email}));
    assert_eq!(response.status(), 202, "login {email}");
    response.json().unwrap()
}

/// Builds a request that carries `api-key` and `api-secret` headers.
pub fn with_key_pair(
    app: &TestApp,
    method: Method,
    path: &str,
    api_key: &str,
    api_secret: &str,
) -> reqwest::blocking::RequestBuilder {
    app.request(method, path)
        .header("api-key", api_key)
        .header("api-secret", api_secret)
}

/// Sends GET /keypair with the given key pair headers.
pub fn check_key_pair(app: &TestApp, api_key: &str, api_secret: &str) -> Response {
    with_key_pair(app, Method::GET, "/keypair", api_key, api_secret)
        .send()
        .unwrap()
}

/// Creates a key pair for `bearer` and returns the 202 body, without
/// verifying it.
pub fn create_key_pair(app: &TestApp, bearer: &str, name: &str, days: i64) -> Value {
    let response = app.post_auth("/keypair", bearer, &json!({"name": name, "days": days}));
    assert_eq!(response.status(), 202, "create key pair {name}");
    response.json().unwrap()
}

/// Sends GET /session for `bearer`, expects 200 and returns the body.
pub fn session_check(app: &TestApp, bearer: &str) -> Value {
    let response = app.get_auth("/session", bearer);
    assert_eq!(response.status(), 200, "GET /session");
    response.json().unwrap()
}

/// Sends GET /emails for `bearer`, expects 200 and returns the list.
pub fn emails(app: &TestApp, bearer: &str) -> Vec<Value> {
    let response = app.get_auth("/emails", bearer);
    assert_eq!(response.status(), 200, "GET /emails");
    let body: Value = response.json().unwrap();
    assert_eq!(field_names(&body), ["emails"]);
    body["emails"].as_array().unwrap().clone()
}

/// Finds the id of the email with `address` in a GET /emails list.
pub fn email_id(list: &[Value], address: &str) -> String {
    list.iter()
        .find(|e| e["address"] == address)
        .unwrap_or_else(|| panic!("{address} is not listed"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Adds `address` to the account of `bearer`, verifies it with the code
/// mailed to it, and reads the two notices sent to `preferred`. Returns the
/// new email's id.
pub fn add_verified_email(app: &TestApp, bearer: &str, preferred: &str, address: &str) -> String {
    let response = app.post_auth("/email", bearer, &json!({"address": address}));
    assert_eq!(response.status(), 202, "add {address}");
    let body: Value = response.json().unwrap();
    let code = app.next_code(address);
    notice(app, preferred);

    let verified = app.put_auth(
        "/email/verification",
        bearer,
        &json!({"verificationCodeID": body["verificationCodeID"], "code": code}),
    );
    assert_eq!(verified.status(), 202, "verify {address}");
    notice(app, preferred);
    body["emailID"].as_str().unwrap().to_owned()
}
