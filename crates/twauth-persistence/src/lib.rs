//! PostgreSQL and SQLite adapters for the store ports of `twauth-domain`.
//!
//! [`Database::connect`] picks the backend from the URL and builds an r2d2
//! pool; [`Database::migrate`] applies the embedded migrations from the
//! `migrations/postgres` and `migrations/sqlite` folders. [`Database`]
//! implements [`Store`], so use cases take it as they take the in-memory
//! store. Both backends run the same query code, in `queries.rs`.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use time::OffsetDateTime;
use twauth_domain::mail::{Mail, OutboxEntry};
use twauth_domain::model::{
    CodeEffect, CodeId, CodePurpose, Email, EmailId, KeyPair, KeyPairId, KeyPairWithUser, NewCode,
    NewUser, Session, SessionId, SessionWithUser, User, UserId,
};
use twauth_domain::ports::{
    AccountLimit, CodeStore, DbStamp, EmailChange, EmailStore, KeyPairStore, OutboxStore,
    RateDecision, RateLimitStore, RateRule, Reservation, RevocationBatch, RevocationStore,
    SessionStore, Store, StoreError, StoreResult, UserStore,
};
use twauth_domain::secret::TokenDigest;
use twauth_domain::values::EmailAddress;

mod error;
mod pg;
mod schema_pg;
mod schema_sqlite;
mod sqlite;
mod types;

pub use error::PersistenceError;

/// Size and timeout of the connection pool.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// Maximum number of open connections.
    pub max_size: u32,
    /// Number of idle connections the pool keeps open; `None` keeps as many
    /// as `max_size`.
    pub min_idle: Option<u32>,
    /// How long a store call waits for a free connection before it fails
    /// with [`StoreError::Unavailable`].
    pub connect_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_size: 10,
            min_idle: None,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The database engine behind a [`Database`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Clone)]
enum Pools {
    Postgres(Pool<ConnectionManager<PgConnection>>),
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
}

/// A pool of connections to one PostgreSQL or SQLite database. Clones share
/// the pool.
#[derive(Clone)]
pub struct Database {
    pools: Pools,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// The database an SQLite URL names.
enum SqliteTarget {
    Memory,
    File(String),
}

fn parse_sqlite_url(url: &str) -> Option<SqliteTarget> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    if rest == ":memory:" {
        Some(SqliteTarget::Memory)
    } else {
        Some(SqliteTarget::File(rest.to_owned()))
    }
}

/// Settings applied to every new SQLite connection. Foreign keys are off by
/// default in SQLite, and the cascades need them. The busy timeout makes
/// writers wait for the lock, and write-ahead logging (file databases only)
/// lets readers go on while one connection writes.
#[derive(Debug)]
struct SqlitePragmas {
    wal: bool,
}

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        // `secure_delete` zeroes the old bytes of a changed row, so a code
        // redacted from the outbox leaves no copy in the page.
        let mut pragmas = String::from(
            "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
        );
        if self.wal {
            pragmas.push_str(" PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
        }
        conn.batch_execute(&pragmas)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

impl Database {
    /// Builds a pool for the database at `url`: `postgres://` or
    /// `postgresql://` for PostgreSQL; `sqlite://PATH`, `sqlite:PATH` or
    /// `sqlite::memory:` for SQLite. The folders of an SQLite file are
    /// created. Connections open lazily, so an unreachable server shows up
    /// as [`StoreError::Unavailable`] on the first call, or as an error of
    /// [`Database::migrate`].
    ///
    /// # Errors
    /// [`PersistenceError::UnsupportedUrl`] for any other scheme, and
    /// [`PersistenceError::CreateFolder`] when an SQLite folder cannot be
    /// created.
    pub fn connect(url: &str, settings: &PoolSettings) -> Result<Database, PersistenceError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = pool_builder(settings).build_unchecked(ConnectionManager::new(url));
            return Ok(Database {
                pools: Pools::Postgres(pool),
            });
        }

        let Some(target) = parse_sqlite_url(url) else {
            let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
            return Err(PersistenceError::UnsupportedUrl(scheme.to_owned()));
        };
        let pool = match target {
            SqliteTarget::Memory => {
                // All connections to a named shared-cache memory database
                // read and write the same data, which lives while one
                // connection is open. NOTE: shared-cache connections report table locks
                // without waiting on the busy timeout, so the pool keeps a
                // single connection that never expires.
                let name = format!(
                    "file:twauth-{}?mode=memory&cache=shared",
                    uuid::Uuid::new_v4().simple()
                );
                Pool::builder()
                    .max_size(1)
                    .min_idle(Some(1))
                    .max_lifetime(None)
                    .idle_timeout(None)
                    .connection_timeout(settings.connect_timeout)
                    .connection_customizer(Box::new(SqlitePragmas { wal: false }))
                    .build_unchecked(ConnectionManager::new(name))
            }
            SqliteTarget::File(path) => {
                create_parent_folder(&path)?;
                pool_builder(settings)
                    .connection_customizer(Box::new(SqlitePragmas { wal: true }))
                    .build_unchecked(ConnectionManager::new(path))
            }
        };
        Ok(Database {
            pools: Pools::Sqlite(pool),
        })
    }

    /// Returns the engine this database runs on.
    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Postgres(_) => Backend::Postgres,
            Pools::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Returns the pool's open connections and how many of them are idle.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = match &self.pools {
            Pools::Postgres(pool) => pool.state(),
            Pools::Sqlite(pool) => pool.state(),
        };
        (state.connections, state.idle_connections)
    }

    /// Applies the migrations not yet applied. On PostgreSQL an advisory
    /// lock makes processes that migrate at the same time wait for each
    /// other.
    ///
    /// # Errors
    /// [`PersistenceError::Unavailable`] when no connection can be opened,
    /// [`PersistenceError::Migration`] when a migration fails.
    pub fn migrate(&self) -> Result<(), PersistenceError> {
        match &self.pools {
            Pools::Postgres(pool) => pg::migrate(&mut *migration_connection(pool)?),
            Pools::Sqlite(pool) => sqlite::migrate(&mut *migration_connection(pool)?),
        }
    }

    /// Checks whether migrations remain to be applied.
    ///
    /// # Errors
    /// As [`Database::migrate`].
    pub fn pending_migrations(&self) -> Result<bool, PersistenceError> {
        match &self.pools {
            Pools::Postgres(pool) => pg::pending_migrations(&mut *migration_connection(pool)?),
            Pools::Sqlite(pool) => sqlite::pending_migrations(&mut *migration_connection(pool)?),
        }
    }
}

