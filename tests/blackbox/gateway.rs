//! The gateway decision endpoint, `/authorize`: called directly in the
//! forms nginx, Traefik and Envoy use, reloaded on SIGHUP, and run for real
//! behind nginx with `deploy/nginx/twauth.conf`.
//!
//! The nginx tests need an `nginx` binary with the auth_request module
//! (Debian's `nginx-light` has it). Without one they print `skipped` and
//! pass, except in CI (`CI` set), where they fail.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

use crate::harness::{self, Backend, TestApp, User, assert_error};

/// The route table used by every test here, as a `routes_file`.
const ROUTES: &str = r#"
[[routes]]
path = "/public/**"
public = true

[[routes]]
method = "GET"
path = "/reports/{id}"
roles = ["auditor"]

[[routes]]
path = "/app/**"
roles = ["user"]

[[routes]]
method = "GET"
path = "/feed"
optional = true
"#;

const IDENTITY_HEADERS: [&str; 3] = ["user-id", "groups", "roles"];

/// A twauth server with `ROUTES` loaded from a file that a test may rewrite.
struct GatewayApp {
    app: TestApp,
    routes_file: PathBuf,
    _dir: tempfile::TempDir,
}

fn spawn_gateway(backend: Backend, routes: &str) -> Option<GatewayApp> {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let routes_file = dir.path().join("routes.toml");
    std::fs::write(&routes_file, routes).expect("write the routes file");
    let app = harness::spawn_with(
        backend,
        &[(
            "TWAUTH_GATEWAY__ROUTES_FILE",
            routes_file.to_str().expect("UTF-8 temp path"),
        )],
    )?;
    Some(GatewayApp {
        app,
        routes_file,
        _dir: dir,
    })
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build the HTTP client")
}

/// Builds a direct check in nginx's form.
fn check(app: &TestApp, method: &str, uri: &str) -> RequestBuilder {
    app.request(Method::GET, "/authorize")
        .header("x-original-method", method)
        .header("x-original-uri", uri)
}

fn send(request: RequestBuilder) -> Response {
    request.send().expect("send")
}

fn user_id(app: &TestApp, user: &User) -> String {
    let session: Value = app.get_auth("/session", &user.bearer).json().unwrap();
    session["userID"].as_str().unwrap().to_owned()
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

/// Creates and verifies a key pair of `user`; returns `(api_key, api_secret)`.
fn verified_key_pair(app: &TestApp, user: &User) -> (String, String) {
    let created = app.post_auth(
        "/keypair",
        &user.bearer,
        &json!({"name": "gateway", "days": 30}),
    );
    assert_eq!(created.status(), 202, "create a key pair");
    let created: Value = created.json().unwrap();
    // The code and a notice of the new key pair arrive in either order.
    let to = user.email.to_ascii_lowercase();
    let code = harness::extract_code(&app.next_mail(&to))
        .or_else(|| harness::extract_code(&app.next_mail(&to)))
        .expect("a mail with the key pair's code");
    let verified = app.put_auth(
        "/keypair/verification",
        &user.bearer,
        &json!({"verificationCodeID": created["verificationCodeID"], "code": code}),
    );
    assert_eq!(verified.status(), 202, "verify the key pair");
    (
        created["apiKey"].as_str().unwrap().to_owned(),
        created["apiSecret"].as_str().unwrap().to_owned(),
    )
}

/// Starts a login and returns its bearer token, never verified.
fn unverified_bearer(app: &TestApp, email: &str) -> String {
    let started = app.post("/session", &json!({"email": email}));
    assert_eq!(started.status(), 202, "start a login");
    let body: Value = started.json().unwrap();
    body["bearer"].as_str().unwrap().to_owned()
}

#[test]
fn authorize_allows_bearer_with_identity() {
    let gateway = spawn_gateway(Backend::Sqlite, ROUTES).unwrap();
    let app = &gateway.app;
    let alice = app.register_user("alice@example.com", "alice");
    let id = user_id(app, &alice);

    let response = send(check(app, "POST", "/app/orders?x=1").bearer_auth(&alice.bearer));
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "user-id"), Some(id.as_str()));
    assert_eq!(header(&response, "roles"), Some("user"));
    assert_eq!(header(&response, "groups"), Some("public"));
}

