//! Delivery through an SMTP relay, over a pool of connections.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use lettre::Transport as _;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{self, PoolConfig};
use serde::{Deserialize, Deserializer};
use twauth_domain::mail::{Mail, MailError};
use twauth_domain::ports::MailTransport;

use crate::message::MailSettings;
use crate::{ConfigError, log_sent};

/// How the connection to the relay is encrypted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text, for a relay on the same host only.
    None,
    /// Plain connection upgraded with STARTTLS, which the relay must offer
    /// (usually port 587).
    #[default]
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// Where and how to reach the SMTP relay.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    /// Host name or IP address of the relay. With TLS, the relay's
    /// certificate must match it.
    pub host: String,
    /// TCP port. The default, 25, does not change with `tls`.
    pub port: u16,
    pub tls: TlsMode,
    /// PEM file of extra root certificates to trust, for a relay whose
    /// certificate a private CA signed. The Mozilla roots built into the
    /// `webpki-roots` crate are trusted in any case, but the system store is
    /// not read.
    pub ca_file: Option<PathBuf>,
    /// User name for SMTP AUTH. Set it together with `password`, or neither.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Time-out of each network operation, written in whole seconds in
    /// configuration files.
    #[serde(deserialize_with = "deserialize_seconds")]
    pub timeout: Duration,
    /// Maximum number of idle connections the pool keeps open to the relay.
    /// Busy senders may open more at the same time.
    pub pool_max_size: u32,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port: 25,
            tls: TlsMode::default(),
            ca_file: None,
            username: None,
            password: None,
            timeout: Duration::from_secs(30),
            pool_max_size: 4,
        }
    }
}

// Hand-written so that the password never reaches a log.
impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "******"))
            .field("timeout", &self.timeout)
            .field("pool_max_size", &self.pool_max_size)
            .finish()
    }
}

fn deserialize_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_secs)
}

/// Sends mail through an SMTP relay. Clones share one connection pool.
#[derive(Clone)]
pub struct SmtpTransport {
    inner: smtp::SmtpTransport,
    settings: MailSettings,
}

impl fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// Sets up the connection pool. No connection is opened until the first
    /// message is sent.
    ///
    /// # Errors
    /// [`ConfigError`] when the sender is invalid, only one of the username
    /// and password is set, or the TLS settings cannot be built.
    pub fn new(smtp: &SmtpSettings, settings: MailSettings) -> Result<Self, ConfigError> {
        settings
            .sender()
            .map_err(|error| ConfigError::Sender(error.to_string()))?;

        let tls = match smtp.tls {
            TlsMode::None => Tls::None,
            TlsMode::StartTls => Tls::Required(tls_parameters(smtp)?),
            TlsMode::Tls => Tls::Wrapper(tls_parameters(smtp)?),
        };
        let mut builder = smtp::SmtpTransport::builder_dangerous(smtp.host.as_str())
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(smtp.timeout))
            .pool_config(PoolConfig::new().max_size(smtp.pool_max_size));
        match (&smtp.username, &smtp.password) {
            (Some(username), Some(password)) => {
                builder = builder.credentials(Credentials::new(username.clone(), password.clone()));
            }
            (None, None) => {}
            _ => return Err(ConfigError::Credentials),
        }

        Ok(SmtpTransport {
            inner: builder.build(),
            settings,
        })
    }
}

const PEM_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";

