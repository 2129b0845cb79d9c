//! The traits through which use cases reach the outside world. Adapters
//! implement them; the server binary picks one adapter for each.
//!
//! Every store method is atomic: it commits all of its writes or none.
//! Methods that take a [`Mail`] write it to the outbox in the same
//! transaction as the rows it belongs to, so a code is never stored without
//! its message, nor a message queued for a code that does not exist.

use time::{Duration, OffsetDateTime};

use crate::mail::{Mail, MailError, OutboxEntry};
use crate::model::{
    CodeEffect, CodeId, CodePurpose, Email, EmailId, KeyPair, KeyPairId, KeyPairWithUser, NewCode,
    NewUser, ReservedCode, Session, SessionId, SessionWithUser, User, UserId,
};
use crate::secret::TokenDigest;
use crate::values::EmailAddress;

/// The kind of unique value that a write collided with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    EmailAddress,
    Alias,
}

impl Taken {
    pub fn message(self) -> &'static str {
        match self {
            Taken::EmailAddress => "the email address is already taken",
            Taken::Alias => "the alias is already taken",
        }
    }
}

/// A failure of a store call. Adapters map their own errors into these
/// variants and never pass driver errors upward.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is already stored.
    #[error("{}", .0.message())]
    Conflict(Taken),
    /// The database cannot be reached or timed out; retrying may help.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug, a broken invariant, corrupt data.
    #[error("database error: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Users and their registration.
pub trait UserStore: Send + Sync + 'static {
    /// Inserts a new user with its first (preferred, unverified) email, its
    /// first pending session and that session's code and mail.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] with [`Taken::EmailAddress`] when the address
    /// is on any account, or [`Taken::Alias`] when the alias is taken
    /// (case-insensitively).
    fn register(
        &self,
        user: &NewUser,
        email: &Email,
        session: &Session,
        code: &NewCode,
        mail: &Mail,
    ) -> StoreResult<()>;

    /// Finds a user by id.
    fn find_user(&self, id: UserId) -> StoreResult<Option<User>>;

    /// Finds the email a login for `address` mails its code to: a verified
    /// email, or the registration address of a user not yet verified.
    fn find_login_email(&self, address: &EmailAddress) -> StoreResult<Option<Email>>;

    /// Deletes users whose registration was never verified and who were
    /// created before `created_before`, with everything they own.
    fn purge_unverified_users(&self, created_before: OffsetDateTime) -> StoreResult<u64>;
}

/// Sessions, the things bearer tokens prove.
pub trait SessionStore: Send + Sync + 'static {
    /// Inserts a pending session with its code and the code's mail.
    fn start_session(&self, session: &Session, code: &NewCode, mail: &Mail) -> StoreResult<()>;

    /// Finds a session by the digest of its bearer token, with its user.
    fn find_session(&self, digest: &TokenDigest) -> StoreResult<Option<SessionWithUser>>;

    /// Records that the session was used at `at`.
    fn touch_session(&self, id: SessionId, at: OffsetDateTime) -> StoreResult<()>;

    /// Lists the user's verified sessions that are neither closed nor
    /// expired at `now`, oldest first.
    fn list_sessions(&self, user: UserId, now: OffsetDateTime) -> StoreResult<Vec<Session>>;

    /// Closes one of the user's sessions. Returns `false` when the user has
    /// no open session with that id. A store that also implements
    /// [`RevocationStore`] records [`Revoked::Session`] in the same
    /// transaction.
    fn close_session(&self, user: UserId, id: SessionId, at: OffsetDateTime) -> StoreResult<bool>;

    /// Moves the expiry of an open session. Returns `false` when it is gone.
    fn extend_session(&self, id: SessionId, expires_at: OffsetDateTime) -> StoreResult<bool>;
}

/// One-time codes.
pub trait CodeStore: Send + Sync + 'static {
    /// Takes one attempt of a live code: unused, unexpired, issued for one of
    /// `purposes` (and for `user`, when given), with fewer than
    /// `max_attempts` attempts. In the same transaction it counts one
    /// failure against the code's account, unless the account already has
    /// `account.max_failures` failures in the current window: then nothing
    /// changes and the result is [`Reservation::AccountLocked`].
    ///
    /// Both counters rise before the code is checked, so concurrent guesses
    /// can never exceed either limit; [`CodeStore::consume_code`] clears the
    /// account's count when the code was right.
    fn reserve_code_attempt(
        &self,
        id: CodeId,
        purposes: &[CodePurpose],
        user: Option<UserId>,
        now: OffsetDateTime,
        max_attempts: u32,
        account: &AccountLimit,
    ) -> StoreResult<Reservation>;

    /// Marks the code used, applies `effect` and clears the failure count of
    /// the code's account, in one transaction that succeeds only while the
    /// code is unused and unexpired. Returns `false` when another request
    /// consumed it first.
    fn consume_code(
        &self,
        id: CodeId,
        now: OffsetDateTime,
        effect: &CodeEffect,
    ) -> StoreResult<bool>;
}