#[test]
fn authorize_denies_with_error_headers() {
    let gateway = spawn_gateway(Backend::Sqlite, ROUTES).unwrap();
    let app = &gateway.app;
    let alice = app.register_user("alice@example.com", "alice");

    assert_error(send(check(app, "GET", "/app/orders")), 401);
    assert_error(
        send(check(app, "GET", "/app/orders").bearer_auth("not-a-token")),
        401,
    );
    let unverified = unverified_bearer(app, "alice@example.com");
    assert_error(
        send(check(app, "GET", "/app/orders").bearer_auth(&unverified)),
        401,
    );
    assert_error(
        send(check(app, "GET", "/reports/7").bearer_auth(&alice.bearer)),
        403,
    );
    assert_error(
        send(check(app, "GET", "/nowhere").bearer_auth(&alice.bearer)),
        403,
    );
    assert_error(
        send(check(app, "GET", "/public/../app/x").bearer_auth(&unverified)),
        401,
    );
    assert_error(send(check(app, "GET", "/public/%2e%2e/app/x")), 401);
    assert_error(send(check(app, "GET", "/public/a%2Fb")), 400);
    assert_error(send(app.request(Method::GET, "/authorize")), 400);
}

#[test]
fn authorize_public_and_optional_routes() {
    let gateway = spawn_gateway(Backend::Sqlite, ROUTES).unwrap();
    let app = &gateway.app;
    let alice = app.register_user("alice@example.com", "alice");

    let public = send(check(app, "DELETE", "/public/a").bearer_auth(&alice.bearer));
    assert_eq!(public.status(), 200);
    for name in IDENTITY_HEADERS {
        assert!(header(&public, name).is_none(), "public route sent {name}");
    }

    let anonymous = send(check(app, "GET", "/feed"));
    assert_eq!(anonymous.status(), 200);
    assert!(header(&anonymous, "user-id").is_none());

    let stale = send(check(app, "GET", "/feed").bearer_auth("not-a-token"));
    assert_eq!(stale.status(), 200);
    assert!(header(&stale, "user-id").is_none());

    let identified = send(check(app, "GET", "/feed").bearer_auth(&alice.bearer));
    assert_eq!(identified.status(), 200);
    assert_eq!(
        header(&identified, "user-id"),
        Some(user_id(app, &alice).as_str())
    );

    let wrong_method = send(check(app, "POST", "/feed").bearer_auth(&alice.bearer));
    assert_error(wrong_method, 403);
}

#[test]
fn authorize_reads_traefik_and_envoy_forms() {
    let gateway = spawn_gateway(Backend::Sqlite, ROUTES).unwrap();
    let app = &gateway.app;
    let alice = app.register_user("alice@example.com", "alice");
    let (key, secret) = verified_key_pair(app, &alice);
    let id = user_id(app, &alice);

    let traefik = send(
        app.request(Method::GET, "/authorize")
            .header("x-forwarded-method", "PUT")
            .header("x-forwarded-uri", "/app/items/3")
            .header("api-key", &key)
            .header("api-secret", &secret),
    );
    assert_eq!(traefik.status(), 200);
    assert_eq!(header(&traefik, "user-id"), Some(id.as_str()));

    let traefik_denied = send(
        app.request(Method::GET, "/authorize")
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-uri", "/reports/1")
            .header("api-key", &key)
            .header("api-secret", &secret),
    );
    assert_error(traefik_denied, 403);

    let envoy = send(
        app.request(Method::PATCH, "/authorize/app/items/3?q=1")
            .bearer_auth(&alice.bearer),
    );
    assert_eq!(envoy.status(), 200);
    assert_eq!(header(&envoy, "user-id"), Some(id.as_str()));

    let envoy_public = send(app.request(Method::POST, "/authorize/public/upload"));
    assert_eq!(envoy_public.status(), 200);

    let envoy_denied = send(app.request(Method::GET, "/authorize/app/items/3"));
    assert_error(envoy_denied, 401);
}

