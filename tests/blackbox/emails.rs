//! POST /email, PUT /email/verification, GET /emails, PUT /email/preferred
//! and DELETE /email/{id}, and the notices they send.

use serde_json::{Value, json};

use crate::harness::{TestApp, assert_error};
use crate::support::{
    add_verified_email, check_key_pair, code_and_notice, create_key_pair, email_id, emails,
    field_names, notice, settled_mail_count, start_login, wrong_code,
};

fn add_email(app: &TestApp, bearer: &str, address: &str) -> reqwest::blocking::Response {
    app.post_auth("/email", bearer, &json!({"address": address}))
}

fn verify_email(
    app: &TestApp,
    bearer: &str,
    code_id: &Value,
    code: &str,
) -> reqwest::blocking::Response {
    app.put_auth(
        "/email/verification",
        bearer,
        &json!({"verificationCodeID": code_id, "code": code}),
    )
}

fn add_verify_list(app: &TestApp) {
    let user = app.register_user("first@example.com", "adder");

    let response = add_email(app, &user.bearer, "Second@Example.COM");
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().unwrap();
    assert_eq!(field_names(&body), ["emailID", "verificationCodeID"]);
    let id = body["emailID"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());

    // The code goes to the new address, a notice without a code to the
    // preferred one.
    let code = app.next_code("second@example.com");
    let added = notice(app, "first@example.com");
    assert!(added.contains("second@example.com"), "{added}");

    let listed = emails(app, &user.bearer);
    assert_eq!(listed.len(), 2);
    for item in &listed {
        assert_eq!(
            field_names(item),
            ["address", "id", "preferred", "verified"]
        );
    }
    let second = listed.iter().find(|e| e["id"] == id).unwrap();
    assert_eq!(second["address"], "second@example.com");
    assert_eq!(second["verified"], false);
    assert_eq!(second["preferred"], false);
    let first = listed.iter().find(|e| e["id"] != id).unwrap();
    assert_eq!(first["address"], "first@example.com");
    assert_eq!(first["verified"], true);
    assert_eq!(first["preferred"], true);

    let verified = verify_email(app, &user.bearer, &body["verificationCodeID"], &code);
    assert_eq!(verified.status(), 202);
    assert_eq!(
        verified.json::<Value>().unwrap(),
        json!({"message": "acknowledged"})
    );
    let verified_notice = notice(app, "first@example.com");
    assert!(verified_notice.contains("second@example.com"));

    let listed = emails(app, &user.bearer);
    let second = listed.iter().find(|e| e["id"] == id).unwrap();
    assert_eq!(second["verified"], true);
    assert_eq!(second["preferred"], false);

    // A verified address logs in, and the code goes to it.
    let login = app.login("second@example.com");
    assert_eq!(
        session_user(app, &login.bearer),
        session_user(app, &user.bearer)
    );
}

fn session_user(app: &TestApp, bearer: &str) -> Value {
    crate::support::session_check(app, bearer)["userID"].clone()
}

fn add_rejects_taken_address(app: &TestApp) {
    let user = app.register_user("mine@example.com", "mine");
    let other = app.register_user("theirs@example.com", "theirs");
    let response = add_email(app, &other.bearer, "pending@example.com");
    assert_eq!(response.status(), 202);
    app.next_code("pending@example.com");
    notice(app, "theirs@example.com");

    let emails_before = app.count_rows("emails");
    let codes_before = app.count_rows("codes");
    let mail_before = settled_mail_count(app);
    for taken in [
        "theirs@example.com",
        "THEIRS@Example.com",
        "mine@example.com",
        "Mine@EXAMPLE.com",
        "pending@example.com",
        "Pending@example.com",
    ] {
        let message = assert_error(add_email(app, &user.bearer, taken), 409);
        assert!(!message.is_empty());
    }
    assert_eq!(app.count_rows("emails"), emails_before);
    assert_eq!(app.count_rows("codes"), codes_before);
    assert_eq!(settled_mail_count(app), mail_before);
    assert_eq!(emails(app, &user.bearer).len(), 1);
}

fn add_rejects_invalid_address(app: &TestApp) {
    let user = app.register_user("valid@example.com", "valid");
    let mail_before = settled_mail_count(app);
    for bad in [
        json!("nope"),
        json!(""),
        json!("a@b.c\r\nBcc: x@example.org"),
        json!("\"q\"@example.com"),
        json!("trailing@example.com."),
        json!(5),
        json!(null),
    ] {
        assert_error(
            app.post_auth("/email", &user.bearer, &json!({"address": bad})),
            400,
        );
    }
    let message = assert_error(app.post_auth("/email", &user.bearer, &json!({})), 400);
    assert!(message.contains("address"), "{message}");

    assert_eq!(app.count_rows("emails"), 1);
    assert_eq!(app.count_rows("codes"), 1);
    assert_eq!(settled_mail_count(app), mail_before);
}

