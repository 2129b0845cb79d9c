//! Starts the real `twauth` binary on a free loopback port with a fresh
//! database and a file outbox, and speaks HTTP to it.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

/// The API base path.
pub const BASE: &str = "/api/auth/v2";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The admin URL of the PostgreSQL server used for tests, if any.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("TWAUTH_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// A PostgreSQL database created for one test and dropped after it.
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn create(admin_url: &str) -> PgDatabase {
        let name = format!("twauth_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(admin_url).expect("connect to the test PostgreSQL");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create the test database");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url, |(base, _)| base);
        PgDatabase {
            admin_url: admin_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub backend: Backend,
    pub base_url: String,
    pub outbox: PathBuf,
    pub database_url: String,
    pub log_path: PathBuf,
    client: Client,
    child: Child,
    read_mail: Mutex<HashSet<PathBuf>>,
    _pg: Option<PgDatabase>,
    _dir: tempfile::TempDir,
}

/// Starts a server, or returns `None` for PostgreSQL when no test database
/// is configured (CI always configures one; see `.ci/run`).
pub fn spawn(backend: Backend) -> Option<TestApp> {
    spawn_with(backend, &[])
}

pub fn spawn_with(backend: Backend, env: &[(&str, &str)]) -> Option<TestApp> {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let (pg, database_url) = match backend {
        Backend::Sqlite => (
            None,
            format!("sqlite://{}", dir.path().join("twauth.db").display()),
        ),
        Backend::Postgres => {
            let Some(admin) = postgres_admin_url() else {
                assert!(
                    std::env::var("CI").is_err(),
                    "TWAUTH_TEST_DATABASE_URL must be set in CI"
                );
                eprintln!("skipped: TWAUTH_TEST_DATABASE_URL is not set");
                return None;
            };
            let db = PgDatabase::create(&admin);
            let url = db.url.clone();
            (Some(db), url)
        }
    };
    let outbox = dir.path().join("outbox");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("create the log file");

    let mut command = Command::new(env!("CARGO_BIN_EXE_twauth"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TWAUTH_SERVER__LISTEN", "127.0.0.1:0")
        .env("TWAUTH_SERVER__WORKERS", "2")
        .env("TWAUTH_SERVER__SHUTDOWN_TIMEOUT", "5")
        .env("TWAUTH_DATABASE__URL", &database_url)
        .env("TWAUTH_DATABASE__MIGRATE_ON_START", "true")
        .env("TWAUTH_MAIL__POLL_INTERVAL_MS", "50")
        .env("TWAUTH_AUTH__CODE_HASH_COST", "4")
        // Tests mail many codes from one address and client; the limit tests
        // set these back to their defaults.
        .env("TWAUTH_LIMITS__CODES_PER_ADDRESS", "1000")
        .env("TWAUTH_LIMITS__CODES_PER_ADDRESS_GAP", "0")
        .env("TWAUTH_LIMITS__LOGINS_PER_CLIENT", "1000")
        .env("TWAUTH_LIMITS__REGISTRATIONS_PER_CLIENT", "1000")
        .env("TWAUTH_LIMITS__EMAILS_PER_CLIENT", "1000")
        .env("TWAUTH_LIMITS__VERIFICATIONS_PER_CLIENT", "1000")
        .env("TWAUTH_LOG__LEVEL", "debug")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    // A test that picks another transport gets no `dir`, which the other
    // transport would reject as an unknown field.
    if !env
        .iter()
        .any(|(key, _)| *key == "TWAUTH_MAIL__TRANSPORT__TRANSPORT")
    {
        command
            .env("TWAUTH_MAIL__TRANSPORT__TRANSPORT", "file")
            .env("TWAUTH_MAIL__TRANSPORT__DIR", &outbox);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("start twauth");

    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("twauth listening on ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let base_url = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(url) => url,
        Err(_) => {
            let _ = child.kill();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("twauth did not start; its log:\n{log}");
        }
    };

    Some(TestApp {
        backend,
        base_url,
        outbox,
        database_url,
        log_path,
        client: Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("build the HTTP client"),
        child,
        read_mail: Mutex::new(HashSet::new()),
        _pg: pg,
        _dir: dir,
    })
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A logged-in user: a verified session's bearer token.
#[derive(Clone, Debug)]
pub struct User {
    pub email: String,
    pub alias: String,
    pub bearer: String,
    pub session_id: String,
}

impl TestApp {
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{BASE}{path}", self.base_url))
    }

    /// The server's process id, for sending it signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn raw(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base_url))
    }

    pub fn post(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .expect("send")
    }

    pub fn put(&self, path: &str, body: &Value) -> Response {
        self.request(Method::PUT, path)
            .json(body)
            .send()
            .expect("send")
    }

    pub fn put_auth(&self, path: &str, bearer: &str, body: &Value) -> Response {
        self.request(Method::PUT, path)
            .bearer_auth(bearer)
            .json(body)
            .send()
            .expect("send")
    }

    pub fn post_auth(&self, path: &str, bearer: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .bearer_auth(bearer)
            .json(body)
            .send()
            .expect("send")
    }

    pub fn get_auth(&self, path: &str, bearer: &str) -> Response {
        self.request(Method::GET, path)
            .bearer_auth(bearer)
            .send()
            .expect("send")
    }

    pub fn delete_auth(&self, path: &str, bearer: &str) -> Response {
        self.request(Method::DELETE, path)
            .bearer_auth(bearer)
            .send()
            .expect("send")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Every message file in the outbox.
    pub fn mail_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.outbox) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|ext| ext == "eml"))
            .collect();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
    }

    /// Waits for the next unread message to `to` and returns its decoded
    /// text. Panics after 10 seconds.
    pub fn next_mail(&self, to: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for path in self.mail_files() {
                if self.read_mail.lock().unwrap().contains(&path) {
                    continue;
                }
                let Ok(raw) = std::fs::read_to_string(&path) else {
                    continue;
                };
                if recipient(&raw).eq_ignore_ascii_case(to) {
                    self.read_mail.lock().unwrap().insert(path.clone());
                    return decode_text_part(&raw);
                }
            }
            assert!(Instant::now() < deadline, "no mail to {to} arrived");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the next code mailed to `to`.
    pub fn next_code(&self, to: &str) -> String {
        let text = self.next_mail(to);
        extract_code(&text).unwrap_or_else(|| panic!("no code in mail:\n{text}"))
    }

    /// Registers a user and verifies its first session.
    pub fn register_user(&self, email: &str, alias: &str) -> User {
        let response = self.post(
            "/user",
            &json!({"email": email, "fullName": format!("{alias} Tester"), "alias": alias}),
        );
        assert_eq!(response.status(), 202, "register {email}");
        let body: Value = response.json().unwrap();
        let code = self.next_code(&email.to_ascii_lowercase());
        let verified = self.put(
            "/session/verification",
            &json!({"verificationCodeID": body["verificationCodeID"], "code": code}),
        );
        assert_eq!(verified.status(), 202, "verify registration of {email}");
        User {
            email: email.to_owned(),
            alias: alias.to_owned(),
            bearer: body["bearer"].as_str().unwrap().to_owned(),
            session_id: body["sessionID"].as_str().unwrap().to_owned(),
        }
    }

    /// Logs in an existing user and verifies the session.
    pub fn login(&self, email: &str) -> User {
        let response = self.post("/session", &json!({"email": email}));
        assert_eq!(response.status(), 202, "login {email}");
        let body: Value = response.json().unwrap();
        let code = self.next_code(&email.to_ascii_lowercase());
        let verified = self.put(
            "/session/verification",
            &json!({"verificationCodeID": body["verificationCodeID"], "code": code}),
        );
        assert_eq!(verified.status(), 202, "verify login of {email}");
        User {
            email: email.to_owned(),
            alias: String::new(),
            bearer: body["bearer"].as_str().unwrap().to_owned(),
            session_id: body["sessionID"].as_str().unwrap().to_owned(),
        }
    }

    /// Counts rows of a table straight from the database.
    pub fn count_rows(&self, table: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let query = format!("SELECT COUNT(*) AS n FROM {table}");
        let rows: Vec<Count> = match self.backend {
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&self.database_url).unwrap();
                diesel::sql_query(query).load(&mut conn).unwrap()
            }
            Backend::Sqlite => {
                let path = self.database_url.trim_start_matches("sqlite://");
                let mut conn = diesel::SqliteConnection::establish(path).unwrap();
                diesel::sql_query(query).load(&mut conn).unwrap()
            }
        };
        rows[0].n
    }

    /// Dumps every row of every table as text, for secret scans.
    pub fn dump_database(&self) -> String {
        let path = self.database_url.clone();
        match self.backend {
            Backend::Postgres => {
                let output = Command::new("pg_dump")
                    .args(["--data-only", "--inserts", &path])
                    .output()
                    .expect("run pg_dump");
                assert!(output.status.success(), "pg_dump failed");
                String::from_utf8_lossy(&output.stdout).into_owned()
            }
            Backend::Sqlite => {
                let file = Path::new(path.trim_start_matches("sqlite://"));
                // Every byte of the file, WAL included, so nothing hides in
                // a page the dump would skip.
                let mut all = std::fs::read(file).unwrap_or_default();
                all.extend(std::fs::read(file.with_extension("db-wal")).unwrap_or_default());
                String::from_utf8_lossy(&all).into_owned()
            }
        }
    }
}

