//! An in-memory transport for tests: it keeps every message it accepts, so
//! a test can read the codes the server mailed.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use twauth_domain::mail::{Mail, MailBody, MailError};
use twauth_domain::ports::MailTransport;

use crate::log_sent;
use crate::message::MailSettings;

/// One message accepted by a [`MemoryTransport`].
#[derive(Clone)]
pub struct SentMail {
    /// Recipient address, as stored.
    pub to: String,
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
    /// The `Message-ID` header value, with its angle brackets.
    pub message_id: String,
    /// The whole message as it would go over SMTP.
    pub raw: Vec<u8>,
    /// The queued message it was built from, code included.
    pub mail: Mail,
}

impl SentMail {
    /// The one-time code of a code mail.
    pub fn code(&self) -> Option<&str> {
        match &self.mail.body {
            MailBody::Code { code, .. } => code.as_ref().map(|c| c.expose()),
            MailBody::Notice { .. } => None,
        }
    }
}

// Hand-written so that a failing assertion prints no code.
impl fmt::Debug for SentMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentMail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("message_id", &self.message_id)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    sent: Vec<SentMail>,
    failures_left: u32,
}

/// Keeps sent messages in memory. Clones share the same list, so a test can
/// keep one clone and hand another to the server.
#[derive(Clone)]
pub struct MemoryTransport {
    state: Arc<Mutex<State>>,
    settings: MailSettings,
}

impl fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("sent", &self.state().sent.len())
            .finish_non_exhaustive()
    }
}

impl MemoryTransport {
    pub fn new(settings: MailSettings) -> Self {
        MemoryTransport {
            state: Arc::default(),
            settings,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Copies of every message accepted so far, oldest first.
    pub fn sent(&self) -> Vec<SentMail> {
        self.state().sent.clone()
    }

    /// Removes and returns every message accepted so far, oldest first.
    pub fn take(&self) -> Vec<SentMail> {
        std::mem::take(&mut self.state().sent)
    }

    /// The newest message accepted for `address`, compared as stored.
    pub fn last_to(&self, address: &str) -> Option<SentMail> {
        self.state()
            .sent
            .iter()
            .rev()
            .find(|sent| sent.to == address)
            .cloned()
    }

    /// Makes the next `count` sends fail with [`MailError::Transient`]
    /// without keeping the message.
    pub fn fail_next(&self, count: u32) {
        self.state().failures_left = count;
    }
}

impl MailTransport for MemoryTransport {
    fn send(&self, mail: &Mail) -> Result<String, MailError> {
        let built = crate::message::build(&self.settings, mail)?;

        let mut state = self.state();
        if state.failures_left > 0 {
            state.failures_left -= 1;
            return Err(MailError::Transient(
                "the memory transport was told to fail this send".into(),
            ));
        }
        state.sent.push(SentMail {
            to: mail.to.as_str().to_owned(),
            subject: built.rendered.subject.clone(),
            text: built.rendered.text.clone(),
            html: built.rendered.html.clone(),
            message_id: built.message_id.clone(),
            raw: built.message.formatted(),
            mail: mail.clone(),
        });
        drop(state);

        log_sent(mail, &built.message_id, "memory");
        Ok(built.message_id)
    }
}

#[cfg(test)]
mod tests {
    use twauth_domain::mail::NoticeEvent;
    use twauth_domain::model::CodePurpose;
    use twauth_domain::values::{EmailAddress, OneTimeCode};

    use super::*;

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

    fn notice_mail(to: &str) -> Mail {
        Mail {
            to: EmailAddress::from_trusted(to.into()),
            body: MailBody::Notice {
                event: NoticeEvent::KeyPairDeleted { name: "ci".into() },
                at: 1_893_499_800,
                ip: "127.0.0.1".into(),
                user_agent: "curl/8.5".into(),
            },
        }
    }

    #[test]
    fn memory_transport_keeps_sent_messages() {
        let transport = MemoryTransport::new(MailSettings::default());

        let message_id = transport
            .send(&code_mail("a@example.com", "042917"))
            .unwrap();
        transport.send(&notice_mail("b@example.com")).unwrap();

        let sent = transport.sent();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].to, "a@example.com");
        assert_eq!(sent[0].message_id, message_id);
        assert_eq!(sent[0].code(), Some("042917"));
        assert!(sent[0].text.contains("042917"));
        assert!(sent[0].subject.contains("login code"));
        assert!(String::from_utf8_lossy(&sent[0].raw).contains("042917"));
        assert_eq!(sent[1].code(), None);
    }

    #[test]
    fn memory_transport_clones_share_messages() {
        let transport = MemoryTransport::new(MailSettings::default());
        let handed_out = transport.clone();

        handed_out.send(&notice_mail("a@example.com")).unwrap();

        assert_eq!(transport.sent().len(), 1);
    }

    #[test]
    fn memory_transport_take_empties_list() {
        let transport = MemoryTransport::new(MailSettings::default());
        transport.send(&notice_mail("a@example.com")).unwrap();

        assert_eq!(transport.take().len(), 1);
        assert!(transport.sent().is_empty());
        assert!(transport.take().is_empty());
    }

    #[test]
    fn memory_transport_finds_last_message_to_address() {
        let transport = MemoryTransport::new(MailSettings::default());
        transport
            .send(&code_mail("a@example.com", "111111"))
            .unwrap();
        transport
            .send(&code_mail("b@example.com", "222222"))
            .unwrap();
        transport
            .send(&code_mail("a@example.com", "333333"))
            .unwrap();

        let last = transport.last_to("a@example.com").unwrap();

        assert_eq!(last.code(), Some("333333"));
        assert!(transport.last_to("c@example.com").is_none());
    }

    #[test]
    fn memory_transport_fails_next_sends_when_told() {
        let transport = MemoryTransport::new(MailSettings::default());
        transport.fail_next(2);

        for _ in 0..2 {
            let error = transport.send(&notice_mail("a@example.com")).unwrap_err();
            assert!(matches!(error, MailError::Transient(_)), "{error:?}");
        }
        assert!(transport.sent().is_empty());
        assert!(transport.send(&notice_mail("a@example.com")).is_ok());
        assert_eq!(transport.sent().len(), 1);
    }

    #[test]
    fn memory_transport_debug_hides_code() {
        let transport = MemoryTransport::new(MailSettings::default());
        transport
            .send(&code_mail("a@example.com", "042917"))
            .unwrap();

        let debug = format!("{:?} {:?}", transport, transport.sent());

        assert!(!debug.contains("042917"), "{debug}");
    }
}