fn tls_parameters(smtp: &SmtpSettings) -> Result<TlsParameters, ConfigError> {
    let mut builder = TlsParameters::builder(smtp.host.clone());
    if let Some(path) = &smtp.ca_file {
        let pem = std::fs::read(path).map_err(|error| {
            ConfigError::Tls(format!("failed to read {}: {error}", path.display()))
        })?;
        // lettre accepts a file without any certificate block as an empty
        // list, which would silently trust nothing extra.
        if !pem
            .windows(PEM_CERTIFICATE.len())
            .any(|window| window == PEM_CERTIFICATE)
        {
            return Err(ConfigError::Tls(format!(
                "{} contains no PEM certificate",
                path.display()
            )));
        }
        let certificate = Certificate::from_pem(&pem).map_err(|error| {
            ConfigError::Tls(format!(
                "invalid PEM certificate in {}: {error}",
                path.display()
            ))
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build()
        .map_err(|error| ConfigError::Tls(error.to_string()))
}

impl MailTransport for SmtpTransport {
    fn send(&self, mail: &Mail) -> Result<String, MailError> {
        let built = crate::message::build(&self.settings, mail)?;
        self.inner
            .send(&built.message)
            .map_err(|error| classify(&error, mail))?;

        log_sent(mail, &built.message_id, "smtp");
        Ok(built.message_id)
    }
}

/// Maps a lettre error to a [`MailError`]: only a 5xx reply is permanent.
/// Everything else is transient: 4xx replies, connection, network and
/// time-out errors, but also TLS failures and client errors such as a relay
/// without STARTTLS. Those usually come from settings an operator can fix,
/// and the outbox gives up after its maximum age anyway.
///
/// The relay's reply often quotes the recipient, so the message masks it.
fn classify(error: &smtp::Error, mail: &Mail) -> MailError {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    let text = text.replace(mail.to.as_str(), &mail.to.masked());

    if error.is_permanent() {
        MailError::Permanent(text)
    } else {
        MailError::Transient(text)
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use twauth_domain::mail::MailBody;
    use twauth_domain::model::CodePurpose;
    use twauth_domain::values::{EmailAddress, OneTimeCode};

    use super::*;

    fn code_mail() -> Mail {
        Mail {
            to: EmailAddress::from_trusted("someone@example.com".into()),
            body: MailBody::Code {
                purpose: CodePurpose::Login,
                code: Some(OneTimeCode::parse("042917").unwrap()),
                expires_at: 1_893_499_800,
            },
        }
    }

    fn closed_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[test]
    fn smtp_settings_default_to_loopback() {
        let settings = SmtpSettings::default();

        assert_eq!(settings.host, "127.0.0.1");
        assert_eq!(settings.port, 25);
    }

    #[test]
    fn smtp_settings_debug_hides_password() {
        let settings = SmtpSettings {
            username: Some("mailer".into()),
            password: Some("hunter2".into()),
            ..SmtpSettings::default()
        };

        let debug = format!("{settings:?}");

        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("mailer"), "{debug}");
    }

    #[test]
    fn smtp_transport_rejects_username_without_password() {
        let settings = SmtpSettings {
            username: Some("mailer".into()),
            ..SmtpSettings::default()
        };

        let error = SmtpTransport::new(&settings, MailSettings::default()).unwrap_err();

        assert!(matches!(error, ConfigError::Credentials), "{error:?}");
    }

    #[test]
    fn smtp_transport_rejects_invalid_sender() {
        let settings = MailSettings {
            from: "nobody".into(),
            ..MailSettings::default()
        };

        let error = SmtpTransport::new(&SmtpSettings::default(), settings).unwrap_err();

        assert!(matches!(error, ConfigError::Sender(_)), "{error:?}");
    }

    #[test]
    fn smtp_transport_rejects_unreadable_ca_file() {
        let temp = tempfile::tempdir().unwrap();
        let missing = temp.path().join("missing.pem");
        let garbage = temp.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();

        for ca_file in [missing, garbage] {
            let settings = SmtpSettings {
                ca_file: Some(ca_file.clone()),
                ..SmtpSettings::default()
            };

            let error = SmtpTransport::new(&settings, MailSettings::default()).unwrap_err();

            assert!(matches!(error, ConfigError::Tls(_)), "{error:?}");
            let text = error.to_string();
            assert!(text.contains(&ca_file.display().to_string()), "{text}");
        }
    }

    #[test]
    fn smtp_send_to_closed_port_is_transient() {
        for tls in [TlsMode::None, TlsMode::StartTls, TlsMode::Tls] {
            let settings = SmtpSettings {
                port: closed_port(),
                tls,
                timeout: Duration::from_secs(5),
                ..SmtpSettings::default()
            };
            let transport = SmtpTransport::new(&settings, MailSettings::default()).unwrap();

            let error = transport.send(&code_mail()).unwrap_err();

            assert!(
                matches!(error, MailError::Transient(_)),
                "{tls:?}: {error:?}"
            );
        }
    }
}
