//! SMTP relays for tests, on free loopback ports: aiosmtpd from PyPI, which
//! stores what it receives in a Maildir, and a silent listener that accepts
//! connections and never replies.
//!
//! The black-box tests and `crates/twauth-server/tests/delivery.rs` share
//! this file. Install aiosmtpd with `pip install -r .ci/requirements.txt`.
//! Without it the tests that need it print a notice and return early, unless
//! the `CI` environment variable is set, in which case they fail.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Returns a loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free loopback port")
        .local_addr()
        .expect("read the bound address")
        .port()
}

/// Returns whether aiosmtpd can be imported. When it cannot, the caller
/// should skip the test: this prints a notice, or panics when `CI` is set.
pub fn aiosmtpd_available() -> bool {
    let installed = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if installed {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "aiosmtpd is not installed but CI is set; \
         install it with `pip install -r .ci/requirements.txt`"
    );
    // Written to the stream directly because the test harness hides
    // `eprintln!` output of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: aiosmtpd is not installed, so this SMTP test did not run; \
         install it with `pip install -r .ci/requirements.txt`"
    );
    false
}

/// A running aiosmtpd process, killed on drop.
pub struct Aiosmtpd {
    child: Child,
    pub port: u16,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Aiosmtpd {
    /// Starts aiosmtpd on a free port, or returns `None` when
    /// [`aiosmtpd_available`] returns false.
    pub fn start() -> Option<Aiosmtpd> {
        Aiosmtpd::start_on(free_port())
    }

    /// Starts aiosmtpd on `port` and waits until it accepts connections.
    pub fn start_on(port: u16) -> Option<Aiosmtpd> {
        if !aiosmtpd_available() {
            return None;
        }
        let dir = tempfile::tempdir().expect("create a temp dir");
        let maildir = dir.path().join("maildir");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start python3 -m aiosmtpd");
        let mut server = Aiosmtpd {
            child,
            port,
            maildir,
            _dir: dir,
        };
        server.wait_until_listening();
        Some(server)
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("poll aiosmtpd") {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                panic!("aiosmtpd exited with {status} before listening:\n{stderr}");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("aiosmtpd did not listen on port {} within 15 s", self.port);
    }

    /// Returns every message aiosmtpd has stored, as raw text. aiosmtpd
    /// writes a message to the Maildir before it accepts the DATA command,
    /// so a message the sender saw accepted is already listed.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .map(|entry| std::fs::read_to_string(entry.expect("list the Maildir").path()))
            .map(|text| text.expect("read a stored message"))
            .collect()
    }

    /// Waits until a stored message is addressed to `to` and returns it.
    /// Panics after 10 seconds.
    pub fn wait_for_message_to(&self, to: &str) -> String {
        let envelope = format!("X-RcptTo: {to}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .messages()
                .into_iter()
                .find(|message| message.lines().any(|line| line == envelope));
            if let Some(message) = found {
                return message;
            }
            assert!(
                Instant::now() < deadline,
                "no message to {to} reached aiosmtpd within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Aiosmtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP listener that accepts connections, keeps them open and never sends
/// a byte, so an SMTP client waits for the greeting until its time-out.
pub struct SilentRelay {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentRelay {
    pub fn start() -> SilentRelay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
        let port = listener
            .local_addr()
            .expect("read the bound address")
            .port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let accepted = Arc::clone(&accepted);
            let stop = Arc::clone(&stop);
            move || {
                let mut open = Vec::new();
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        open.push(stream);
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        });
        SilentRelay {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    /// Number of connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Waits until at least `count` connections were accepted. Panics after
    /// `timeout`.
    pub fn wait_for_connections(&self, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.accepted() < count {
            assert!(
                Instant::now() < deadline,
                "{} of {count} connections reached the silent relay within {timeout:?}",
                self.accepted()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SilentRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // One more connection wakes the accept loop so that it reads the flag
        // and closes every connection it kept.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
