//! Mail adapters of twauth: message templates and the transports that
//! implement [`MailTransport`].
//!
//! The server reads a [`TransportSettings`] from its configuration and turns
//! it into a [`Transport`] with [`Transport::from_settings`]. A `Transport`
//! is itself a [`MailTransport`], so it can be put behind an
//! `Arc<dyn MailTransport>`. Tests pick [`TransportSettings::Memory`] and
//! read the sent messages through [`Transport::memory`], or build a
//! [`MemoryTransport`] directly.
//!
//! Every transport is synchronous and blocks on its I/O, so it must run on a
//! blocking thread. Each accepted message is logged at info level with the
//! masked recipient and its Message-ID, never with its body or code.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use twauth_domain::mail::{Mail, MailError};
use twauth_domain::ports::MailTransport;

mod file;
mod memory;
mod message;
mod smtp;
pub mod templates;

pub use file::FileTransport;
pub use memory::{MemoryTransport, SentMail};
pub use message::{MailSettings, build_message};
pub use smtp::{SmtpSettings, SmtpTransport, TlsMode};

/// Which transport delivers mail, as read from the configuration, for
/// example `transport = "smtp"` with the [`SmtpSettings`] fields beside it,
/// `transport = "file"` with `dir`, or `transport = "memory"`.
///
/// Every field has a default, so that a configuration layer that switches
/// the transport finds no field of another transport left in place by the
/// layer below: [`SmtpSettings`] rejects unknown fields.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "transport", rename_all = "snake_case")]
pub enum TransportSettings {
    Smtp(SmtpSettings),
    File {
        /// Folder of the `.eml` files, `data/outbox` by default.
        #[serde(default = "default_outbox_dir")]
        dir: PathBuf,
    },
    Memory,
}

fn default_outbox_dir() -> PathBuf {
    PathBuf::from("data/outbox")
}

/// A transport that cannot be set up from its settings.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Sender(String),
    #[error("invalid SMTP settings: set both username and password, or neither")]
    Credentials,
    #[error("failed to set up TLS for the SMTP relay: {0}")]
    Tls(String),
    #[error("failed to create the mail folder {}: {source}", path.display())]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One of the transports, chosen at start-up.
#[derive(Clone, Debug)]
pub enum Transport {
    Smtp(SmtpTransport),
    File(FileTransport),
    Memory(MemoryTransport),
}

impl Transport {
    /// Builds the transport that `settings` names.
    ///
    /// # Errors
    /// [`ConfigError`] when the sender in `mail` is invalid or the
    /// transport's own settings are (see [`SmtpTransport::new`] and
    /// [`FileTransport::new`]).
    pub fn from_settings(
        settings: &TransportSettings,
        mail: MailSettings,
    ) -> Result<Self, ConfigError> {
        Ok(match settings {
            TransportSettings::Smtp(smtp) => Transport::Smtp(SmtpTransport::new(smtp, mail)?),
            TransportSettings::File { dir } => {
                Transport::File(FileTransport::new(Path::new(dir), mail)?)
            }
            TransportSettings::Memory => {
                mail.sender()
                    .map_err(|error| ConfigError::Sender(error.to_string()))?;
                Transport::Memory(MemoryTransport::new(mail))
            }
        })
    }

    /// The in-memory transport, to read sent messages in tests.
    pub fn memory(&self) -> Option<&MemoryTransport> {
        match self {
            Transport::Memory(memory) => Some(memory),
            _ => None,
        }
    }

    /// A short name of the transport kind, for the start-up log.
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Smtp(_) => "smtp",
            Transport::File(_) => "file",
            Transport::Memory(_) => "memory",
        }
    }
}

impl MailTransport for Transport {
    fn send(&self, mail: &Mail) -> Result<String, MailError> {
        match self {
            Transport::Smtp(smtp) => smtp.send(mail),
            Transport::File(file) => file.send(mail),
            Transport::Memory(memory) => memory.send(mail),
        }
    }
}

/// Logs one accepted message without its body.
fn log_sent(mail: &Mail, message_id: &str, transport: &'static str) {
    tracing::info!(
        mail.to = %mail.to.masked(),
        mail.message_id = %message_id,
        mail.kind = mail.kind(),
        mail.transport = transport,
        "mail sent"
    );
}

