//! Delivery through an SMTP relay, over a pool of connections.

use std::fmt;
use std::time::Duration;

use lettre::Transport as _;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
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
    /// Host name or IP address of the relay; also the name its TLS
    /// certificate must match.
    pub host: String,
    /// TCP port. The default, 25, does not change with `tls`.
    pub port: u16,
    pub tls: TlsMode,
    /// User name for SMTP AUTH. Set it together with `password`, or neither.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Time-out of each network operation; whole seconds in configuration
    /// files.
    #[serde(deserialize_with = "deserialize_seconds")]
    pub timeout: Duration,
    /// Maximum number of idle connections kept open to the relay.
    pub pool_max_size: u32,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port: 25,
            tls: TlsMode::default(),
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
            TlsMode::StartTls => Tls::Required(tls_parameters(&smtp.host)?),
            TlsMode::Tls => Tls::Wrapper(tls_parameters(&smtp.host)?),
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

fn tls_parameters(host: &str) -> Result<TlsParameters, ConfigError> {
    TlsParameters::new(host.to_owned()).map_err(|error| ConfigError::Tls(error.to_string()))
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
