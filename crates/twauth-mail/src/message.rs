//! Turning a queued [`Mail`] into a MIME message ready for a transport.

use lettre::Message;
use lettre::message::header::{ContentType, MessageId};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use serde::Deserialize;
use twauth_domain::mail::{Mail, MailError};

use crate::templates::{self, Rendered};

/// Sender and wording settings shared by every transport.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// The `From` header, as `Name <address>` or a bare address.
    pub from: String,
    /// Product name used in subjects and bodies.
    pub product_name: String,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            from: "twauth <no-reply@localhost>".into(),
            product_name: "twauth".into(),
        }
    }
}

impl MailSettings {
    /// Parses [`MailSettings::from`].
    ///
    /// # Errors
    /// [`MailError::Permanent`] naming the value when it is not a valid
    /// mailbox.
    pub fn sender(&self) -> Result<Mailbox, MailError> {
        self.from.parse().map_err(|error| {
            MailError::Permanent(format!(
                "invalid sender address {:?} in the mail settings: {error}",
                self.from
            ))
        })
    }
}

/// A MIME message with what the transports log and keep.
pub struct BuiltMessage {
    pub message: Message,
    /// The `Message-ID` header value, with its angle brackets.
    pub message_id: String,
    pub rendered: Rendered,
}

/// Builds a multipart/alternative message (plain text, then HTML) with a
/// fresh Message-ID, addressed to the stored address `mail.to` only.
///
/// # Errors
/// [`MailError::Permanent`] when the sender in `settings` or the recipient
/// is not a valid mailbox, or when the message is a code mail that no longer
/// holds its code.
pub fn build_message(settings: &MailSettings, mail: &Mail) -> Result<Message, MailError> {
    build(settings, mail).map(|built| built.message)
}

/// Builds the message as [`build_message`] does and also returns its
/// Message-ID and rendered parts.
pub(crate) fn build(settings: &MailSettings, mail: &Mail) -> Result<BuiltMessage, MailError> {
    let sender = settings.sender()?;
    let recipient: Mailbox = mail.to.as_str().parse().map_err(|error| {
        MailError::Permanent(format!(
            "invalid recipient address {}: {error}",
            mail.to.masked()
        ))
    })?;
    let rendered = templates::render(&settings.product_name, &mail.body)?;
    let message_id = format!(
        "<{}@{}>",
        uuid::Uuid::new_v4().simple(),
        sender.email.domain()
    );

    let alternative = MultiPart::alternative()
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(rendered.text.clone()),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(rendered.html.clone()),
        );
    let message = Message::builder()
        .from(sender)
        .to(recipient)
        .subject(rendered.subject.clone())
        .header(MessageId::from(message_id.clone()))
        .date_now()
        .multipart(alternative)
        .map_err(|error| MailError::Permanent(format!("failed to build the message: {error}")))?;

    Ok(BuiltMessage {
        message,
        message_id,
        rendered,
    })
}

#[cfg(test)]
mod tests {
    use twauth_domain::mail::{MailBody, NoticeEvent};
    use twauth_domain::model::CodePurpose;
    use twauth_domain::values::{EmailAddress, OneTimeCode};

    use super::*;

    fn code_mail() -> Mail {
        Mail {
            to: EmailAddress::from_trusted("someone@example.com".into()),
            body: MailBody::Code {
                purpose: CodePurpose::Registration,
                code: Some(OneTimeCode::parse("042917").unwrap()),
                expires_at: 1_893_499_800,
            },
        }
    }

    fn header<'a>(message: &'a Message, name: &str) -> &'a str {
        message
            .headers()
            .get_raw(name)
            .unwrap_or_else(|| panic!("missing header {name}"))
    }

    #[test]
    fn build_message_is_multipart_alternative() {
        let message = build_message(&MailSettings::default(), &code_mail()).unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();

        assert!(raw.contains("Content-Type: multipart/alternative"), "{raw}");
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8"),
            "{raw}"
        );
        assert!(
            raw.contains("Content-Type: text/html; charset=utf-8"),
            "{raw}"
        );
        assert!(
            raw.find("text/plain").unwrap() < raw.find("text/html").unwrap(),
            "the plain part comes first, as the least preferred alternative"
        );
        assert_eq!(raw.matches("042917").count(), 2, "{raw}");
    }

    #[test]
    fn build_message_addresses_stored_recipient_only() {
        let message = build_message(&MailSettings::default(), &code_mail()).unwrap();

        assert_eq!(header(&message, "To"), "someone@example.com");
        assert_eq!(header(&message, "From"), "twauth <no-reply@localhost>");
        assert!(message.headers().get_raw("Cc").is_none());
        assert!(message.headers().get_raw("Bcc").is_none());
        let recipients: Vec<String> = message
            .envelope()
            .to()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(recipients, vec!["someone@example.com".to_owned()]);
    }

    #[test]
    fn build_message_uses_fresh_message_id() {
        let settings = MailSettings {
            from: "Example <auth@example.org>".into(),
            product_name: "Example".into(),
        };

        let first = build(&settings, &code_mail()).unwrap();
        let second = build(&settings, &code_mail()).unwrap();

        assert_ne!(first.message_id, second.message_id);
        assert!(first.message_id.starts_with('<'));
        assert!(first.message_id.ends_with("@example.org>"));
        assert_eq!(header(&first.message, "Message-ID"), first.message_id);
        assert_eq!(
            header(&first.message, "Subject"),
            "Your Example registration code"
        );
    }

    #[test]
    fn build_message_rejects_invalid_sender() {
        let settings = MailSettings {
            from: "not an address".into(),
            product_name: "twauth".into(),
        };

        let error = build_message(&settings, &code_mail()).unwrap_err();

        assert!(matches!(error, MailError::Permanent(_)), "{error:?}");
        assert!(error.to_string().contains("not an address"), "{error}");
    }

    #[test]
    fn build_message_renders_notice() {
        let mail = Mail {
            to: EmailAddress::from_trusted("someone@example.com".into()),
            body: MailBody::Notice {
                event: NoticeEvent::EmailAdded {
                    address: "new@example.com".into(),
                },
                at: 1_893_499_800,
                ip: "203.0.113.7".into(),
                user_agent: "curl/8.5".into(),
            },
        };

        let built = build(&MailSettings::default(), &mail).unwrap();

        assert!(built.rendered.text.contains("new@example.com"));
        let raw = String::from_utf8(built.message.formatted()).unwrap();
        assert!(raw.contains("new@example.com"), "{raw}");
    }
}
