//! GET /sessions, DELETE /session/{id} and PUT /session/extend, and the
//! rule that an unverified bearer manages nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, assert_error};
use crate::support::{field_names, session_check, start_login};

/// Sends GET /sessions for `bearer`, expects 200 and returns the list.
fn sessions(app: &TestApp, bearer: &str) -> Vec<Value> {
    let response = app.get_auth("/sessions", bearer);
    assert_eq!(response.status(), 200, "GET /sessions");
    let body: Value = response.json().unwrap();
    assert_eq!(field_names(&body), ["sessions"]);
    body["sessions"].as_array().unwrap().clone()
}

fn closed_sessions(app: &TestApp) -> i64 {
    app.count_rows("sessions WHERE closed_at IS NOT NULL")
}

fn list_marks_current_session(app: &TestApp) {
    let first = app.register_user("list@example.com", "lister");
    let second = app.login("list@example.com");
    let other = app.register_user("other@example.com", "other");
    // A pending login is not listed.
    let pending = start_login(app, "list@example.com");
    app.next_code("list@example.com");

    let listed = sessions(app, &second.bearer);
    assert_eq!(listed.len(), 2, "{listed:?}");
    for item in &listed {
        assert_eq!(
            field_names(item),
            ["current", "expireAt", "ip", "sessionID", "userAgent"]
        );
        assert_eq!(item["ip"], "127.0.0.1");
        assert!(item["expireAt"].is_i64());
        assert_ne!(item["sessionID"], pending["sessionID"]);
        assert_ne!(item["sessionID"], other.session_id.as_str());
    }
    let current: Vec<&Value> = listed.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["sessionID"], second.session_id.as_str());
    let ids: Vec<&str> = listed
        .iter()
        .map(|s| s["sessionID"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&first.session_id.as_str()));

    // The same list, seen from the first session, marks that one instead.
    let listed = sessions(app, &first.bearer);
    let current: Vec<&Value> = listed.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["sessionID"], first.session_id.as_str());

    let others = sessions(app, &other.bearer);
    assert_eq!(others.len(), 1);
    assert_eq!(others[0]["sessionID"], other.session_id.as_str());
}

fn close_other_own_session(app: &TestApp) {
    let first = app.register_user("close@example.com", "closer");
    let second = app.login("close@example.com");

    let response = app.delete_auth(&format!("/session/{}", first.session_id), &second.bearer);
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().unwrap(),
        json!({"message": "acknowledged"})
    );

    // The closed bearer authenticates nothing any more.
    assert_error(app.get_auth("/session", &first.bearer), 401);
    assert_error(app.get_auth("/sessions", &first.bearer), 401);
    assert_error(app.get_auth("/emails", &first.bearer), 401);
    assert_error(
        app.put_auth("/session/extend", &first.bearer, &json!({})),
        401,
    );
    assert_error(
        app.post_auth(
            "/email",
            &first.bearer,
            &json!({"address": "more@example.com"}),
        ),
        401,
    );
    assert_error(
        app.delete_auth(&format!("/session/{}", second.session_id), &first.bearer),
        401,
    );

    // The other session lives on and no longer lists the closed one.
    session_check(app, &second.bearer);
    let listed = sessions(app, &second.bearer);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["sessionID"], second.session_id.as_str());

    // Closing it again finds nothing.
    assert_error(
        app.delete_auth(&format!("/session/{}", first.session_id), &second.bearer),
        404,
    );
    assert_eq!(closed_sessions(app), 1);
}

fn close_current_session(app: &TestApp) {
    let user = app.register_user("self@example.com", "selfish");

    let response = app.delete_auth(&format!("/session/{}", user.session_id), &user.bearer);
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().unwrap(),
        json!({"message": "acknowledged"})
    );

    assert_error(app.get_auth("/session", &user.bearer), 401);
    assert_error(app.get_auth("/sessions", &user.bearer), 401);
    assert_error(app.get_auth("/keypairs", &user.bearer), 401);
    assert_error(
        app.put_auth("/session/extend", &user.bearer, &json!({})),
        401,
    );
    assert_error(
        app.delete_auth(&format!("/session/{}", user.session_id), &user.bearer),
        401,
    );
}

fn close_rejects_malformed_id(app: &TestApp) {
    let user = app.register_user("malformed@example.com", "malformed");
    for bad in ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"] {
        assert_error(
            app.delete_auth(&format!("/session/{bad}"), &user.bearer),
            400,
        );
    }
    assert_eq!(closed_sessions(app), 0);
    session_check(app, &user.bearer);
}

