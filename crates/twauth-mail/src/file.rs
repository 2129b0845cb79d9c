//! Delivery into a folder, one `.eml` file per message, for development
//! and for servers whose mail another program picks up.

use std::path::{Path, PathBuf};

use lettre::Transport as _;
use twauth_domain::mail::{Mail, MailError};
use twauth_domain::ports::MailTransport;

use crate::message::MailSettings;
use crate::{ConfigError, log_sent};

/// Writes each message as `<uuid>.eml` into a folder.
#[derive(Clone, Debug)]
pub struct FileTransport {
    inner: lettre::FileTransport,
    dir: PathBuf,
    settings: MailSettings,
}

impl FileTransport {
    /// Creates `dir` and its parents when they are missing.
    ///
    /// # Errors
    /// [`ConfigError::Directory`] when the folder cannot be created, or
    /// [`ConfigError::Sender`] when the sender is invalid.
    pub fn new(dir: &Path, settings: MailSettings) -> Result<Self, ConfigError> {
        settings
            .sender()
            .map_err(|error| ConfigError::Sender(error.to_string()))?;
        std::fs::create_dir_all(dir).map_err(|source| ConfigError::Directory {
            path: dir.to_owned(),
            source,
        })?;

        Ok(FileTransport {
            inner: lettre::FileTransport::new(dir),
            dir: dir.to_owned(),
            settings,
        })
    }

    /// The folder the messages are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl MailTransport for FileTransport {
    /// Writes the message. A failed write is transient, because a full disk
    /// or a missing permission can be fixed while the message waits.
    fn send(&self, mail: &Mail) -> Result<String, MailError> {
        let built = crate::message::build(&self.settings, mail)?;
        let file_id = self.inner.send(&built.message).map_err(|error| {
            MailError::Transient(format!(
                "failed to write a message into {}: {error}",
                self.dir.display()
            ))
        })?;

        log_sent(mail, &built.message_id, "file");
        tracing::debug!(mail.file = %format!("{file_id}.eml"), "mail written");
        Ok(built.message_id)
    }
}

#[cfg(test)]
mod tests {
    use twauth_domain::mail::MailBody;
    use twauth_domain::model::CodePurpose;
    use twauth_domain::values::{EmailAddress, OneTimeCode};

    use super::*;

    fn code_mail() -> Mail {
        Mail {
            to: EmailAddress::from_trusted("someone@example.com".into()),
            body: MailBody::Code {
                purpose: CodePurpose::Email,
                code: Some(OneTimeCode::parse("042917").unwrap()),
                expires_at: 1_893_499_800,
            },
        }
    }

    fn eml_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn file_transport_creates_missing_folder() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("outbox/mail");

        let transport = FileTransport::new(&dir, MailSettings::default()).unwrap();

        assert!(dir.is_dir());
        assert_eq!(transport.dir(), dir);
    }

    #[test]
    fn file_transport_writes_one_eml_per_message() {
        let temp = tempfile::tempdir().unwrap();
        let transport = FileTransport::new(temp.path(), MailSettings::default()).unwrap();

        let first = transport.send(&code_mail()).unwrap();
        let second = transport.send(&code_mail()).unwrap();

        assert_ne!(first, second);
        let files = eml_files(temp.path());
        assert_eq!(files.len(), 2);
        let contents: Vec<String> = files
            .iter()
            .map(|path| std::fs::read_to_string(path).unwrap())
            .collect();
        for message_id in [&first, &second] {
            let matching = contents
                .iter()
                .filter(|c| c.contains(&format!("Message-ID: {message_id}")))
                .count();
            assert_eq!(matching, 1, "{message_id}");
        }
        assert!(contents[0].contains("042917"));
        assert!(contents[0].contains("To: someone@example.com"));
    }

    #[test]
    fn file_transport_rejects_path_that_is_a_file() {
        let temp = tempfile::NamedTempFile::new().unwrap();

        let error = FileTransport::new(temp.path(), MailSettings::default()).unwrap_err();

        assert!(matches!(error, ConfigError::Directory { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .contains(&temp.path().display().to_string())
        );
    }
}
