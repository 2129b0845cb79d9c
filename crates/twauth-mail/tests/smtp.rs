//! `SmtpTransport` against a real SMTP server: aiosmtpd from PyPI, started on
//! a free loopback port for each test and storing what it receives in a
//! Maildir.
//!
//! Install the server with `python3 -m pip install aiosmtpd`. Without it the
//! tests print a notice and return early, unless the `CI` environment
//! variable is set, in which case they fail.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use time::OffsetDateTime;
use twauth_domain::delivery::{DeliveryPolicy, DeliveryResult, deliver_due};
use twauth_domain::mail::{Mail, MailBody, MailError, NoticeEvent};
use twauth_domain::memory::{ManualClock, MemoryStore};
use twauth_domain::model::CodePurpose;
use twauth_domain::ports::{Clock, MailTransport, OutboxStore};
use twauth_domain::values::{EmailAddress, OneTimeCode};
use twauth_mail::{MailSettings, SmtpSettings, SmtpTransport, TlsMode};

/// A handler that stores accepted mail in a Maildir and rejects RCPT with a
/// 550 or 451 reply for local parts starting with `reject` or `later`.
const HANDLER: &str = r#"
from aiosmtpd.handlers import Mailbox


class Relay(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("reject"):
            return "550 5.1.1 Mailbox unavailable"
        if address.startswith("later"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"
"#;

/// A running aiosmtpd process, killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    maildir: PathBuf,
    _temp: TempDir,
}

impl SmtpServer {
    /// Starts the server, or returns `None` after printing a notice when
    /// aiosmtpd is not installed and `CI` is not set.
    fn start() -> Option<SmtpServer> {
        if !aiosmtpd_installed() {
            assert!(
                std::env::var_os("CI").is_none(),
                "aiosmtpd is not installed but CI is set; \
                 install it with `python3 -m pip install aiosmtpd`"
            );
            // Written to the stream directly because the test harness hides
            // `eprintln!` output of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: aiosmtpd is not installed, so this SMTP test did not run; \
                 install it with `python3 -m pip install aiosmtpd`"
            );
            return None;
        }

        let temp = tempfile::tempdir().unwrap();
        std::fs::write(temp.path().join("twauth_test_relay.py"), HANDLER).unwrap();
        let maildir = temp.path().join("maildir");
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "twauth_test_relay.Relay"])
            .arg(&maildir)
            .env("PYTHONPATH", temp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("failed to start python3 -m aiosmtpd");

        let mut server = SmtpServer {
            child,
            port,
            maildir,
            _temp: temp,
        };
        server.wait_until_listening();
        Some(server)
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
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

    fn transport(&self) -> SmtpTransport {
        let settings = SmtpSettings {
            host: "127.0.0.1".into(),
            port: self.port,
            tls: TlsMode::None,
            timeout: Duration::from_secs(10),
            ..SmtpSettings::default()
        };
        SmtpTransport::new(&settings, MailSettings::default()).unwrap()
    }

    /// Every message the server stored, as text.
    fn delivered(&self) -> Vec<String> {
        let new = self.maildir.join("new");
        let Ok(entries) = std::fs::read_dir(&new) else {
            return Vec::new();
        };
        entries
            .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
            .collect()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn aiosmtpd_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn code_mail(to: &str, code: &str) -> Mail {
    Mail {
        to: EmailAddress::from_trusted(to.into()),
        body: MailBody::Code {
            purpose: CodePurpose::Login,
            code: Some(OneTimeCode::parse(code).unwrap()),
            expires_at: 1_893_499_800,
        },
    }
}

fn wait_for_delivery(server: &SmtpServer, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let delivered = server.delivered();
        if delivered.len() >= count || Instant::now() > deadline {
            return delivered;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn smtp_delivers_code_mail() {
    let Some(server) = SmtpServer::start() else {
        return;
    };
    let transport = server.transport();

    let message_id = transport
        .send(&code_mail("someone@example.com", "042917"))
        .unwrap();

    let delivered = wait_for_delivery(&server, 1);
    assert_eq!(delivered.len(), 1);
    let message = &delivered[0];
    assert!(message.contains("042917"), "{message}");
    assert!(
        message.contains("X-RcptTo: someone@example.com"),
        "{message}"
    );
    assert!(message.contains("To: someone@example.com"), "{message}");
    assert!(
        message.contains(&format!("Message-ID: {message_id}")),
        "{message}"
    );
    assert!(
        message.contains("Subject: Your twauth login code"),
        "{message}"
    );
    assert!(message.contains("multipart/alternative"), "{message}");
}

#[test]
fn smtp_delivers_several_messages() {
    let Some(server) = SmtpServer::start() else {
        return;
    };
    let transport = server.transport();

    for code in ["111111", "222222", "333333"] {
        transport
            .send(&code_mail("someone@example.com", code))
            .unwrap();
    }

    let delivered = wait_for_delivery(&server, 3);
    assert_eq!(delivered.len(), 3);
    for code in ["111111", "222222", "333333"] {
        let matching = delivered.iter().filter(|m| m.contains(code)).count();
        assert_eq!(matching, 1, "{code}");
    }
}

#[test]
fn smtp_5xx_reply_is_permanent() {
    let Some(server) = SmtpServer::start() else {
        return;
    };
    let transport = server.transport();

    let error = transport
        .send(&code_mail("reject@example.com", "042917"))
        .unwrap_err();

    let MailError::Permanent(text) = &error else {
        panic!("expected a permanent error, got {error:?}");
    };
    assert!(text.contains("550"), "{text}");
    assert!(!text.contains("reject@example.com"), "{text}");
    assert!(server.delivered().is_empty());
}

#[test]
fn smtp_4xx_reply_is_transient() {
    let Some(server) = SmtpServer::start() else {
        return;
    };
    let transport = server.transport();

    let error = transport
        .send(&code_mail("later@example.com", "042917"))
        .unwrap_err();

    let MailError::Transient(text) = &error else {
        panic!("expected a transient error, got {error:?}");
    };
    assert!(text.contains("451"), "{text}");
    assert!(server.delivered().is_empty());
}

#[test]
fn smtp_server_down_is_transient() {
    let Some(mut server) = SmtpServer::start() else {
        return;
    };
    let transport = server.transport();
    transport
        .send(&code_mail("someone@example.com", "111111"))
        .unwrap();

    server.stop();
    let error = transport
        .send(&code_mail("someone@example.com", "222222"))
        .unwrap_err();

    assert!(matches!(error, MailError::Transient(_)), "{error:?}");
}

#[test]
fn deliver_due_sends_through_smtp_and_redacts() {
    let Some(server) = SmtpServer::start() else {
        return;
    };
    let transport = server.transport();
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let notice = Mail {
        to: EmailAddress::from_trusted("someone@example.com".into()),
        body: MailBody::Notice {
            event: NoticeEvent::EmailAdded {
                address: "new@example.com".into(),
            },
            at: 1_893_499_800,
            ip: "203.0.113.7".into(),
            user_agent: "<script>alert(1)</script>".into(),
        },
    };
    store
        .enqueue(
            &[code_mail("someone@example.com", "042917"), notice],
            clock.now(),
        )
        .unwrap();

    let report = deliver_due(
        &store,
        &transport,
        clock.as_ref(),
        &DeliveryPolicy::default(),
    )
    .unwrap();

    assert_eq!(report.sent, 2, "{report:?}");
    let DeliveryResult::Sent { message_id } = &report.outcomes[0].result else {
        panic!("expected a sent message, got {report:?}");
    };
    let delivered = wait_for_delivery(&server, 2);
    let code_message = delivered
        .iter()
        .find(|m| m.contains(&format!("Message-ID: {message_id}")))
        .expect("the code mail was delivered");
    assert!(code_message.contains("042917"));
    assert!(store.outbox().iter().all(|mail| !mail.holds_code()));
    assert_eq!(store.pending_count().unwrap(), 0);
}

/// Points a transport at a port nothing listens on; needs no aiosmtpd.
#[test]
fn smtp_connection_refused_is_transient() {
    let settings = SmtpSettings {
        port: free_port(),
        tls: TlsMode::None,
        timeout: Duration::from_secs(5),
        ..SmtpSettings::default()
    };
    let transport = SmtpTransport::new(&settings, MailSettings::default()).unwrap();

    let error = transport
        .send(&code_mail("someone@example.com", "042917"))
        .unwrap_err();

    assert!(matches!(error, MailError::Transient(_)), "{error:?}");
}