#[test]
fn authorize_reloads_routes_on_sighup() {
    let admin_only = ROUTES.replace(r#"roles = ["user"]"#, r#"roles = ["admin"]"#);
    let gateway = spawn_gateway(Backend::Sqlite, &admin_only).unwrap();
    let app = &gateway.app;
    let alice = app.register_user("alice@example.com", "alice");
    let status = || {
        send(check(app, "GET", "/app/x").bearer_auth(&alice.bearer))
            .status()
            .as_u16()
    };
    assert_eq!(status(), 403);

    std::fs::write(&gateway.routes_file, ROUTES).unwrap();
    hang_up(app);
    wait_until("the new table is used", || status() == 200);

    std::fs::write(
        &gateway.routes_file,
        "[[routes]]\nmethod = \"GTE\"\npath = \"/\"\n",
    )
    .unwrap();
    hang_up(app);
    wait_until("the reload failure is logged", || {
        app.log().contains("gateway route table reload failed")
    });
    assert!(app.log().contains("routes[0]"), "the log names the entry");
    assert_eq!(status(), 200, "the previous table stays in use");
}

fn hang_up(app: &TestApp) {
    let status = Command::new("kill")
        .args(["-HUP", &app.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP failed");
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn invalid_route_table_stops_startup() {
    let dir = tempfile::tempdir().unwrap();
    let routes_file = dir.path().join("routes.toml");
    std::fs::write(
        &routes_file,
        "[[routes]]\npath = \"/a\"\n\n[[routes]]\nmethod = \"GTE\"\npath = \"/b\"\n\n\
         [[routes]]\npath = \"/c\"\npublic = true\nroles = [\"user\"]\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_twauth"))
        .env_clear()
        .env("TWAUTH_SERVER__LISTEN", "127.0.0.1:0")
        .env(
            "TWAUTH_DATABASE__URL",
            format!("sqlite://{}", dir.path().join("twauth.db").display()),
        )
        .env("TWAUTH_GATEWAY__ROUTES_FILE", &routes_file)
        .current_dir(dir.path())
        .output()
        .expect("run twauth");
    assert!(!output.status.success(), "twauth started with a bad table");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("routes[1]: method \"GTE\""), "{stderr}");
    assert!(
        stderr.contains("routes[2]: a public entry cannot require roles"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------
// Through real nginx.

/// An HTTP server on a free loopback port that returns, for every request,
/// a JSON object of what it received: `method`, `uri` and `headers` (names
/// lower-cased, repeated headers joined with ", ").
struct EchoUpstream {
    port: u16,
}

impl EchoUpstream {
    fn start() -> EchoUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the echo upstream");
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                std::thread::spawn(move || {
                    let _ = echo(stream);
                });
            }
        });
        EchoUpstream { port }
    }
}

fn echo(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let uri = parts.next().unwrap_or("").to_owned();

    let mut headers: HashMap<String, String> = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers
                .entry(name.trim().to_ascii_lowercase())
                .and_modify(|existing| {
                    existing.push_str(", ");
                    existing.push_str(value.trim());
                })
                .or_insert_with(|| value.trim().to_owned());
        }
    }

    let body = json!({"method": method, "uri": uri, "headers": headers}).to_string();
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// Finds nginx on `PATH` or in `/usr/sbin`. Returns `None` outside CI when
/// there is none; in CI a missing nginx fails the test.
fn find_nginx() -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").is_err(),
            "nginx is not installed; .ci/run installs it with apt-get"
        );
        eprintln!("skipped: nginx is not installed");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port")
        .port()
}