fn verify_rejects_foreign_codes(app: &TestApp) {
    let user = app.register_user("holder@example.com", "holder");
    let other = app.register_user("stranger@example.com", "stranger");

    let response = add_email(app, &user.bearer, "added@example.com");
    let added: Value = response.json().unwrap();
    let code = app.next_code("added@example.com");
    notice(app, "holder@example.com");

    let wrong = assert_error(
        verify_email(
            app,
            &user.bearer,
            &added["verificationCodeID"],
            wrong_code(&code),
        ),
        401,
    );

    // A login code of the same user, with its right code.
    let login = start_login(app, "holder@example.com");
    let login_code = app.next_code("holder@example.com");
    let message = assert_error(
        verify_email(app, &user.bearer, &login["verificationCodeID"], &login_code),
        401,
    );
    assert_eq!(message, wrong, "a login code reads as a wrong code");

    // A key pair code of the same user, with its right code.
    let key = create_key_pair(app, &user.bearer, "ci", 30);
    let (key_code, _) = code_and_notice(app, "holder@example.com");
    let message = assert_error(
        verify_email(app, &user.bearer, &key["verificationCodeID"], &key_code),
        401,
    );
    assert_eq!(message, wrong, "a key pair code reads as a wrong code");

    // Another user's email code, with its right code.
    let response = add_email(app, &other.bearer, "elsewhere@example.com");
    let foreign: Value = response.json().unwrap();
    let foreign_code = app.next_code("elsewhere@example.com");
    notice(app, "stranger@example.com");
    let message = assert_error(
        verify_email(
            app,
            &user.bearer,
            &foreign["verificationCodeID"],
            &foreign_code,
        ),
        401,
    );
    assert_eq!(message, wrong, "another user's code reads as a wrong code");

    let unknown = assert_error(
        verify_email(app, &user.bearer, &json!(uuid::Uuid::new_v4()), &code),
        401,
    );
    assert_eq!(unknown, wrong, "an unknown id reads as a wrong code");
    assert_error(
        verify_email(app, &user.bearer, &json!("not-a-uuid"), &code),
        400,
    );
    assert_error(
        verify_email(app, &user.bearer, &added["verificationCodeID"], "12345"),
        400,
    );

    // Nothing was verified, and none of those codes was spent.
    let listed = emails(app, &user.bearer);
    assert_eq!(listed.iter().filter(|e| e["verified"] == true).count(), 1);
    let other_listed = emails(app, &other.bearer);
    assert_eq!(
        other_listed
            .iter()
            .filter(|e| e["verified"] == true)
            .count(),
        1
    );
    assert_error(
        check_key_pair(
            app,
            key["apiKey"].as_str().unwrap(),
            key["apiSecret"].as_str().unwrap(),
        ),
        401,
    );

    let session = app.put(
        "/session/verification",
        &json!({"verificationCodeID": login["verificationCodeID"], "code": login_code}),
    );
    assert_eq!(session.status(), 202, "the login code still works");
    let key_verified = app.put_auth(
        "/keypair/verification",
        &user.bearer,
        &json!({"verificationCodeID": key["verificationCodeID"], "code": key_code}),
    );
    assert_eq!(key_verified.status(), 202, "the key pair code still works");
    let own = verify_email(app, &user.bearer, &added["verificationCodeID"], &code);
    assert_eq!(own.status(), 202, "the email code still works");
    let theirs = verify_email(
        app,
        &other.bearer,
        &foreign["verificationCodeID"],
        &foreign_code,
    );
    assert_eq!(theirs.status(), 202, "the other user's code still works");
}

