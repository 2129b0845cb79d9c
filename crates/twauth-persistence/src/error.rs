//! Errors of this crate: [`PersistenceError`] for connecting and migrating,
//! and the mapping of driver and pool errors into the domain's
//! [`StoreError`].

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use twauth_domain::ports::{StoreError, Taken};

/// A failure to open or migrate a database.
#[derive(Debug, thiserror::Error)]
pub enum PersistenceError {
    /// The URL names no supported backend. Holds the scheme only, because
    /// the rest of a URL may contain a password.
    #[error(
        "unsupported database URL scheme {0:?}: expected postgres://, postgresql://, sqlite:// or sqlite:"
    )]
    UnsupportedUrl(String),
    /// The folder of an SQLite file could not be created.
    #[error("failed to create the folder of the SQLite database {path}: {source}")]
    CreateFolder {
        path: String,
        source: std::io::Error,
    },
    /// The pool could not be built or gave no connection in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A migration failed. The database stays at the last migration that
    /// passed, because each runs in its own transaction.
    #[error("database migration failed: {0}")]
    Migration(String),
}

/// A store failure inside this crate. It converts from driver and pool
/// errors with `?`, so query code can mix them with domain outcomes.
#[derive(Debug)]
pub(crate) struct DbError(pub StoreError);

impl DbError {
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        DbError(StoreError::Internal(message.into()))
    }
}

impl From<DbError> for StoreError {
    fn from(error: DbError) -> Self {
        error.0
    }
}

impl From<DieselError> for DbError {
    fn from(error: DieselError) -> Self {
        DbError(map_diesel(error))
    }
}

impl From<diesel::r2d2::PoolError> for DbError {
    fn from(error: diesel::r2d2::PoolError) -> Self {
        DbError(StoreError::Unavailable(error.to_string()))
    }
}

/// Maps a driver error into the domain's variants. Unique violations name
/// their index: `emails_address_unique` and `users_alias_key_unique` on
/// PostgreSQL, the columns `emails.address` and `users.alias_key` in
/// SQLite's message.
fn map_diesel(error: DieselError) -> StoreError {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            let name = info.constraint_name().unwrap_or_else(|| info.message());
            if name.contains("emails_address") || name.contains("emails.address") {
                StoreError::Conflict(Taken::EmailAddress)
            } else if name.contains("alias_key") {
                StoreError::Conflict(Taken::Alias)
            } else {
                StoreError::Internal(format!("unexpected unique violation: {}", info.message()))
            }
        }
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
            StoreError::Unavailable(info.message().to_owned())
        }
        DieselError::DatabaseError(_, info) if is_transient(info.message()) => {
            StoreError::Unavailable(info.message().to_owned())
        }
        // Driver messages name tables, columns and constraints, never bound
        // values, so they hold no secret.
        other => StoreError::Internal(other.to_string()),
    }
}

/// Returns whether a driver message reports a busy or unreachable database,
/// where a retry may succeed.
fn is_transient(message: &str) -> bool {
    const TRANSIENT: [&str; 5] = [
        "database is locked",
        "database table is locked",
        "server closed the connection",
        "terminating connection",
        "could not connect",
    ];
    TRANSIENT.iter().any(|needle| message.contains(needle))
}
