//! Health, metrics and request logs of one running server.

use serde_json::json;

use crate::harness::{Backend, assert_error, spawn, spawn_with};

#[test]
fn ready_passes_once_worker_has_run() {
    let app = spawn(Backend::Sqlite).unwrap();
    let client = reqwest::blocking::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ready = client
            .get(format!("{}/health/ready", app.base_url))
            .send()
            .unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let alive = client
        .get(format!("{}/health/alive", app.base_url))
        .send()
        .unwrap();
    assert_eq!(alive.status(), 200);
}

#[test]
fn ready_fails_while_migrations_are_pending() {
    let app = spawn_with(
        Backend::Sqlite,
        &[("TWAUTH_DATABASE__MIGRATE_ON_START", "false")],
    )
    .unwrap();
    let ready = reqwest::blocking::get(format!("{}/health/ready", app.base_url)).unwrap();
    let message = assert_error(ready, 503);
    assert!(message.contains("migrations are pending"), "{message}");
}

#[test]
fn metrics_count_routes_by_template() {
    let app = spawn(Backend::Sqlite).unwrap();
    let user = app.register_user("metrics@example.com", "metrics");
    let closed = app.delete_auth(&format!("/session/{}", uuid::Uuid::new_v4()), &user.bearer);
    assert_eq!(closed.status(), 404);

    let text = reqwest::blocking::get(format!("{}/metrics", app.base_url))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        text.contains(
            r#"twauth_http_requests_total{method="DELETE",route="/api/auth/v2/session/{id}",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"twauth_codes_total{outcome="issued",purpose="registration"} 1"#));
    assert!(text.contains(r#"twauth_codes_total{outcome="verified",purpose="session"} 1"#));
    assert!(text.contains(r#"twauth_credential_checks_total{kind="session",result="valid"} 1"#));
    assert!(text.contains("twauth_db_pool_max_connections 10"));
    assert!(!text.contains(&user.session_id), "no id in a label");
}

#[test]
fn metrics_move_to_a_separate_listener() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let app = spawn_with(Backend::Sqlite, &[("TWAUTH_METRICS__LISTEN", &listen)]).unwrap();
    let main = reqwest::blocking::get(format!("{}/metrics", app.base_url)).unwrap();
    assert_error(main, 404);
    let apart = reqwest::blocking::get(format!("http://{listen}/metrics")).unwrap();
    assert_eq!(apart.status(), 200);
    assert!(apart.text().unwrap().contains("twauth_http_requests_total"));
}

#[test]
fn json_request_log_has_route_and_error_id() {
    let app = spawn_with(Backend::Sqlite, &[("TWAUTH_LOG__FORMAT", "json")]).unwrap();
    let response = app.post(
        "/session?email=secret@example.com",
        &json!({"email": "not an address"}),
    );
    let error_id = response.headers()["x-error-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.status(), 400);

    let log = app.log();
    let event: serde_json::Value = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| {
            event["message"] == "request finished" && event["error.id"] == error_id.as_str()
        })
        .unwrap_or_else(|| panic!("no request event with the error id in:\n{log}"));
    assert_eq!(event["http.method"], "POST");
    assert_eq!(event["http.route"], "/api/auth/v2/session");
    assert_eq!(event["http.status"], 400);
    assert!(event["duration_ms"].is_u64());
    assert!(
        !log.contains("secret@example.com"),
        "no query string in the log"
    );
}
