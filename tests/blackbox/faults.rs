//! Fault tests against real processes: PostgreSQL stopped under a running
//! server, replicas killed and restarted under load, and SIGTERM draining.
//!
//! The PostgreSQL tests run a throwaway cluster of their own (`initdb` in a
//! temp folder, as the `postgres` OS user, on a free loopback port), so
//! stopping it never touches the server that `TWAUTH_TEST_DATABASE_URL`
//! names. Like the other PostgreSQL tests they are skipped when that
//! variable is unset.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

use crate::harness::{BASE, assert_error, decode_text_part, extract_code, postgres_admin_url};

/// Pool timeout of the servers in these tests, in seconds.
const CONNECT_TIMEOUT: u64 = 2;

/// A PostgreSQL cluster in a temp folder, stopped and removed on drop.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    /// Creates and starts a cluster, or returns `None` when PostgreSQL tests
    /// are not configured.
    fn start() -> Option<Cluster> {
        if postgres_admin_url().is_none() {
            eprintln!("skipped: TWAUTH_TEST_DATABASE_URL is not set");
            return None;
        }
        let bin = postgres_bin().expect("PostgreSQL server binaries under /usr/lib/postgresql");
        let dir = tempfile::tempdir().expect("create a temp dir");
        let owner = Command::new("id")
            .args(["-u", "postgres"])
            .output()
            .expect("run id");
        let uid: u32 = String::from_utf8_lossy(&owner.stdout)
            .trim()
            .parse()
            .expect("the postgres OS user exists");
        std::os::unix::fs::chown(dir.path(), Some(uid), None).expect("chown the temp dir");

        let cluster = Cluster {
            bin,
            port: free_port(),
            dir,
        };
        let initdb = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(cluster.bin.join("initdb"))
            .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
            .arg(cluster.data())
            .output()
            .expect("run initdb");
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        cluster.resume();
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl(&self, args: &[&str]) -> ExitStatus {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("postgres.log"))
            .args(["-o", &options, "-w"])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("run pg_ctl")
    }

    /// Starts the server and waits until it accepts connections.
    fn resume(&self) {
        assert!(self.pg_ctl(&["start"]).success(), "pg_ctl start failed");
    }

    /// Stops the server at once, as a crash would.
    fn crash(&self) {
        assert!(
            self.pg_ctl(&["-m", "immediate", "stop"]).success(),
            "pg_ctl stop failed"
        );
    }

    /// Creates a database and returns its URL.
    fn create_database(&self, name: &str) -> String {
        let base = format!("postgres://postgres@127.0.0.1:{}", self.port);
        let mut admin = PgConnection::establish(&format!("{base}/postgres")).expect("connect");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create the database");
        format!("{base}/{name}")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
    }
}

/// Finds the `bin` folder of the newest PostgreSQL server installed.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port")
        .port()
}

/// A `twauth` process started by these tests.
struct Replica {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Replica {
    /// Starts `twauth serve` and waits for its listening line. `name` keeps
    /// the log files of several processes in one folder apart.
    fn start(dir: &Path, name: &str, env: &[(&str, String)]) -> Replica {
        let log = dir.join(format!("{name}.log"));
        let mut child = twauth(dir, env)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .expect("open the log file"),
            ))
            .spawn()
            .expect("start twauth");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("twauth listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let Ok(url) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            panic!(
                "twauth did not start; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Replica { child, url, log }
    }