/// nginx running `deploy/nginx/twauth.conf` in the foreground, as one
/// process, with its pid, logs and temporary files in a temp dir.
struct Nginx {
    base_url: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    fn start(binary: &Path, twauth_url: &str, upstream_port: u16) -> Nginx {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let port = free_port();
        let twauth_address = twauth_url.trim_start_matches("http://");

        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nginx/twauth.conf");
        let mut site = std::fs::read_to_string(&deploy).expect("read deploy/nginx/twauth.conf");
        for (from, to) in [
            (
                "server 127.0.0.1:8080;".to_owned(),
                format!("server {twauth_address};"),
            ),
            (
                "server 127.0.0.1:3000;".to_owned(),
                format!("server 127.0.0.1:{upstream_port};"),
            ),
            (
                "listen 127.0.0.1:8000;".to_owned(),
                format!("listen 127.0.0.1:{port};"),
            ),
        ] {
            assert_eq!(
                site.matches(&from).count(),
                1,
                "deploy/nginx/twauth.conf should contain {from:?} once"
            );
            site = site.replace(&from, &to);
        }
        std::fs::write(dir.path().join("twauth.conf"), site).unwrap();

        let root = dir.path().display();
        let main = format!(
            "master_process off;\n\
             pid {root}/nginx.pid;\n\
             error_log {root}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
             access_log {root}/access.log;\n\
             client_body_temp_path {root}/client_body;\n\
             proxy_temp_path {root}/proxy;\n\
             fastcgi_temp_path {root}/fastcgi;\n\
             uwsgi_temp_path {root}/uwsgi;\n\
             scgi_temp_path {root}/scgi;\n\
             include {root}/twauth.conf;\n\
             }}\n"
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, main).unwrap();

        let mut child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");

        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = child.try_wait().expect("poll nginx");
            let log = || std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
            assert!(
                exited.is_none(),
                "nginx exited ({exited:?}); its log:\n{}",
                log()
            );
            assert!(
                Instant::now() < deadline,
                "nginx did not listen; its log:\n{}",
                log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx {
            base_url: format!("http://127.0.0.1:{port}"),
            child,
            dir,
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a request through nginx and returns the response.
fn through(nginx: &Nginx, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = client().get(format!("{}{path}", nginx.base_url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().expect("send through nginx")
}

/// Returns the headers the upstream received, from its 200 response.
fn upstream_headers(nginx: &Nginx, response: Response) -> Value {
    let status = response.status();
    let body = response.text().unwrap();
    assert_eq!(
        status,
        200,
        "body: {body}\nnginx log:\n{}",
        nginx.error_log()
    );
    let echoed: Value = serde_json::from_str(&body).expect("the upstream's JSON");
    echoed["headers"].clone()
}

fn nginx_end_to_end(backend: Backend) {
    let Some(binary) = find_nginx() else {
        return;
    };
    let Some(gateway) = spawn_gateway(backend, ROUTES) else {
        return;
    };
    let app = &gateway.app;
    let upstream = EchoUpstream::start();
    let nginx = Nginx::start(&binary, &app.base_url, upstream.port);

    let alice = app.register_user("alice@example.com", "alice");
    let id = user_id(app, &alice);
    let bearer = format!("Bearer {}", alice.bearer);
    let forged = [
        ("user-id", "00000000-0000-0000-0000-000000000000"),
        ("roles", "admin"),
        ("groups", "staff"),
    ];

    // A public route passes without a credential, and without identity.
    let seen = upstream_headers(&nginx, through(&nginx, "/public/index.html", &[]));
    for name in IDENTITY_HEADERS {
        assert!(seen.get(name).is_none(), "public route passed {name}");
    }

    // Forged identity headers on a public route are dropped.
    let seen = upstream_headers(&nginx, through(&nginx, "/public/index.html", &forged));
    for name in IDENTITY_HEADERS {
        assert!(
            seen.get(name).is_none(),
            "public route passed a forged {name}"
        );
    }

    // A bearer on a protected route: the upstream gets twauth's identity,
    // and not the credential.
    let seen = upstream_headers(
        &nginx,
        through(&nginx, "/app/orders?page=2", &[("authorization", &bearer)]),
    );
    assert_eq!(seen["user-id"], id.as_str());
    assert_eq!(seen["roles"], "user");
    assert_eq!(seen["groups"], "public");
    assert!(
        seen.get("authorization").is_none(),
        "the bearer reached the upstream"
    );

    // Forged identity headers beside a valid bearer are replaced.
    let mut headers = forged.to_vec();
    headers.push(("authorization", &bearer));
    let seen = upstream_headers(&nginx, through(&nginx, "/app/orders", &headers));
    assert_eq!(seen["user-id"], id.as_str());
    assert_eq!(seen["roles"], "user");
    assert_eq!(seen["groups"], "public");

    // A verified key pair works like a bearer.
    let (key, secret) = verified_key_pair(app, &alice);
    let seen = upstream_headers(
        &nginx,
        through(
            &nginx,
            "/app/orders",
            &[("api-key", &key), ("api-secret", &secret)],
        ),
    );
    assert_eq!(seen["user-id"], id.as_str());
    assert!(
        seen.get("api-secret").is_none(),
        "the secret reached the upstream"
    );

    // An optional route passes identity when there is one.
    let seen = upstream_headers(&nginx, through(&nginx, "/feed", &forged));
    assert!(
        seen.get("user-id").is_none(),
        "optional route passed a forged user-id"
    );
    let seen = upstream_headers(
        &nginx,
        through(&nginx, "/feed", &[("authorization", &bearer)]),
    );
    assert_eq!(seen["user-id"], id.as_str());

    // Denials pass through nginx with twauth's status and error headers.
    assert_error(through(&nginx, "/app/orders", &forged), 401);
    let unverified = format!("Bearer {}", unverified_bearer(app, &alice.email));
    assert_error(
        through(&nginx, "/app/orders", &[("authorization", &unverified)]),
        401,
    );
    assert_error(
        through(&nginx, "/reports/7", &[("authorization", &bearer)]),
        403,
    );
    assert_error(
        through(&nginx, "/nowhere", &[("authorization", &bearer)]),
        403,
    );
}

#[test]
fn nginx_end_to_end_sqlite() {
    nginx_end_to_end(Backend::Sqlite);
}

#[test]
fn nginx_end_to_end_postgres() {
    nginx_end_to_end(Backend::Postgres);
}