fn pool_builder<C>(settings: &PoolSettings) -> diesel::r2d2::Builder<ConnectionManager<C>>
where
    C: diesel::r2d2::R2D2Connection + 'static,
{
    Pool::builder()
        .max_size(settings.max_size)
        .min_idle(settings.min_idle)
        .connection_timeout(settings.connect_timeout)
}

fn create_parent_folder(path: &str) -> Result<(), PersistenceError> {
    // A `file:` URI carries its own options; SQLite resolves it as given.
    if path.starts_with("file:") {
        return Ok(());
    }
    let Some(parent) = std::path::Path::new(path).parent() else {
        return Ok(());
    };
    if parent.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(parent).map_err(|source| PersistenceError::CreateFolder {
        path: path.to_owned(),
        source,
    })
}

fn migration_connection<C>(
    pool: &Pool<ConnectionManager<C>>,
) -> Result<PooledConnection<ConnectionManager<C>>, PersistenceError>
where
    C: diesel::r2d2::R2D2Connection + 'static,
{
    pool.get()
        .map_err(|e| PersistenceError::Unavailable(e.to_string()))
}

fn checkout<C>(
    pool: &Pool<ConnectionManager<C>>,
) -> StoreResult<PooledConnection<ConnectionManager<C>>>
where
    C: diesel::r2d2::R2D2Connection + 'static,
{
    pool.get()
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// Calls the function of the same name in the module of the database's
/// backend, with a pooled connection as its first argument.
macro_rules! run {
    ($db:expr, $function:ident($($arg:expr),* $(,)?)) => {
        match &$db.pools {
            Pools::Postgres(pool) => pg::$function(&mut *checkout(pool)?, $($arg),*),
            Pools::Sqlite(pool) => sqlite::$function(&mut *checkout(pool)?, $($arg),*),
        }
        .map_err(StoreError::from)
    };
}

impl UserStore for Database {
    fn register(
        &self,
        user: &NewUser,
        email: &Email,
        session: &Session,
        code: &NewCode,
        mail: &Mail,
    ) -> StoreResult<()> {
        run!(self, register(user, email, session, code, mail))
    }

    fn find_user(&self, id: UserId) -> StoreResult<Option<User>> {
        run!(self, find_user(id))
    }

    fn find_login_email(&self, address: &EmailAddress) -> StoreResult<Option<Email>> {
        run!(self, find_login_email(address))
    }

    fn purge_unverified_users(&self, created_before: OffsetDateTime) -> StoreResult<u64> {
        run!(self, purge_unverified_users(created_before))
    }
}

impl SessionStore for Database {
    fn start_session(&self, session: &Session, code: &NewCode, mail: &Mail) -> StoreResult<()> {
        run!(self, start_session(session, code, mail))
    }

    fn find_session(&self, digest: &TokenDigest) -> StoreResult<Option<SessionWithUser>> {
        run!(self, find_session(digest))
    }

    fn touch_session(&self, id: SessionId, at: OffsetDateTime) -> StoreResult<()> {
        run!(self, touch_session(id, at))
    }

    fn list_sessions(&self, user: UserId, now: OffsetDateTime) -> StoreResult<Vec<Session>> {
        run!(self, list_sessions(user, now))
    }

    fn close_session(&self, user: UserId, id: SessionId, at: OffsetDateTime) -> StoreResult<bool> {
        run!(self, close_session(user, id, at))
    }

    fn extend_session(&self, id: SessionId, expires_at: OffsetDateTime) -> StoreResult<bool> {
        run!(self, extend_session(id, expires_at))
    }
}

impl CodeStore for Database {
    fn reserve_code_attempt(
        &self,
        id: CodeId,
        purposes: &[CodePurpose],
        user: Option<UserId>,
        now: OffsetDateTime,
        max_attempts: u32,
        account: &AccountLimit,
    ) -> StoreResult<Reservation> {
        run!(
            self,
            reserve_code_attempt(id, purposes, user, now, max_attempts, account)
        )
    }

    fn consume_code(
        &self,
        id: CodeId,
        now: OffsetDateTime,
        effect: &CodeEffect,
    ) -> StoreResult<bool> {
        run!(self, consume_code(id, now, effect))
    }
}

impl EmailStore for Database {
    fn add_email(&self, email: &Email, code: &NewCode, mail: &Mail) -> StoreResult<()> {
        run!(self, add_email(email, code, mail))
    }

    fn list_emails(&self, user: UserId) -> StoreResult<Vec<Email>> {
        run!(self, list_emails(user))
    }

    fn prefer_email(&self, user: UserId, id: EmailId) -> StoreResult<EmailChange> {
        run!(self, prefer_email(user, id))
    }

    fn delete_email(&self, user: UserId, id: EmailId) -> StoreResult<EmailChange> {
        run!(self, delete_email(user, id))
    }
}

impl KeyPairStore for Database {
    fn create_key_pair(&self, key_pair: &KeyPair, code: &NewCode, mail: &Mail) -> StoreResult<()> {
        run!(self, create_key_pair(key_pair, code, mail))
    }

    fn find_key_pair(&self, api_key: &str) -> StoreResult<Option<KeyPairWithUser>> {
        run!(self, find_key_pair(api_key))
    }

    fn list_key_pairs(&self, user: UserId) -> StoreResult<Vec<KeyPair>> {
        run!(self, list_key_pairs(user))
    }

    fn delete_key_pair(
        &self,
        user: UserId,
        id: KeyPairId,
        at: OffsetDateTime,
    ) -> StoreResult<Option<KeyPair>> {
        run!(self, delete_key_pair(user, id, at))
    }
}

impl OutboxStore for Database {
    fn enqueue(&self, mails: &[Mail], now: OffsetDateTime) -> StoreResult<()> {
        run!(self, enqueue(mails, now))
    }

    fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: u32,
        lease: time::Duration,
    ) -> StoreResult<Vec<OutboxEntry>> {
        run!(self, claim_due(now, limit, lease))
    }

    fn mark_sent(&self, id: uuid::Uuid, at: OffsetDateTime, redacted: &Mail) -> StoreResult<()> {
        run!(self, mark_sent(id, at, redacted))
    }

    fn mark_retry(
        &self,
        id: uuid::Uuid,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> StoreResult<()> {
        run!(self, mark_retry(id, next_attempt_at, error))
    }

    fn mark_failed(
        &self,
        id: uuid::Uuid,
        at: OffsetDateTime,
        redacted: &Mail,
        error: &str,
    ) -> StoreResult<()> {
        run!(self, mark_failed(id, at, redacted, error))
    }

    fn purge_finished(&self, before: OffsetDateTime) -> StoreResult<u64> {
        run!(self, purge_finished(before))
    }

    fn pending_count(&self) -> StoreResult<u64> {
        run!(self, pending_count())
    }
}

impl RateLimitStore for Database {
    fn hit(&self, key: &str, now: OffsetDateTime, rule: &RateRule) -> StoreResult<RateDecision> {
        run!(self, hit(key, now, rule))
    }

    fn purge_rate_counters(&self, before: OffsetDateTime) -> StoreResult<u64> {
        run!(self, purge_rate_counters(before))
    }
}

impl RevocationStore for Database {
    fn revocations_since(&self, since: Option<DbStamp>) -> StoreResult<RevocationBatch> {
        run!(self, revocations_since(since))
    }

    fn purge_revocations(&self, before: DbStamp) -> StoreResult<u64> {
        run!(self, purge_revocations(before))
    }
}

impl Store for Database {
    fn ping(&self) -> StoreResult<()> {
        run!(self, ping())
    }
}
