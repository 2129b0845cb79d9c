//! Hostile input: wrong JSON types, broken and deeply nested JSON, control
//! characters, over-long values, SQL-like ids, wrong content types, large
//! bodies and headers, and CR/LF aimed at response headers.
//!
//! Every case must end in a 4xx that carries `x-error`, `x-error-id` and the
//! JSON error body, with a message free of CR/LF and of database or driver
//! text, and must leave the stored rows as they were.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::Response;
use serde_json::{Value, json};

use crate::harness::{TestApp, User, assert_error};

/// Tables whose row counts must not move when a request is rejected. The
/// rate counters are left out, because counting rejected attempts is their job.
const TABLES: [&str; 6] = [
    "users",
    "emails",
    "sessions",
    "codes",
    "key_pairs",
    "outbox",
];

/// Text that would show a database, driver or panic message in a response.
const LEAK_MARKERS: [&str; 12] = [
    "diesel",
    "sqlstate",
    "syntax error at",
    "constraint",
    "sqlite",
    "postgres",
    "violates",
    "duplicate key",
    "panicked",
    "r2d2",
    "stack backtrace",
    "select ",
];

/// Default body limit of the server, in bytes (`server.body_limit`).
const BODY_LIMIT: usize = 16_384;

fn row_counts(app: &TestApp) -> Vec<(&'static str, i64)> {
    TABLES
        .iter()
        .map(|table| (*table, app.count_rows(table)))
        .collect()
}

/// Checks that a response is a 4xx that follows the error contract and
/// leaks nothing. Returns the status and the message.
fn assert_rejected(response: Response, case: &str) -> (u16, String) {
    let status = response.status().as_u16();
    assert!(
        (400..500).contains(&status),
        "{case}: status {status} is not a 4xx"
    );
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("{case}: no {name} header on {status}"))
            .as_bytes()
            .to_vec()
    };
    let message = header("x-error");
    let id = header("x-error-id");
    assert!(
        !message.contains(&b'\r') && !message.contains(&b'\n'),
        "{case}: x-error holds CR or LF"
    );
    let message = String::from_utf8(message).expect("x-error is UTF-8");
    let id = String::from_utf8(id).expect("x-error-id is UTF-8");
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "{case}: x-error-id {id:?}"
    );
    let lower = message.to_ascii_lowercase();
    for marker in LEAK_MARKERS {
        assert!(
            !lower.contains(marker),
            "{case}: x-error {message:?} contains {marker:?}"
        );
    }
    let body: Value = response
        .json()
        .unwrap_or_else(|err| panic!("{case}: error body is not JSON: {err}"));
    assert_eq!(body["error"], message.as_str(), "{case}: body error");
    assert_eq!(body["errorID"], id.as_str(), "{case}: body errorID");
    (status, message)
}

fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Response {
    let mut request = app.request(method, path).body(body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.send().expect("send")
}

/// An endpoint that reads a JSON body, with a valid body to mutate.
struct Endpoint {
    method: Method,
    path: &'static str,
    needs_bearer: bool,
    valid: Value,
}

fn endpoints() -> Vec<Endpoint> {
    let code_id = uuid::Uuid::new_v4().to_string();
    let verify = json!({"verificationCodeID": code_id, "code": "123456"});
    let endpoint = |method: Method, path, needs_bearer, valid: &Value| Endpoint {
        method,
        path,
        needs_bearer,
        valid: valid.clone(),
    };
    vec![
        endpoint(
            Method::POST,
            "/user",
            false,
            &json!({"email": "new@example.com", "fullName": "New Person", "alias": "newbie"}),
        ),
        endpoint(
            Method::POST,
            "/session",
            false,
            &json!({"email": "hostile@example.com"}),
        ),
        endpoint(Method::PUT, "/session/verification", false, &verify),
        endpoint(
            Method::POST,
            "/email",
            true,
            &json!({"address": "second@example.com"}),
        ),
        endpoint(Method::PUT, "/email/verification", true, &verify),
        endpoint(
            Method::PUT,
            "/email/preferred",
            true,
            &json!({"emailID": uuid::Uuid::new_v4().to_string()}),
        ),
        endpoint(
            Method::POST,
            "/keypair",
            true,
            &json!({"name": "deploy", "days": 30}),
        ),
        endpoint(Method::PUT, "/keypair/verification", true, &verify),
    ]
}

impl Endpoint {
    fn send(
        &self,
        app: &TestApp,
        user: &User,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Response {
        let bearer = self.needs_bearer.then_some(user.bearer.as_str());
        send(
            app,
            self.method.clone(),
            self.path,
            bearer,
            content_type,
            body,
        )
    }

    fn send_json(&self, app: &TestApp, user: &User, body: &[u8]) -> Response {
        self.send(app, user, Some("application/json"), body.to_vec())
    }

    fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The valid body with one field replaced.
    fn with(&self, field: &str, value: Value) -> Vec<u8> {
        let mut body = self.valid.clone();
        body[field] = value;
        serde_json::to_vec(&body).unwrap()
    }

    fn fields(&self) -> Vec<String> {
        self.valid.as_object().unwrap().keys().cloned().collect()
    }
}

/// Values of the wrong JSON type for a field of the given kind.
fn wrong_values(field: &str) -> Vec<Value> {
    match field {
        "days" => vec![
            json!("30"),
            json!([]),
            json!({}),
            json!(true),
            json!(null),
            json!(1.5),
            json!(1e300),
            json!(u64::MAX),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(0),
            json!(-1),
        ],
        "code" => vec![
            json!([]),
            json!(["123456"]),
            json!({}),
            json!({"$ne": ""}),
            json!(true),
            json!(null),
            json!(-1),
            json!(1.5),
            json!(1e300),
            json!(u64::MAX),
            json!(1_000_000),
            json!(""),
            json!("12345"),
            json!("1234567"),
            json!("12345a"),
            json!(" 123456"),
        ],
        _ => vec![
            json!([]),
            json!(["a@example.com"]),
            json!({}),
            json!({"$ne": ""}),
            json!(5),
            json!(-1.5),
            json!(true),
            json!(false),
            json!(null),
        ],
    }
}

fn signed_in(app: &TestApp) -> (User, Vec<(&'static str, i64)>) {
    let user = app.register_user("target@example.com", "target");
    // The registration's mail is written before the counts are taken.
    std::thread::sleep(Duration::from_millis(200));
    (user, row_counts(app))
}

fn wrong_types_and_nulls_are_rejected(app: &TestApp) {
    let (user, before) = signed_in(app);

    for endpoint in endpoints() {
        for field in endpoint.fields() {
            for value in wrong_values(&field) {
                let case = format!("{} with {field} = {value}", endpoint.label());
                let response = endpoint.send_json(app, &user, &endpoint.with(&field, value));
                let (status, _) = assert_rejected(response, &case);
                assert_eq!(status, 400, "{case}");
            }

            // A missing field.
            let mut body = endpoint.valid.clone();
            body.as_object_mut().unwrap().remove(&field);
            let case = format!("{} without {field}", endpoint.label());
            let response = endpoint.send_json(app, &user, &serde_json::to_vec(&body).unwrap());
            let (status, message) = assert_rejected(response, &case);
            assert_eq!(status, 400, "{case}");
            assert!(
                message.contains(&field),
                "{case}: {message:?} names the field"
            );
        }

        // Bodies that are not a JSON object at all.
        for body in ["[]", "\"text\"", "1", "null", "true", "[{}]"] {
            let case = format!("{} with body {body}", endpoint.label());
            let response = endpoint.send_json(app, &user, body.as_bytes());
            assert_eq!(assert_rejected(response, &case).0, 400, "{case}");
        }
    }

    assert_eq!(row_counts(app), before);
}

fn broken_json_is_rejected(app: &TestApp) {
    let (user, before) = signed_in(app);
    let deep_array = "[".repeat(10_000);
    let deep_object = "{\"a\":".repeat(2_000);
    let deep_field = format!("{{\"email\": {}", "[".repeat(10_000));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("an empty body", Vec::new()),
        ("whitespace", b"   \n ".to_vec()),
        ("truncated JSON", br#"{"email": "a@exa"#.to_vec()),
        (
            "a trailing comma",
            br#"{"email": "a@example.com",}"#.to_vec(),
        ),
        ("single quotes", b"{'email': 'a@example.com'}".to_vec()),
        (
            "a comment",
            br#"{"email": "a@example.com" /* x */}"#.to_vec(),
        ),
        (
            "trailing garbage",
            br#"{"email": "a@example.com"} x"#.to_vec(),
        ),
        (
            "two objects",
            br#"{"email": "a@example.com"}{"email": "b@example.com"}"#.to_vec(),
        ),
        ("NaN", br#"{"days": NaN}"#.to_vec()),
        (
            "invalid UTF-8",
            b"{\"email\": \"\xff\xfe@example.com\"}".to_vec(),
        ),
        (
            "a UTF-8 BOM",
            b"\xef\xbb\xbf{\"email\": \"a@example.com\"}".to_vec(),
        ),
        ("a NUL byte", b"{\"email\":\0 \"a@example.com\"}".to_vec()),
        ("10 000 open brackets", deep_array.into_bytes()),
        ("2 000 nested objects", deep_object.into_bytes()),
        ("a deeply nested field", deep_field.into_bytes()),
    ];

    for endpoint in endpoints() {
        for (what, body) in &bodies {
            let case = format!("{} with {what}", endpoint.label());
            let response = endpoint.send_json(app, &user, body);
            assert_eq!(assert_rejected(response, &case).0, 400, "{case}");
        }
    }

    assert_eq!(row_counts(app), before);
}

fn control_characters_are_rejected(app: &TestApp) {
    let (user, before) = signed_in(app);
    // Raw JSON text, so that the escapes reach the server exactly as written.
    let escapes = [
        r"\u0000",
        r"\u0007",
        r"\u001b[31m",
        r"\r\nX-Injected: 1",
        r"\n",
        r"\u0085",
        r"\ud800",
        r"\udfff",
        r"\ud800\u0041",
    ];

    for endpoint in endpoints() {
        for field in endpoint.fields() {
            if field == "days" || field == "code" && endpoint.valid[&field].is_number() {
                continue;
            }
            let valid = endpoint.valid[&field].as_str().unwrap().to_owned();
            for escape in escapes {
                // The character in the middle of a valid value, where the
                // parsers would miss it if they checked only the ends.
                let (head, tail) = valid.split_at(valid.len() / 2);
                let mut body = endpoint.valid.clone();
                body[&field] = json!("@@HOLE@@");
                let text = serde_json::to_string(&body)
                    .unwrap()
                    .replace("@@HOLE@@", &format!("{head}{escape}{tail}"));
                let case = format!("{} with {field} holding {escape}", endpoint.label());
                let response = endpoint.send_json(app, &user, text.as_bytes());
                assert_eq!(assert_rejected(response, &case).0, 400, "{case}");
            }
        }
    }

    assert_eq!(row_counts(app), before);
}

fn over_long_values_are_rejected(app: &TestApp) {
    let (user, before) = signed_in(app);

    for endpoint in endpoints() {
        for field in endpoint.fields() {
            if field == "days" {
                continue;
            }
            for long in ["x".repeat(5_000), "9".repeat(5_000), "é".repeat(2_000)] {
                let case = format!("{} with a {}-byte {field}", endpoint.label(), long.len());
                let response = endpoint.send_json(app, &user, &endpoint.with(&field, json!(long)));
                let (status, message) = assert_rejected(response, &case);
                assert_eq!(status, 400, "{case}");
                assert!(message.len() < 400, "{case}: the message is bounded");
                assert!(
                    !message.contains("xxxxxxxxxx"),
                    "{case}: the value is echoed"
                );
            }
        }

        // Above the body limit: 413, whether or not the length is declared.
        let filler = "x".repeat(BODY_LIMIT + 1);
        let field = endpoint.fields()[0].clone();
        let body = endpoint.with(&field, json!(filler));
        let case = format!("{} over the body limit", endpoint.label());
        let response = endpoint.send_json(app, &user, &body);
        assert_eq!(assert_rejected(response, &case).0, 413, "{case}");

        let case = format!("{} over the body limit, chunked", endpoint.label());
        let bearer = endpoint.needs_bearer.then_some(user.bearer.as_str());
        let mut request = app
            .request(endpoint.method.clone(), endpoint.path)
            .header("content-type", "application/json")
            .body(reqwest::blocking::Body::new(std::io::Cursor::new(body)));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().unwrap();
        assert_eq!(assert_rejected(response, &case).0, 413, "{case}");
    }

    assert_eq!(row_counts(app), before);
}

fn wrong_content_types_are_rejected(app: &TestApp) {
    let (user, before) = signed_in(app);
    let content_types = [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/xml"),
        Some("application/jsonx"),
        Some("not a media type"),
    ];

    for endpoint in endpoints() {
        let body = serde_json::to_vec(&endpoint.valid).unwrap();
        for content_type in content_types {
            let case = format!("{} as {content_type:?}", endpoint.label());
            let response = endpoint.send(app, &user, content_type, body.clone());
            assert_eq!(assert_rejected(response, &case).0, 415, "{case}");
        }
    }

    assert_eq!(row_counts(app), before);
}

fn hostile_path_ids_are_rejected(app: &TestApp) {
    let (user, before) = signed_in(app);
    let long = "a".repeat(4_000);
    let ids = [
        "' OR 1=1 --",
        "1 OR 1=1",
        "1; DROP TABLE users; --",
        "%27%20OR%20%271%27%3D%271",
        "%00",
        "..%2f..%2fetc%2fpasswd",
        "..%2F",
        "%2e%2e",
        "%0d%0aX-Injected:%201",
        "%ZZ",
        "00000000-0000-0000-0000-00000000000G",
        "{00000000-0000-0000-0000-000000000000}x",
        "-1",
        "9223372036854775808",
        long.as_str(),
    ];
    let paths = [
        (Method::GET, "/user/id/"),
        (Method::DELETE, "/session/"),
        (Method::DELETE, "/email/"),
        (Method::DELETE, "/keypair/"),
    ];

    for (method, prefix) in paths {
        for id in ids {
            let case = format!("{method} {prefix}{id}");
            let response = app
                .request(method.clone(), &format!("{prefix}{id}"))
                .bearer_auth(&user.bearer)
                .send()
                .unwrap();
            assert!(
                response.headers().get("x-injected").is_none(),
                "{case}: a header was injected"
            );
            let (status, _) = assert_rejected(response, &case);
            assert!(
                status == 400 || status == 404,
                "{case}: status {status} is neither 400 nor 404"
            );
        }
    }

    // The caller's own data is still there.
    let response = app.get_auth("/session", &user.bearer);
    assert_eq!(response.status(), 200);
    assert_eq!(row_counts(app), before);
}

/// Sends raw bytes over one connection and returns the response head,
/// lower-cased, or an empty string when the server closed the connection
/// without answering.
fn raw_exchange(app: &TestApp, request: &[u8]) -> String {
    let address = app.base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may answer and close before the whole request is written.
    let _ = stream.write_all(request);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_ascii_lowercase();
    text.split("\r\n\r\n").next().unwrap_or("").to_owned()
}

fn status_of(head: &str) -> Option<u16> {
    head.split_whitespace().nth(1)?.parse().ok()
}

fn large_headers_are_rejected(app: &TestApp) {
    let (user, before) = signed_in(app);

    // Huge header values that still fit the server's request head buffer
    // reach the API and are rejected like any other bad credential.
    for size in [4_096, 65_536] {
        let big = "a".repeat(size);
        let case = format!("a {size}-byte bearer token");
        let response = app
            .request(Method::GET, "/session")
            .bearer_auth(&big)
            .send()
            .unwrap();
        let (status, message) = assert_rejected(response, &case);
        assert_eq!(status, 401, "{case}");
        assert!(!message.contains("aaaa"), "{case}: the value is echoed");

        let case = format!("a {size}-byte api-secret");
        let response = app
            .request(Method::GET, "/keypair")
            .header("api-key", &big)
            .header("api-secret", &big)
            .send()
            .unwrap();
        assert_eq!(assert_rejected(response, &case).0, 401, "{case}");

        let case = format!("a {size}-byte user agent");
        let response = app
            .request(Method::POST, "/session")
            .header("user-agent", &big)
            .header("content-type", "text/plain")
            .body("x")
            .send()
            .unwrap();
        assert_eq!(assert_rejected(response, &case).0, 415, "{case}");
    }

    // Heads that actix-http itself refuses before any route runs: more than
    // 96 header lines, or a head over 128 KiB. The server must answer with a
    // 4xx and close, never crash or hang.
    // NOTE: actix-http 3 writes these answers (431, or 400 for a malformed
    // head) itself, before any service or middleware runs, so they carry no
    // x-error or x-error-id and the contract cannot hold for them.
    let many: String = (0..200).map(|i| format!("x-filler-{i}: {i}\r\n")).collect();
    let huge = format!("x-filler: {}\r\n", "a".repeat(200_000));
    for (what, extra) in [("200 header lines", many), ("a 200 KB header", huge)] {
        let request = format!(
            "GET /api/auth/v2/session HTTP/1.1\r\nhost: 127.0.0.1\r\n{extra}connection: close\r\n\r\n"
        );
        let head = raw_exchange(app, request.as_bytes());
        let status = status_of(&head);
        assert!(
            matches!(status, Some(400..=499) | None),
            "{what}: answered {head:?}"
        );
    }

    // The server still serves after them.
    let response = app.get_auth("/session", &user.bearer);
    assert_eq!(response.status(), 200);
    assert_eq!(row_counts(app), before);
}

fn line_breaks_never_reach_headers(app: &TestApp) {
    let (user, before) = signed_in(app);

    // Line breaks inside header values cannot be sent: a raw CR LF ends the
    // header line, and the rest becomes a header of its own that the server
    // must treat as just another header.
    let request = format!(
        "GET /api/auth/v2/session HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {}\r\nx-injected: 1\r\nconnection: close\r\n\r\n",
        "0".repeat(64)
    );
    let head = raw_exchange(app, request.as_bytes());
    assert_eq!(status_of(&head), Some(401), "{head}");
    assert!(head.contains("x-error:"), "{head}");
    assert!(!head.contains("x-injected"), "{head}");

    // A bare CR or LF inside a header value is malformed HTTP.
    for value in ["a\rb", "a\nx-injected: 1"] {
        let request = format!(
            "GET /api/auth/v2/session HTTP/1.1\r\nhost: 127.0.0.1\r\nuser-agent: {value}\r\nconnection: close\r\n\r\n"
        );
        let head = raw_exchange(app, request.as_bytes());
        assert!(!head.contains("x-injected"), "{value:?}: {head}");
        assert!(
            matches!(status_of(&head), Some(400..=499) | None),
            "{value:?}: {head}"
        );
    }

    // Encoded line breaks in the path and in gateway headers reach the
    // server and must not come back as header lines.
    let attempts = [
        "/user/id/%0d%0ax-injected:%201",
        "/nope%0d%0ax-injected:%201",
        "/session/%0d%0ax-injected:%201",
    ];
    for path in attempts {
        let request = format!(
            "DELETE /api/auth/v2{path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {}\r\nconnection: close\r\n\r\n",
            user.bearer
        );
        let head = raw_exchange(app, request.as_bytes());
        assert!(head.contains("x-error:"), "{path}: {head}");
        assert!(!head.contains("\r\nx-injected"), "{path}: {head}");
    }
    let response = app
        .request(Method::GET, "/authorize")
        .bearer_auth(&user.bearer)
        .header("x-original-method", "GET")
        .header("x-original-uri", "/a%0d%0ax-injected:%201")
        .send()
        .unwrap();
    assert!(response.headers().get("x-injected").is_none());
    if response.status().as_u16() >= 300 {
        assert_rejected(response, "gateway check with an encoded line break");
    }

    // A user agent with obs-text bytes is stored without them or not at all,
    // and a CR/LF smuggled in JSON never turns up in a header.
    let request = b"POST /api/auth/v2/session HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nuser-agent: ua\xff\xfe\r\ncontent-length: 40\r\nconnection: close\r\n\r\n{\"email\": \"a\\r\\nx-injected@example.com\"}";
    let head = raw_exchange(app, request);
    assert_eq!(status_of(&head), Some(400), "{head}");
    assert!(!head.contains("\r\nx-injected"), "{head}");

    assert_eq!(row_counts(app), before);
}

fn session_check(app: &TestApp, bearer: &str) -> Value {
    let response = app.get_auth("/session", bearer);
    assert_eq!(response.status(), 200);
    response.json().unwrap()
}

fn unknown_fields_set_nothing(app: &TestApp) {
    let victim = app.register_user("victim@example.com", "victim");
    let victim_id = session_check(app, &victim.bearer)["userID"].clone();
    let escalation = json!({
        "roles": ["users_admin"],
        "role": "users_admin",
        "groups": ["admins"],
        "verified": true,
        "emailVerified": true,
        "preferred": true,
        "userID": victim_id,
        "user_id": victim_id,
        "ownerID": victim_id,
        "isAdmin": true,
        "admin": true,
        "__proto__": {"admin": true},
    });
    let merge = |base: Value| {
        let mut body = escalation.clone();
        for (key, value) in base.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };

    // Registration: default roles and groups, an unverified session.
    let response = app.post(
        "/user",
        &merge(json!({"email": "climber@example.com", "fullName": "Climber", "alias": "climber"})),
    );
    assert_eq!(response.status(), 202);
    let started: Value = response.json().unwrap();
    let bearer = started["bearer"].as_str().unwrap().to_owned();
    assert_error(app.get_auth("/session", &bearer), 401);
    let code = app.next_code("climber@example.com");
    let response = app.put(
        "/session/verification",
        &merge(json!({"verificationCodeID": started["verificationCodeID"], "code": code})),
    );
    assert_eq!(response.status(), 202);
    let me = session_check(app, &bearer);
    assert_eq!(me["roles"], json!(["user"]));
    assert_eq!(me["groups"], json!(["public"]));
    assert_ne!(me["userID"], victim_id);

    // An added email stays unverified, not preferred, and the caller's own.
    let response = app.post_auth(
        "/email",
        &bearer,
        &merge(json!({"address": "climber2@example.com"})),
    );
    assert_eq!(response.status(), 202);
    let emails: Value = app.get_auth("/emails", &bearer).json().unwrap();
    let added = emails["emails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["address"] == "climber2@example.com")
        .expect("the added email is the caller's")
        .clone();
    assert_eq!(added["verified"], false);
    assert_eq!(added["preferred"], false);
    let victim_emails: Value = app.get_auth("/emails", &victim.bearer).json().unwrap();
    assert_eq!(victim_emails["emails"].as_array().unwrap().len(), 1);

    // A key pair stays unverified and the caller's own.
    let response = app.post_auth(
        "/keypair",
        &bearer,
        &merge(json!({"name": "climb", "days": 1})),
    );
    assert_eq!(response.status(), 202);
    let key: Value = response.json().unwrap();
    assert_eq!(key["verified"], false);
    let check = app
        .request(Method::GET, "/keypair")
        .header("api-key", key["apiKey"].as_str().unwrap())
        .header("api-secret", key["apiSecret"].as_str().unwrap())
        .send()
        .unwrap();
    assert_error(check, 401);
    let victim_keys: Value = app.get_auth("/keypairs", &victim.bearer).json().unwrap();
    assert_eq!(victim_keys["keys"], json!([]));
}

crate::on_both_backends!(
    wrong_types_and_nulls_are_rejected,
    broken_json_is_rejected,
    control_characters_are_rejected,
    over_long_values_are_rejected,
    wrong_content_types_are_rejected,
    hostile_path_ids_are_rejected,
    large_headers_are_rejected,
    line_breaks_never_reach_headers,
    unknown_fields_set_nothing,
);