    /// Sends SIGTERM and waits for the exit, at most `limit`.
    fn terminate(&mut self, limit: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for twauth") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "twauth did not exit within {limit:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds a `twauth` command with the settings of the black-box tests.
fn twauth(dir: &Path, env: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_twauth"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TWAUTH_SERVER__LISTEN", "127.0.0.1:0")
        .env("TWAUTH_SERVER__WORKERS", "2")
        .env("TWAUTH_SERVER__SHUTDOWN_TIMEOUT", "5")
        .env(
            "TWAUTH_DATABASE__CONNECT_TIMEOUT",
            CONNECT_TIMEOUT.to_string(),
        )
        .env("TWAUTH_MAIL__TRANSPORT__TRANSPORT", "file")
        .env("TWAUTH_MAIL__POLL_INTERVAL_MS", "50")
        .env("TWAUTH_AUTH__CODE_HASH_COST", "4")
        .env("TWAUTH_LIMITS__CODES_PER_ADDRESS", "1000")
        .env("TWAUTH_LIMITS__CODES_PER_ADDRESS_GAP", "0")
        .env("TWAUTH_LIMITS__LOGINS_PER_CLIENT", "100000")
        .env("TWAUTH_LIMITS__REGISTRATIONS_PER_CLIENT", "100000")
        .env("TWAUTH_LIMITS__VERIFICATIONS_PER_CLIENT", "100000")
        .env("TWAUTH_LOG__LEVEL", "info")
        .current_dir(dir);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Runs `twauth migrate` once.
fn migrate(dir: &Path, database_url: &str) {
    let output = twauth(dir, &[("TWAUTH_DATABASE__URL", database_url.to_owned())])
        .arg("migrate")
        .output()
        .expect("run twauth migrate");
    assert!(
        output.status.success(),
        "twauth migrate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        // A fresh connection per request, so a stopped replica shows up as
        // a refused connection, never as a stale pooled one.
        .pool_max_idle_per_host(0)
        .build()
        .expect("build the HTTP client")
}

/// The codes mailed to each address, read from a shared file outbox.
#[derive(Default)]
struct Outbox {
    seen: HashSet<PathBuf>,
    by_recipient: HashMap<String, Vec<String>>,
}

impl Outbox {
    /// Reads the files not read before.
    fn scan(&mut self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            if path.extension().is_none_or(|ext| ext != "eml") || self.seen.contains(&path) {
                continue;
            }
            let Ok(raw) = std::fs::read_to_string(&path) else {
                continue;
            };
            // A file being written may not have its body yet.
            let Some(code) = extract_code(&decode_text_part(&raw)) else {
                continue;
            };
            self.seen.insert(path);
            self.by_recipient
                .entry(recipient(&raw))
                .or_default()
                .push(code);
        }
    }

    fn count(&self, to: &str) -> usize {
        self.by_recipient.get(to).map_or(0, Vec::len)
    }
}

fn recipient(raw: &str) -> String {
    let to = raw
        .lines()
        .find_map(|line| line.strip_prefix("To: "))
        .unwrap_or_default()
        .trim();
    to.rsplit_once('<')
        .map_or(to, |(_, rest)| rest.trim_end_matches('>'))
        .to_ascii_lowercase()
}

/// Waits for the `n`-th code (counting from 1) mailed to `to`.
fn wait_for_code(outbox: &Mutex<Outbox>, dir: &Path, to: &str, n: usize) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        {
            let mut outbox = outbox.lock().unwrap();
            outbox.scan(dir);
            if let Some(code) = outbox
                .by_recipient
                .get(to)
                .and_then(|codes| codes.get(n - 1))
            {
                return Some(code.clone());
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

fn wait_until_ready(url: &str, limit: Duration) -> Duration {
    let client = client();
    let started = Instant::now();
    loop {
        let ready = client
            .get(format!("{url}/health/ready"))
            .send()
            .is_ok_and(|r| r.status() == 200);
        if ready {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{url} was not ready within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn register_and_verify(client: &Client, url: &str, outbox_dir: &Path, email: &str) -> String {
    let response = client
        .post(format!("{url}{BASE}/user"))
        .json(
            &json!({"email": email, "fullName": "Fault Tester", "alias": email.split('@').next()}),
        )
        .send()
        .expect("send");
    assert_eq!(response.status(), 202, "register {email}");
    let body: Value = response.json().unwrap();
    let outbox = Mutex::new(Outbox::default());
    let code = wait_for_code(&outbox, outbox_dir, email, 1).expect("a registration code");
    let verified = client
        .put(format!("{url}{BASE}/session/verification"))
        .json(&json!({"verificationCodeID": body["verificationCodeID"], "code": code}))
        .send()
        .expect("send");
    assert_eq!(verified.status(), 202, "verify {email}");
    body["bearer"].as_str().unwrap().to_owned()
}

#[test]
fn database_outage_answers_503_and_recovers() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let database_url = cluster.create_database("twauth_outage");
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    migrate(dir.path(), &database_url);
    let replica = Replica::start(
        dir.path(),
        "twauth",
        &[
            ("TWAUTH_DATABASE__URL", database_url.clone()),
            ("TWAUTH_MAIL__TRANSPORT__DIR", outbox.display().to_string()),
        ],
    );
    let url = replica.url.clone();
    let client = client();
    wait_until_ready(&url, Duration::from_secs(10));
    let bearer = register_and_verify(&client, &url, &outbox, "outage@example.com");

    cluster.crash();

    let started = Instant::now();
    let ready = client.get(format!("{url}/health/ready")).send().unwrap();
    let took = started.elapsed();
    let message = assert_error(ready, 503);
    assert!(message.starts_with("not ready"), "{message}");
    assert!(
        took < Duration::from_secs(CONNECT_TIMEOUT + 2),
        "readiness took {took:?} with the database down"
    );

    let alive = client.get(format!("{url}/health/alive")).send().unwrap();
    assert_eq!(alive.status(), 200, "alive while the database is down");

    let login = client
        .post(format!("{url}{BASE}/session"))
        .json(&json!({"email": "outage@example.com"}))
        .send()
        .unwrap();
    assert_error(login, 503);
    let register = client
        .post(format!("{url}{BASE}/user"))
        .json(&json!({"email": "later@example.com", "fullName": "Later", "alias": "later"}))
        .send()
        .unwrap();
    assert_error(register, 503);

    cluster.resume();
    let recovered = wait_until_ready(&url, Duration::from_secs(30));
    eprintln!("ready again {recovered:?} after PostgreSQL restarted");

    let checked = client
        .get(format!("{url}{BASE}/session"))
        .bearer_auth(&bearer)
        .send()
        .unwrap();
    assert_eq!(checked.status(), 200, "the old session checks again");
    let second = register_and_verify(&client, &url, &outbox, "after@example.com");
    assert!(!second.is_empty());
    assert!(
        !replica.log().contains("\"http.status\":500") && !replica.log().contains("status=500"),
        "no request got a 500"
    );
}

/// Counts of the load test, by what happened to each request.
#[derive(Default)]
struct LoadCounts {
    /// Responses by status code.
    statuses: Mutex<BTreeMap<u16, u64>>,
    /// Connections refused by a stopped replica and sent to the next one.
    redirected: AtomicU64,
    /// Requests cut off by a killed replica after they were sent; their
    /// outcome is unknown, so the flow that sent them stops.
    interrupted: AtomicU64,
    /// Flows that reached a verified and checked session.
    flows: AtomicU64,
}

/// The replicas' URLs, replaced when one restarts on a new port.
struct Replicas {
    urls: RwLock<Vec<String>>,
}

impl Replicas {
    /// Sends a request to replica `start` or, when its connection is
    /// refused, to the next one. Returns `None` when a replica took the
    /// request and then died.
    fn send(
        &self,
        client: &Client,
        counts: &LoadCounts,
        start: usize,
        build: impl Fn(&Client, &str) -> RequestBuilder,
    ) -> Option<Response> {
        for attempt in 0..12 {
            let url = {
                let urls = self.urls.read().unwrap();
                urls[(start + attempt) % urls.len()].clone()
            };
            match build(client, &url).send() {
                Ok(response) => {
                    *counts
                        .statuses
                        .lock()
                        .unwrap()
                        .entry(response.status().as_u16())
                        .or_default() += 1;
                    return Some(response);
                }
                Err(err) if err.is_connect() => {
                    counts.redirected.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(_) => {
                    counts.interrupted.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        panic!("no replica accepted a connection");
    }
}

/// One user's register, verify, check, login, verify and check, each step
/// on the next replica. Returns the verified bearer tokens.
fn run_flow(
    replicas: &Replicas,
    client: &Client,
    counts: &LoadCounts,
    outbox: &Mutex<Outbox>,
    outbox_dir: &Path,
    email: &str,
    mut turn: usize,
) -> Vec<String> {
    let mut bearers = Vec::new();
    let alias = email.split('@').next().unwrap().replace(['.', '-'], "");
    let mut next = || {
        turn += 1;
        turn
    };

    let Some(registered) = replicas.send(client, counts, next(), |c, url| {
        c.post(format!("{url}{BASE}/user"))
            .json(&json!({"email": email, "fullName": "Load Tester", "alias": alias}))
    }) else {
        return bearers;
    };
    assert_eq!(registered.status(), 202, "register {email}");
    let registered: Value = registered.json().unwrap();

    for step in 1..=2 {
        let started = if step == 1 {
            registered.clone()
        } else {
            let Some(login) = replicas.send(client, counts, next(), |c, url| {
                c.post(format!("{url}{BASE}/session"))
                    .json(&json!({"email": email}))
            }) else {
                return bearers;
            };
            assert_eq!(login.status(), 202, "log in {email}");
            login.json().unwrap()
        };
        let code = wait_for_code(outbox, outbox_dir, email, step)
            .unwrap_or_else(|| panic!("code {step} to {email} never arrived"));
        let Some(verified) = replicas.send(client, counts, next(), |c, url| {
            c.put(format!("{url}{BASE}/session/verification"))
                .json(&json!({"verificationCodeID": started["verificationCodeID"], "code": code}))
        }) else {
            return bearers;
        };
        assert_eq!(verified.status(), 202, "verify code {step} of {email}");
        let bearer = started["bearer"].as_str().unwrap().to_owned();
        bearers.push(bearer.clone());

        let Some(checked) = replicas.send(client, counts, next(), |c, url| {
            c.get(format!("{url}{BASE}/session")).bearer_auth(&bearer)
        }) else {
            return bearers;
        };
        assert_eq!(checked.status(), 200, "check session {step} of {email}");
    }
    counts.flows.fetch_add(1, Ordering::Relaxed);
    bearers
}

#[derive(diesel::QueryableByName)]
struct RecipientCount {
    #[diesel(sql_type = diesel::sql_types::Text)]
    recipient: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[test]
fn replicas_survive_kill_and_restart_under_load() {
    const THREADS: usize = 6;
    const LOAD_FOR: Duration = Duration::from_secs(12);

    let Some(cluster) = Cluster::start() else {
        return;
    };
    let database_url = cluster.create_database("twauth_replicas");
    let dir = tempfile::tempdir().unwrap();
    let outbox_dir = dir.path().join("outbox");
    migrate(dir.path(), &database_url);
    let env = [
        ("TWAUTH_DATABASE__URL", database_url.clone()),
        (
            "TWAUTH_MAIL__TRANSPORT__DIR",
            outbox_dir.display().to_string(),
        ),
    ];
    let mut processes: Vec<Replica> = (0..3)
        .map(|i| Replica::start(dir.path(), &format!("replica{i}"), &env))
        .collect();
    for replica in &processes {
        wait_until_ready(&replica.url, Duration::from_secs(10));
    }
    let replicas = Arc::new(Replicas {
        urls: RwLock::new(processes.iter().map(|r| r.url.clone()).collect()),
    });
    let counts = Arc::new(LoadCounts::default());
    let outbox = Arc::new(Mutex::new(Outbox::default()));
    let stop = Arc::new(AtomicBool::new(false));

    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (replicas, counts, outbox, stop, outbox_dir) = (
                replicas.clone(),
                counts.clone(),
                outbox.clone(),
                stop.clone(),
                outbox_dir.clone(),
            );
            std::thread::spawn(move || {
                let client = client();
                let mut bearers = Vec::new();
                let mut flow = 0;
                while !stop.load(Ordering::Relaxed) {
                    let email = format!("load{thread}-{flow}@example.com");
                    bearers.extend(run_flow(
                        &replicas,
                        &client,
                        &counts,
                        &outbox,
                        &outbox_dir,
                        &email,
                        thread + flow,
                    ));
                    flow += 1;
                }
                bearers
            })
        })
        .collect();

    std::thread::sleep(LOAD_FOR / 4);
    processes[0].child.kill().expect("SIGKILL replica 0");
    processes[0].child.wait().unwrap();
    eprintln!("killed replica 0");

    std::thread::sleep(LOAD_FOR / 4);
    let status = processes[1].terminate(Duration::from_secs(10));
    assert!(
        status.success(),
        "replica 1 exited with {status} after SIGTERM"
    );
    processes[1] = Replica::start(dir.path(), "replica1", &env);
    replicas.urls.write().unwrap()[1] = processes[1].url.clone();
    eprintln!("restarted replica 1");

    std::thread::sleep(LOAD_FOR / 2);
    stop.store(true, Ordering::Relaxed);
    let bearers: Vec<String> = workers
        .into_iter()
        .flat_map(|worker| worker.join().expect("a load thread panicked"))
        .collect();

    processes[0] = Replica::start(dir.path(), "replica0", &env);
    replicas.urls.write().unwrap()[0] = processes[0].url.clone();
    let client = client();
    for replica in &processes {
        wait_until_ready(&replica.url, Duration::from_secs(10));
    }

    let statuses = counts.statuses.lock().unwrap().clone();
    let total: u64 = statuses.values().sum();
    eprintln!(
        "load: {total} responses by status {statuses:?}; {} refused connections sent to \
         another replica; {} requests cut off by the kill; {} complete flows; {} verified \
         sessions",
        counts.redirected.load(Ordering::Relaxed),
        counts.interrupted.load(Ordering::Relaxed),
        counts.flows.load(Ordering::Relaxed),
        bearers.len(),
    );
    assert!(
        statuses.keys().all(|status| *status < 500),
        "no request got a 5xx: {statuses:?}"
    );
    assert!(
        counts.flows.load(Ordering::Relaxed) > 0,
        "some flows completed"
    );

    // Every verified session checks on every replica.
    for bearer in &bearers {
        for replica in &processes {
            let checked = client
                .get(format!("{}{BASE}/session", replica.url))
                .bearer_auth(bearer)
                .send()
                .unwrap();
            assert_eq!(checked.status(), 200, "session check on {}", replica.url);
        }
    }

    // Every queued message is sent, once. A message claimed by the killed
    // replica waits for its lease (60 s) to run out before another sends it.
    let mut conn = PgConnection::establish(&database_url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let rows: Vec<RecipientCount> = loop {
        let pending: Vec<RecipientCount> = diesel::sql_query(
            "SELECT recipient, COUNT(*) AS n FROM outbox \
             WHERE sent_at IS NULL GROUP BY recipient",
        )
        .load(&mut conn)
        .unwrap();
        if pending.is_empty() {
            break diesel::sql_query(
                "SELECT recipient, COUNT(*) AS n FROM outbox GROUP BY recipient",
            )
            .load(&mut conn)
            .unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "{} recipients still have unsent mail",
            pending.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut files = Outbox::default();
    files.scan(&outbox_dir);
    let queued: i64 = rows.iter().map(|row| row.n).sum();
    eprintln!(
        "outbox: {queued} messages queued, {} files",
        files.seen.len()
    );
    for row in &rows {
        assert_eq!(
            files.count(&row.recipient),
            usize::try_from(row.n).unwrap(),
            "files mailed to {}",
            row.recipient
        );
    }
    assert_eq!(files.seen.len(), usize::try_from(queued).unwrap());
    for replica in &processes {
        assert!(!replica.log().contains("status=500"), "no 500 in the log");
    }
}

#[test]
fn sigterm_finishes_in_flight_request_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("twauth.db").display());
    let mut replica = Replica::start(
        dir.path(),
        "twauth",
        &[
            ("TWAUTH_DATABASE__URL", database_url),
            (
                "TWAUTH_MAIL__TRANSPORT__DIR",
                dir.path().join("outbox").display().to_string(),
            ),
            // A slow code hash keeps the registration in flight for a while.
            ("TWAUTH_AUTH__CODE_HASH_COST", "10".to_owned()),
        ],
    );
    let url = replica.url.clone();
    wait_until_ready(&url, Duration::from_secs(10));

    let in_flight = {
        let url = url.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let response = client()
                .post(format!("{url}{BASE}/user"))
                .json(&json!({"email": "slow@example.com", "fullName": "Slow", "alias": "slow"}))
                .send()
                .expect("the in-flight request completes");
            (response.status().as_u16(), started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(150));
    // The shutdown timeout (5 s), and a second for the process to exit.
    let status = replica.terminate(Duration::from_secs(6));
    let (answer, took) = in_flight.join().unwrap();

    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert_eq!(answer, 202, "the in-flight registration completed");
    assert!(
        took > Duration::from_millis(150),
        "the request was still running at SIGTERM (took {took:?})"
    );
    let refused = client().get(format!("{url}/health/alive")).send();
    assert!(refused.is_err(), "no new connection after exit");
    let log = replica.log();
    assert!(log.contains("mail delivery worker stopped"), "{log}");
    assert!(log.contains("twauth stopped"), "{log}");
}