fn prefer_email_rules(app: &TestApp) {
    let user = app.register_user("old@example.com", "preferrer");
    let other = app.register_user("someone@example.com", "someone");
    let others_id = email_id(&emails(app, &other.bearer), "someone@example.com");

    let response = add_email(app, &user.bearer, "new@example.com");
    let added: Value = response.json().unwrap();
    let new_id = added["emailID"].as_str().unwrap().to_owned();
    let code = app.next_code("new@example.com");
    notice(app, "old@example.com");

    let before = emails(app, &user.bearer);
    let prefer = |body: Value| app.put_auth("/email/preferred", &user.bearer, &body);
    assert_error(prefer(json!({"emailID": new_id})), 409);
    assert_error(prefer(json!({"emailID": others_id})), 404);
    assert_error(prefer(json!({"emailID": uuid::Uuid::new_v4()})), 404);
    assert_error(prefer(json!({"emailID": "not-a-uuid"})), 400);
    assert_error(prefer(json!({"emailID": 7})), 400);
    assert_error(prefer(json!({})), 400);
    assert_eq!(emails(app, &user.bearer), before);
    assert_eq!(
        emails(app, &other.bearer)[0]["preferred"],
        true,
        "the other user's email is untouched"
    );

    let verified = verify_email(app, &user.bearer, &added["verificationCodeID"], &code);
    assert_eq!(verified.status(), 202);
    notice(app, "old@example.com");

    let response = prefer(json!({"emailID": new_id}));
    assert_eq!(response.status(), 202);
    assert_eq!(
        response.json::<Value>().unwrap(),
        json!({"message": "acknowledged"})
    );
    let text = notice(app, "new@example.com");
    assert!(text.contains("new@example.com"), "{text}");

    let listed = emails(app, &user.bearer);
    let preferred: Vec<&Value> = listed.iter().filter(|e| e["preferred"] == true).collect();
    assert_eq!(preferred.len(), 1);
    assert_eq!(preferred[0]["id"], new_id.as_str());

    // Key pair codes and notices now go to the new preferred address.
    create_key_pair(app, &user.bearer, "after", 7);
    code_and_notice(app, "new@example.com");
}

fn delete_email_rules(app: &TestApp) {
    let user = app.register_user("keep@example.com", "keeper");
    let other = app.register_user("foreign@example.com", "foreign");
    let others_id = email_id(&emails(app, &other.bearer), "foreign@example.com");
    let spare_id = add_verified_email(app, &user.bearer, "keep@example.com", "spare@example.com");
    let preferred_id = email_id(&emails(app, &user.bearer), "keep@example.com");

    let rows_before = app.count_rows("emails");
    let mail_before = settled_mail_count(app);
    let delete = |id: &str| app.delete_auth(&format!("/email/{id}"), &user.bearer);
    let message = assert_error(delete(&preferred_id), 409);
    assert!(message.contains("preferred"), "{message}");
    let foreign = assert_error(delete(&others_id), 404);
    let unknown = assert_error(delete(&uuid::Uuid::new_v4().to_string()), 404);
    assert_eq!(foreign, unknown, "another user's email reads as unknown");
    assert_error(delete("not-a-uuid"), 400);
    assert_eq!(app.count_rows("emails"), rows_before);
    assert_eq!(settled_mail_count(app), mail_before);

    let response = delete(&spare_id);
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().unwrap(),
        json!({"message": "acknowledged"})
    );
    let text = notice(app, "keep@example.com");
    assert!(text.contains("spare@example.com"), "{text}");
    assert_eq!(app.count_rows("emails"), rows_before - 1);
    let listed = emails(app, &user.bearer);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], preferred_id.as_str());

    // The address is free again.
    assert_error(delete(&spare_id), 404);
    let response = add_email(app, &other.bearer, "spare@example.com");
    assert_eq!(response.status(), 202);
}

fn code_of_deleted_email_is_dead(app: &TestApp) {
    let user = app.register_user("base@example.com", "base");
    let response = add_email(app, &user.bearer, "gone@example.com");
    let added: Value = response.json().unwrap();
    let code = app.next_code("gone@example.com");
    notice(app, "base@example.com");

    let id = added["emailID"].as_str().unwrap();
    let deleted = app.delete_auth(&format!("/email/{id}"), &user.bearer);
    assert_eq!(deleted.status(), 200);
    notice(app, "base@example.com");

    // The code's email no longer exists, so the code verifies nothing.
    let mail_before = settled_mail_count(app);
    assert_error(
        verify_email(app, &user.bearer, &added["verificationCodeID"], &code),
        401,
    );
    assert_eq!(
        settled_mail_count(app),
        mail_before,
        "no notice for a deleted email"
    );
    assert_eq!(emails(app, &user.bearer).len(), 1);
}

crate::on_both_backends!(
    add_verify_list,
    add_rejects_taken_address,
    add_rejects_invalid_address,
    verify_rejects_foreign_codes,
    prefer_email_rules,
    delete_email_rules,
    code_of_deleted_email_is_dead,
);