/// The ceiling on wrong codes per account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountLimit {
    /// Failures allowed in one window; the next attempt is refused.
    pub max_failures: u32,
    /// Length of the window, counted from its first failure.
    pub window: Duration,
}

impl AccountLimit {
    /// Converts the limit to a rate rule: failures in a window, with no gap.
    pub fn as_rule(&self) -> RateRule {
        RateRule {
            max: self.max_failures,
            window: self.window,
            min_gap: Duration::ZERO,
        }
    }
}

/// The result of [`CodeStore::reserve_code_attempt`].
#[derive(Clone, Debug)]
pub enum Reservation {
    /// An attempt was taken; check the code against the hash.
    Reserved(ReservedCode),
    /// No live code has this id, purpose and owner.
    NoCode,
    /// The account has too many failures; try again after the delay.
    AccountLocked { retry_after: Duration },
}

/// A limit on events per key, such as codes mailed to one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateRule {
    /// Events allowed in one window.
    pub max: u32,
    /// Length of the window, counted from its first event.
    pub window: Duration,
    /// Minimum time between two events, or zero for none.
    pub min_gap: Duration,
}

/// Whether a rate-limited event may happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    Limited { retry_after: Duration },
}

/// Counters behind rate limits. They live in the store so that every
/// replica reads and writes the same counts.
pub trait RateLimitStore: Send + Sync + 'static {
    /// Counts one event for `key` if `rule` allows it, atomically.
    fn hit(&self, key: &str, now: OffsetDateTime, rule: &RateRule) -> StoreResult<RateDecision>;

    /// Deletes counters whose window started before `before`.
    fn purge_rate_counters(&self, before: OffsetDateTime) -> StoreResult<u64>;
}

/// Decides a hit on a counter with `count` events in a window that started at
/// `window_start`, the last at `last_at`. Returns the decision and the
/// counter's new state. Adapters call it while they hold the counter's row.
pub fn decide_hit(
    state: Option<(OffsetDateTime, u32, OffsetDateTime)>,
    now: OffsetDateTime,
    rule: &RateRule,
) -> (RateDecision, Option<(OffsetDateTime, u32, OffsetDateTime)>) {
    let Some((window_start, count, last_at)) = state else {
        return (RateDecision::Allowed, Some((now, 1, now)));
    };
    if now >= window_start + rule.window {
        return (RateDecision::Allowed, Some((now, 1, now)));
    }
    if count >= rule.max {
        let retry_after = window_start + rule.window - now;
        return (RateDecision::Limited { retry_after }, None);
    }
    // `now` is read before the row is locked, so a concurrent hit that took
    // the lock first may have stored a later `last_at`. Without a gap rule
    // that order must not matter.
    if rule.min_gap > Duration::ZERO && now < last_at + rule.min_gap {
        let retry_after = last_at + rule.min_gap - now;
        return (RateDecision::Limited { retry_after }, None);
    }
    (
        RateDecision::Allowed,
        Some((window_start, count + 1, now.max(last_at))),
    )
}

#[cfg(test)]
mod decide_hit_tests {
    use super::*;

    #[test]
    fn decide_hit_allows_later_stamp_without_gap() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::hours(1);
        let rule = RateRule {
            max: 10,
            window: Duration::minutes(15),
            min_gap: Duration::ZERO,
        };
        let later = now + Duration::milliseconds(3);
        let (decision, next) = decide_hit(Some((now, 1, later)), now, &rule);
        assert_eq!(decision, RateDecision::Allowed);
        assert_eq!(next, Some((now, 2, later)));
    }
}

/// The outcome of a change to one email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmailChange {
    Done(Email),
    NotFound,
    /// The email must be verified first.
    Unverified,
    /// The preferred email cannot be deleted.
    Preferred,
}

/// The addresses of each user.
pub trait EmailStore: Send + Sync + 'static {
    /// Inserts an unverified email with its code and mail.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] with [`Taken::EmailAddress`] when the address
    /// is on any account.
    fn add_email(&self, email: &Email, code: &NewCode, mail: &Mail) -> StoreResult<()>;

    /// Lists the user's emails, oldest first.
    fn list_emails(&self, user: UserId) -> StoreResult<Vec<Email>>;

    /// Makes a verified email the user's preferred one, and no other.
    fn prefer_email(&self, user: UserId, id: EmailId) -> StoreResult<EmailChange>;

    /// Deletes an email that is not the preferred one.
    fn delete_email(&self, user: UserId, id: EmailId) -> StoreResult<EmailChange>;
}