fn close_foreign_session_is_not_found(app: &TestApp) {
    let owner = app.register_user("owner@example.com", "owner");
    let intruder = app.register_user("intruder@example.com", "intruder");

    let foreign = assert_error(
        app.delete_auth(&format!("/session/{}", owner.session_id), &intruder.bearer),
        404,
    );
    let unknown = assert_error(
        app.delete_auth(
            &format!("/session/{}", uuid::Uuid::new_v4()),
            &intruder.bearer,
        ),
        404,
    );
    assert_eq!(foreign, unknown, "another user's session reads as unknown");

    assert_eq!(closed_sessions(app), 0);
    session_check(app, &owner.bearer);
    session_check(app, &intruder.bearer);
}

fn extend_returns_new_expiry(app: &TestApp) {
    let user = app.register_user("extend@example.com", "extender");
    let before = session_check(app, &user.bearer)["expireAt"]
        .as_i64()
        .unwrap();

    let response = app.put_auth("/session/extend", &user.bearer, &json!({}));
    assert_eq!(response.status(), 202);
    let body: Value = response.json().unwrap();
    assert_eq!(field_names(&body), ["expireAt", "message"]);
    assert_eq!(body["message"], "acknowledged");
    let extended = body["expireAt"].as_i64().unwrap();
    assert!(extended >= before, "{extended} < {before}");

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let day = 24 * 60 * 60;
    assert!(
        (now + day - 60..=now + day + 60).contains(&extended),
        "expireAt {extended} is not a day after {now}"
    );
    assert_eq!(session_check(app, &user.bearer)["expireAt"], extended);
}

fn unverified_bearer_manages_nothing(app: &TestApp) {
    let verified = app.register_user("managed@example.com", "managed");
    let pending = start_login(app, "managed@example.com");
    app.next_code("managed@example.com");
    let registration = app.post(
        "/user",
        &json!({"email": "fresh@example.com", "fullName": "Fresh", "alias": "fresh"}),
    );
    assert_eq!(registration.status(), 202);
    let registration: Value = registration.json().unwrap();
    app.next_code("fresh@example.com");

    let email_id = crate::support::emails(app, &verified.bearer)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let counts = |app: &TestApp| {
        [
            "emails",
            "key_pairs",
            "codes",
            "sessions WHERE closed_at IS NOT NULL",
        ]
        .map(|table| app.count_rows(table))
    };
    let before = counts(app);
    let verify_body = json!({"verificationCodeID": uuid::Uuid::new_v4(), "code": "123456"});
    let requests: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/session".into(), None),
        (Method::GET, "/sessions".into(), None),
        (Method::PUT, "/session/extend".into(), Some(json!({}))),
        (
            Method::DELETE,
            format!("/session/{}", verified.session_id),
            None,
        ),
        (
            Method::POST,
            "/email".into(),
            Some(json!({"address": "new@example.com"})),
        ),
        (
            Method::PUT,
            "/email/verification".into(),
            Some(verify_body.clone()),
        ),
        (Method::GET, "/emails".into(), None),
        (
            Method::PUT,
            "/email/preferred".into(),
            Some(json!({"emailID": email_id})),
        ),
        (Method::DELETE, format!("/email/{email_id}"), None),
        (
            Method::POST,
            "/keypair".into(),
            Some(json!({"name": "ci", "days": 30})),
        ),
        (
            Method::PUT,
            "/keypair/verification".into(),
            Some(verify_body),
        ),
        (Method::GET, "/keypairs".into(), None),
        (
            Method::DELETE,
            format!("/keypair/{}", uuid::Uuid::new_v4()),
            None,
        ),
    ];
    let bearers = [
        pending["bearer"].as_str().unwrap(),
        registration["bearer"].as_str().unwrap(),
    ];
    for bearer in bearers {
        for (method, path, body) in &requests {
            let mut request = app.request(method.clone(), path).bearer_auth(bearer);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().unwrap();
            assert_eq!(response.status(), 401, "{method} {path}");
            assert_error(response, 401);
        }
    }
    // Without any credential too.
    for (method, path, body) in &requests {
        let mut request = app.request(method.clone(), path);
        if let Some(body) = body {
            request = request.json(body);
        }
        assert_error(request.send().unwrap(), 401);
    }

    assert_eq!(counts(app), before);
    session_check(app, &verified.bearer);
}

crate::on_both_backends!(
    list_marks_current_session,
    close_other_own_session,
    close_current_session,
    close_rejects_malformed_id,
    close_foreign_session_is_not_found,
    extend_returns_new_expiry,
    unverified_bearer_manages_nothing,
);