/// The `To` address of a raw message.
fn recipient(raw: &str) -> String {
    raw.lines()
        .find_map(|line| line.strip_prefix("To: "))
        .map(|to| {
            let to = to.trim();
            to.rsplit_once('<')
                .map_or(to, |(_, rest)| rest.trim_end_matches('>'))
                .to_owned()
        })
        .unwrap_or_default()
}

/// The decoded text/plain part of a raw message.
pub fn decode_text_part(raw: &str) -> String {
    let normalized = raw.replace("\r\n", "\n");
    let Some(start) = normalized.find("Content-Type: text/plain") else {
        return normalized;
    };
    let part = &normalized[start..];
    let (headers, rest) = part.split_once("\n\n").unwrap_or((part, ""));
    let body = rest.split("\n--").next().unwrap_or(rest);
    if headers.contains("Content-Transfer-Encoding: base64") {
        let joined: String = body.split_whitespace().collect();
        String::from_utf8_lossy(&base64_decode(&joined)).into_owned()
    } else if headers.contains("Content-Transfer-Encoding: quoted-printable") {
        decode_quoted_printable(body)
    } else {
        body.to_owned()
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.bytes().filter(|b| *b != b'=') {
        let Some(value) = ALPHABET.iter().position(|a| *a == byte) else {
            continue;
        };
        buffer = (buffer << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

fn decode_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'=' && i + 2 < bytes.len())
            .then(|| u8::from_str_radix(&joined[i + 1..i + 3], 16).ok())
            .flatten();
        if let Some(byte) = escaped {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first run of exactly six digits in a text.
pub fn extract_code(text: &str) -> Option<String> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 6)
        .map(str::to_owned)
}

/// Checks the error contract: status, `x-error`, `x-error-id` (a UUID) and
/// the JSON body that repeats both. Returns the message.
pub fn assert_error(response: Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status, "status");
    let message = response
        .headers()
        .get("x-error")
        .expect("x-error header")
        .to_str()
        .unwrap()
        .to_owned();
    let id = response
        .headers()
        .get("x-error-id")
        .expect("x-error-id header")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "x-error-id is a UUID");
    assert!(!message.is_empty(), "x-error is not empty");
    let body: Value = response.json().expect("error body is JSON");
    assert_eq!(body["error"], message.as_str());
    assert_eq!(body["errorID"], id.as_str());
    message
}

/// Declares one test per backend for a function `fn(&TestApp)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let app = $crate::harness::spawn($crate::harness::Backend::Sqlite).unwrap();
                    super::$name(&app);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(app) = $crate::harness::spawn($crate::harness::Backend::Postgres) {
                        super::$name(&app);
                    }
                }
            )*
        }
    };
}
