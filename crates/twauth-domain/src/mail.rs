//! Messages the server sends, as data. Adapters render them into text and
//! HTML; the store keeps them in an outbox until they are delivered.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::CodePurpose;
use crate::values::{EmailAddress, OneTimeCode};

/// One message to one recipient.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    pub to: EmailAddress,
    pub body: MailBody,
}

/// The content of a message.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MailBody {
    /// A one-time code. `code` is `None` once the message has been sent, so
    /// a delivered message no longer contains it.
    Code {
        purpose: CodePurpose,
        code: Option<OneTimeCode>,
        /// Unix time in seconds after which the code no longer works.
        expires_at: i64,
    },
    /// A notice of a change to the account's credentials.
    Notice {
        event: NoticeEvent,
        /// Unix time in seconds of the change.
        at: i64,
        ip: String,
        user_agent: String,
    },
}

/// A change to an account that its owner hears about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum NoticeEvent {
    EmailAdded { address: String },
    EmailVerified { address: String },
    EmailDeleted { address: String },
    EmailPreferred { address: String },
    KeyPairCreated { name: String },
    KeyPairDeleted { name: String },
}

impl Mail {
    /// Returns the same message without its code, as it is kept after
    /// delivery.
    pub fn redacted(&self) -> Mail {
        let mut copy = self.clone();
        if let MailBody::Code { code, .. } = &mut copy.body {
            *code = None;
        }
        copy
    }

    /// Returns whether the message still contains a one-time code.
    pub fn holds_code(&self) -> bool {
        matches!(self.body, MailBody::Code { code: Some(_), .. })
    }

    /// Returns a short name of the message kind, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match &self.body {
            MailBody::Code { purpose, .. } => purpose.as_str(),
            MailBody::Notice { .. } => "notice",
        }
    }
}

impl fmt::Debug for Mail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

/// A message waiting in the outbox, as a delivery worker takes it.
#[derive(Clone, Debug)]
pub struct OutboxEntry {
    pub id: Uuid,
    pub mail: Mail,
    /// Delivery attempts made before this one.
    pub attempts: u32,
    /// Unix time in seconds when the message was queued.
    pub created_at: i64,
}

/// A delivery failure as a transport reports it.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth trying again later: the relay is down, slow or busy.
    #[error("mail delivery failed temporarily: {0}")]
    Transient(String),
    /// Trying again will not help: the relay rejected the message for good.
    #[error("mail delivery failed permanently: {0}")]
    Permanent(String),
}