#[cfg(test)]
mod tests {
    use twauth_domain::mail::MailBody;
    use twauth_domain::model::CodePurpose;
    use twauth_domain::values::{EmailAddress, OneTimeCode};

    use super::*;

    #[test]
    fn transport_from_memory_settings_exposes_sent_mail() {
        let transport =
            Transport::from_settings(&TransportSettings::Memory, MailSettings::default()).unwrap();
        let mail = Mail {
            to: EmailAddress::from_trusted("someone@example.com".into()),
            body: MailBody::Code {
                purpose: CodePurpose::KeyPair,
                code: Some(OneTimeCode::parse("042917").unwrap()),
                expires_at: 1_893_499_800,
            },
        };

        let shared: std::sync::Arc<dyn MailTransport> = std::sync::Arc::new(transport.clone());
        shared.send(&mail).unwrap();

        assert_eq!(transport.kind(), "memory");
        let sent = transport.memory().unwrap().sent();
        assert_eq!(sent[0].code(), Some("042917"));
    }

    #[test]
    fn transport_from_file_settings_creates_folder() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("mail");
        let settings = TransportSettings::File { dir: dir.clone() };

        let transport = Transport::from_settings(&settings, MailSettings::default()).unwrap();

        assert_eq!(transport.kind(), "file");
        assert!(transport.memory().is_none());
        assert!(dir.is_dir());
    }

    #[test]
    fn transport_from_settings_rejects_invalid_sender() {
        let mail = MailSettings {
            from: "@@".into(),
            ..MailSettings::default()
        };

        let error = Transport::from_settings(&TransportSettings::Memory, mail).unwrap_err();

        assert!(matches!(error, ConfigError::Sender(_)), "{error:?}");
    }

    #[test]
    fn transport_settings_read_smtp_with_defaults() {
        let json = r#"{"transport": "smtp", "host": "127.0.0.1", "port": 2525,
                       "tls": "none", "timeout": 7}"#;

        let settings: TransportSettings = serde_json::from_str(json).unwrap();

        let TransportSettings::Smtp(smtp) = settings else {
            panic!("expected SMTP settings, got {settings:?}");
        };
        assert_eq!(smtp.port, 2525);
        assert_eq!(smtp.tls, TlsMode::None);
        assert_eq!(smtp.timeout, std::time::Duration::from_secs(7));
        assert_eq!(smtp.username, None);
        assert_eq!(smtp.pool_max_size, SmtpSettings::default().pool_max_size);
    }

    #[test]
    fn transport_settings_read_file_and_memory() {
        let file: TransportSettings =
            serde_json::from_str(r#"{"transport": "file", "dir": "/var/mail/twauth"}"#).unwrap();
        let memory: TransportSettings = serde_json::from_str(r#"{"transport": "memory"}"#).unwrap();

        assert_eq!(
            file,
            TransportSettings::File {
                dir: PathBuf::from("/var/mail/twauth")
            }
        );
        assert_eq!(memory, TransportSettings::Memory);
    }

    #[test]
    fn transport_settings_file_dir_defaults_to_data_outbox() {
        let settings: TransportSettings = serde_json::from_str(r#"{"transport": "file"}"#).unwrap();

        assert_eq!(
            settings,
            TransportSettings::File {
                dir: PathBuf::from("data/outbox")
            }
        );
    }

    #[test]
    fn transport_settings_reject_unknown_values() {
        let unknown_transport = r#"{"transport": "sendmail"}"#;
        let unknown_tls = r#"{"transport": "smtp", "tls": "maybe"}"#;
        let misspelled_field = r#"{"transport": "smtp", "hots": "127.0.0.1"}"#;

        for json in [unknown_transport, unknown_tls, misspelled_field] {
            assert!(
                serde_json::from_str::<TransportSettings>(json).is_err(),
                "{json}"
            );
        }
    }

    #[test]
    fn tls_mode_reads_starttls() {
        let settings: TransportSettings =
            serde_json::from_str(r#"{"transport": "smtp", "tls": "starttls"}"#).unwrap();

        assert_eq!(settings, TransportSettings::Smtp(SmtpSettings::default()));
        assert_eq!(SmtpSettings::default().tls, TlsMode::StartTls);
    }
}
