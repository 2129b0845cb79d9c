//! Entities as the store keeps them, and the records use cases return.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::secret::{CodeHash, TokenDigest};
use crate::values::{Alias, EmailAddress, FullName, KeyName};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Uuid);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// Identifies a user.
    UserId
);
id_type!(
    /// Identifies one email address of a user.
    EmailId
);
id_type!(
    /// Identifies a session, the thing a bearer token proves.
    SessionId
);
id_type!(
    /// Identifies a key pair.
    KeyPairId
);
id_type!(
    /// Identifies a one-time code; clients call it `verificationCodeID`.
    CodeId
);

/// The origin of a request, as recorded on sessions and in notices.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: String,
}

/// A user account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub alias: Alias,
    pub full_name: FullName,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    /// Set when the registration code was verified; unverified accounts are
    /// removed after the registration timeout.
    pub verified_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// A user to insert at registration.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: UserId,
    pub alias: Alias,
    pub full_name: FullName,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub created_at: OffsetDateTime,
}

/// One email address of a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub id: EmailId,
    pub user_id: UserId,
    pub address: EmailAddress,
    pub verified: bool,
    pub preferred: bool,
    pub created_at: OffsetDateTime,
}

/// A session as stored. Its state at a given time is [`Session::status`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub token_digest: TokenDigest,
    pub ip: String,
    pub user_agent: String,
    pub created_at: OffsetDateTime,
    pub verified_at: Option<OffsetDateTime>,
    pub expires_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub closed_at: Option<OffsetDateTime>,
}

/// The lifecycle state of a session at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    /// Created by a login or registration; waits for its code.
    Pending,
    /// Verified and usable.
    Active,
    /// Past its expiry time, or idle for longer than the idle timeout.
    Expired,
    /// Closed by its user.
    Closed,
}

impl Session {
    pub fn status(
        &self,
        now: OffsetDateTime,
        idle_timeout: Option<time::Duration>,
    ) -> SessionStatus {
        if self.closed_at.is_some() {
            return SessionStatus::Closed;
        }
        if now >= self.expires_at {
            return SessionStatus::Expired;
        }
        if self.verified_at.is_none() {
            return SessionStatus::Pending;
        }
        if let Some(idle) = idle_timeout
            && now - self.last_seen_at >= idle
        {
            return SessionStatus::Expired;
        }
        SessionStatus::Active
    }
}

/// A session joined with its user, as a credential check returns it.
#[derive(Clone, Debug)]
pub struct SessionWithUser {
    pub session: Session,
    pub user: User,
}

/// A key pair as stored. The secret itself is never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPair {
    pub id: KeyPairId,
    pub user_id: UserId,
    pub name: KeyName,
    pub api_key: String,
    pub secret_digest: TokenDigest,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub verified_at: Option<OffsetDateTime>,
    pub deleted_at: Option<OffsetDateTime>,
}

impl KeyPair {
    /// Whether the key pair authenticates requests at `now`.
    pub fn is_usable(&self, now: OffsetDateTime) -> bool {
        self.verified_at.is_some() && self.deleted_at.is_none() && now < self.expires_at
    }
}

/// A key pair joined with its owner, as a credential check returns it.
#[derive(Clone, Debug)]
pub struct KeyPairWithUser {
    pub key_pair: KeyPair,
    pub user: User,
}

/// The purpose a one-time code was issued for. A code verifies only for its purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodePurpose {
    /// Verifies the first session of a new account, and its first email.
    Registration,
    /// Verifies a session started by a login.
    Login,
    /// Verifies an email added to an account.
    Email,
    /// Verifies a new key pair.
    KeyPair,
}

impl CodePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            CodePurpose::Registration => "registration",
            CodePurpose::Login => "login",
            CodePurpose::Email => "email",
            CodePurpose::KeyPair => "key_pair",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        Some(match stored {
            "registration" => CodePurpose::Registration,
            "login" => CodePurpose::Login,
            "email" => CodePurpose::Email,
            "key_pair" => CodePurpose::KeyPair,
            _ => return None,
        })
    }
}

/// A one-time code to insert. `subject` is the id of the session, email or
/// key pair that the code verifies.
#[derive(Clone, Debug)]
pub struct NewCode {
    pub id: CodeId,
    pub user_id: UserId,
    pub purpose: CodePurpose,
    pub subject: Uuid,
    pub hash: CodeHash,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A code whose attempt was reserved, with what the verifier needs.
#[derive(Clone, Debug)]
pub struct ReservedCode {
    pub id: CodeId,
    pub user_id: UserId,
    pub purpose: CodePurpose,
    pub subject: Uuid,
    pub hash: CodeHash,
}

/// The change that consuming a code makes, in the same transaction.
#[derive(Clone, Debug)]
pub enum CodeEffect {
    /// Activates a session until `expires_at`. For a registration code, also
    /// marks the user and its first email verified.
    VerifySession {
        session: SessionId,
        expires_at: OffsetDateTime,
        registration: bool,
    },
    /// Marks an email verified.
    VerifyEmail { email: EmailId },
    /// Marks a key pair verified.
    VerifyKeyPair { key_pair: KeyPairId },
}
