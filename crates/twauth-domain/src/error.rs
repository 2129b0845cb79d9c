//! Errors that use cases return to their callers.

use std::fmt;
use std::time::Duration;

use crate::ports::StoreError;

/// The request field that an [`AuthError::Invalid`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Email,
    Address,
    FullName,
    Alias,
    Code,
    VerificationCodeId,
    KeyName,
    Days,
    Id,
    EmailId,
}

impl Field {
    /// The field's name as the HTTP contract spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Email => "email",
            Field::Address => "address",
            Field::FullName => "fullName",
            Field::Alias => "alias",
            Field::Code => "code",
            Field::VerificationCodeId => "verificationCodeID",
            Field::KeyName => "name",
            Field::Days => "days",
            Field::Id => "id",
            Field::EmailId => "emailID",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a use case can fail with. Each variant maps to one HTTP status
/// at the API edge; messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A request value breaks a rule (400).
    #[error("invalid {field}: {reason}")]
    Invalid { field: Field, reason: String },

    /// A credential or code is missing, wrong, expired, used or dead (401).
    #[error("{0}")]
    Unauthorized(&'static str),

    /// The caller lacks the role for the action (403).
    #[error("{0}")]
    Forbidden(&'static str),

    /// The resource does not exist or is not the caller's (404).
    #[error("{0} not found")]
    NotFound(&'static str),

    /// The request conflicts with stored state, such as a taken address (409).
    #[error("{0}")]
    Conflict(&'static str),

    /// A limit was reached; the client may try again after the delay (429).
    #[error("{message}")]
    TooManyRequests {
        message: &'static str,
        retry_after: Duration,
    },

    /// The store cannot be reached right now (503).
    #[error("the database is unavailable, try again later")]
    Unavailable(#[source] StoreError),

    /// A fault of the server (500). The source is logged, never sent.
    #[error("internal error")]
    Internal(#[source] StoreError),
}

impl AuthError {
    pub(crate) fn invalid(field: Field, reason: impl Into<String>) -> Self {
        AuthError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl From<StoreError> for AuthError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => AuthError::Unavailable(err),
            StoreError::Conflict(field) => AuthError::Conflict(field.message()),
            StoreError::Internal(_) => AuthError::Internal(err),
        }
    }
}

/// The message for every failed code verification, whatever the cause, so
/// the answer does not tell a wrong code from an unknown or used one.
pub const WRONG_CODE: &str = "invalid, expired or already used verification code";

/// The message for every rejected credential.
pub const BAD_CREDENTIAL: &str = "missing, invalid, expired or unverified credential";