/// Key pairs, the credentials of programs.
pub trait KeyPairStore: Send + Sync + 'static {
    /// Inserts an unverified key pair with its code and mail.
    fn create_key_pair(&self, key_pair: &KeyPair, code: &NewCode, mail: &Mail) -> StoreResult<()>;

    /// Finds a key pair by its public key, with its owner.
    fn find_key_pair(&self, api_key: &str) -> StoreResult<Option<KeyPairWithUser>>;

    /// Lists the user's key pairs that are not deleted, oldest first.
    fn list_key_pairs(&self, user: UserId) -> StoreResult<Vec<KeyPair>>;

    /// Deletes one of the user's key pairs. Returns it, or `None` when the
    /// user has no such key pair. A store that also implements
    /// [`RevocationStore`] records [`Revoked::KeyPair`] in the same
    /// transaction.
    fn delete_key_pair(
        &self,
        user: UserId,
        id: KeyPairId,
        at: OffsetDateTime,
    ) -> StoreResult<Option<KeyPair>>;
}

/// The queue of messages waiting for delivery.
pub trait OutboxStore: Send + Sync + 'static {
    /// Queues messages that belong to no other write, such as notices.
    fn enqueue(&self, mails: &[Mail], now: OffsetDateTime) -> StoreResult<()>;

    /// Takes up to `limit` messages that are due at `now` and hides them from
    /// other workers for `lease`, so that replicas never take the same one.
    fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<OutboxEntry>>;

    /// Records a delivery and replaces the stored message with `redacted`,
    /// which contains no code.
    fn mark_sent(&self, id: uuid::Uuid, at: OffsetDateTime, redacted: &Mail) -> StoreResult<()>;

    /// Records a failed attempt and when to try again.
    fn mark_retry(
        &self,
        id: uuid::Uuid,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> StoreResult<()>;

    /// Gives up on a message for good and removes its code.
    fn mark_failed(
        &self,
        id: uuid::Uuid,
        at: OffsetDateTime,
        redacted: &Mail,
        error: &str,
    ) -> StoreResult<()>;

    /// Deletes sent and failed messages older than `before`.
    fn purge_finished(&self, before: OffsetDateTime) -> StoreResult<u64>;

    /// Counts messages not yet sent or failed.
    fn pending_count(&self) -> StoreResult<u64>;
}

/// What a revocation names: one credential, or every credential of a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Revoked {
    Session(SessionId),
    KeyPair(KeyPairId),
    User(UserId),
}

/// A time on the database's clock, in microseconds since the Unix epoch.
/// Replicas compare only stamps of one database, so their own clocks may
/// differ.
pub type DbStamp = i64;

/// One stored revocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// Unique and increasing per insert, but not in commit order.
    pub id: i64,
    pub revoked: Revoked,
    /// When the row was inserted.
    pub at: DbStamp,
}

/// The revocations that a batch read returned, and the database's time of
/// the read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevocationBatch {
    pub now: DbStamp,
    pub revocations: Vec<Revocation>,
}

/// The revocation feed that processes sharing one database read to drop
/// revoked credentials from their in-process caches.
pub trait RevocationStore: Send + Sync + 'static {
    /// Lists revocations inserted after `since`, oldest first, with the
    /// database's current time. `None` lists nothing and only reads the time.
    fn revocations_since(&self, since: Option<DbStamp>) -> StoreResult<RevocationBatch>;

    /// Deletes revocations inserted before `before`.
    fn purge_revocations(&self, before: DbStamp) -> StoreResult<u64>;
}

/// Every store port in one bound, as use cases need them.
pub trait Store:
    UserStore + SessionStore + CodeStore + EmailStore + KeyPairStore + OutboxStore + RateLimitStore
{
    /// Checks that the database responds.
    fn ping(&self) -> StoreResult<()>;
}

/// The current time. Tests use a clock they can move.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

/// A cryptographically secure source of random bytes.
pub trait RandomSource: Send + Sync + 'static {
    fn fill(&self, buf: &mut [u8]);

    fn uuid(&self) -> uuid::Uuid {
        let mut bytes = [0u8; 16];
        self.fill(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// Delivers one rendered message. Called only by the outbox worker, never on
/// a request path.
pub trait MailTransport: Send + Sync + 'static {
    /// Sends the message and returns its Message-ID.
    ///
    /// # Errors
    /// [`MailError::Transient`] when a retry may succeed (connection refused,
    /// time-out, 4xx reply); [`MailError::Permanent`] otherwise.
    fn send(&self, mail: &Mail) -> Result<String, MailError>;
}
