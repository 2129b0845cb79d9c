//! The verified-credential cache: sessions and key pairs that a check found
//! usable, kept in process so that the next check of the same credential
//! skips the database.
//!
//! Entries are keyed by a SHA-256 digest (of the bearer token, or of the
//! public API key), never by a secret. An entry is fresh until the first of
//! the credential's own expiry, the fallback TTL after it was read, and,
//! when sessions have an idle timeout, the time its last-seen stamp is due
//! to be written again. Revocations remove entries at once in the process
//! that made the change, and in other processes on the same database when
//! their [`RevocationFollower`] reads the revocation feed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::sync::Cache;
use time::{Duration, OffsetDateTime};

use crate::model::{KeyPairWithUser, SessionWithUser};
use crate::ports::{DbStamp, RevocationStore, Revoked, StoreResult};
use crate::secret::TokenDigest;

/// How far back each read of the revocation feed reaches before the
/// database time of the previous read, in microseconds. A revocation whose
/// transaction commits later than this after its insert is missed, and the
/// entries it names live until their TTL ends.
const FEED_OVERLAP_MICROS: DbStamp = 5_000_000;

/// Size and lifetime of the credential cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    /// Most entries in each of the session and key pair caches.
    pub capacity: usize,
    /// Longest time an entry is trusted without reading the database again.
    pub ttl: Duration,
}

struct Fresh<T> {
    value: T,
    fresh_until: OffsetDateTime,
}

/// The generation of the cache when a store read began. A read whose result
/// arrives after a revocation is not cached, because it may predate it.
#[derive(Clone, Copy, Debug)]
pub struct FillTicket(u64);

/// Usable sessions by token digest and usable key pairs by API key digest.
pub struct CredentialCache {
    sessions: Cache<TokenDigest, Arc<Fresh<SessionWithUser>>>,
    key_pairs: Cache<TokenDigest, Arc<Fresh<KeyPairWithUser>>>,
    ttl: Duration,
    /// Raised by every revocation and every clear.
    generation: AtomicU64,
}

impl CredentialCache {
    pub fn new(settings: CacheSettings) -> Self {
        let capacity = settings.capacity.max(1);
        CredentialCache {
            sessions: Cache::new(capacity),
            key_pairs: Cache::new(capacity),
            ttl: settings.ttl,
            generation: AtomicU64::new(0),
        }
    }

    /// The fallback lifetime of an entry.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Takes a ticket before a store read whose result may be cached.
    pub fn ticket(&self) -> FillTicket {
        FillTicket(self.generation.load(Ordering::SeqCst))
    }

    /// Returns the fresh cached session of a token digest.
    pub fn session(&self, digest: &TokenDigest, now: OffsetDateTime) -> Option<SessionWithUser> {
        let entry = self.sessions.get(digest)?;
        if now < entry.fresh_until {
            return Some(entry.value.clone());
        }
        self.sessions.remove(digest);
        None
    }

    /// Caches a usable session until `fresh_until`, unless a revocation came
    /// after `ticket` was taken.
    pub fn insert_session(
        &self,
        digest: TokenDigest,
        value: SessionWithUser,
        fresh_until: OffsetDateTime,
        ticket: FillTicket,
    ) {
        let entry = Arc::new(Fresh { value, fresh_until });
        self.sessions.insert(digest, entry);
        self.drop_if_revoked_since(ticket, || {
            self.sessions.remove(&digest);
        });
    }

    /// Returns the fresh cached key pair of an API key digest.
    pub fn key_pair(&self, digest: &TokenDigest, now: OffsetDateTime) -> Option<KeyPairWithUser> {
        let entry = self.key_pairs.get(digest)?;
        if now < entry.fresh_until {
            return Some(entry.value.clone());
        }
        self.key_pairs.remove(digest);
        None
    }

    /// Caches a usable key pair until `fresh_until`, unless a revocation came
    /// after `ticket` was taken.
    pub fn insert_key_pair(
        &self,
        digest: TokenDigest,
        value: KeyPairWithUser,
        fresh_until: OffsetDateTime,
        ticket: FillTicket,
    ) {
        let entry = Arc::new(Fresh { value, fresh_until });
        self.key_pairs.insert(digest, entry);
        self.drop_if_revoked_since(ticket, || {
            self.key_pairs.remove(&digest);
        });
    }

    /// Removes every entry that a revocation names. One pass over each
    /// cache, however many revocations there are.
    pub fn revoke(&self, revoked: &[Revoked]) {
        if revoked.is_empty() {
            return;
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        let mut sessions = HashSet::new();
        let mut key_pairs = HashSet::new();
        let mut users = HashSet::new();
        for item in revoked {
            match *item {
                Revoked::Session(id) => sessions.insert(id.0),
                Revoked::KeyPair(id) => key_pairs.insert(id.0),
                Revoked::User(id) => users.insert(id.0),
            };
        }
        if !sessions.is_empty() || !users.is_empty() {
            self.sessions.retain(|_, entry| {
                let found = &entry.value;
                !sessions.contains(&found.session.id.0) && !users.contains(&found.user.id.0)
            });
        }
        if !key_pairs.is_empty() || !users.is_empty() {
            self.key_pairs.retain(|_, entry| {
                let found = &entry.value;
                !key_pairs.contains(&found.key_pair.id.0) && !users.contains(&found.user.id.0)
            });
        }
    }

    /// Removes every entry.
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.sessions.clear();
        self.key_pairs.clear();
    }

    /// Counts the entries of both caches.
    pub fn len(&self) -> usize {
        self.sessions.len() + self.key_pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs `remove` when a revocation or clear happened after `ticket`. The
    /// entry was inserted first, so a revocation that runs after this check
    /// finds it and removes it itself.
    fn drop_if_revoked_since(&self, ticket: FillTicket, remove: impl FnOnce()) {
        if self.generation.load(Ordering::SeqCst) != ticket.0 {
            remove();
        }
    }
}

/// Reads the revocation feed of a shared database and removes what it names
/// from this process's cache. The server calls [`RevocationFollower::poll`]
/// on a fixed interval from its own thread.
pub struct RevocationFollower {
    store: Arc<dyn RevocationStore>,
    cache: Arc<CredentialCache>,
    /// Database time of the last successful read.
    since: Option<DbStamp>,
    /// Ids already applied that the next read may return again, with their
    /// insert times.
    seen: HashMap<i64, DbStamp>,
}

impl RevocationFollower {
    pub fn new(store: Arc<dyn RevocationStore>, cache: Arc<CredentialCache>) -> Self {
        RevocationFollower {
            store,
            cache,
            since: None,
            seen: HashMap::new(),
        }
    }

    /// Reads revocations inserted since the previous read, less an overlap
    /// for transactions that committed late, and removes the entries they
    /// name. The first call only reads the database's clock. Returns how
    /// many new revocations were applied.
    ///
    /// # Errors
    /// The store's error. The cache is then cleared, because revocations may
    /// go unseen until a read succeeds again.
    pub fn poll(&mut self) -> StoreResult<usize> {
        let from = self.since.map(|since| since - FEED_OVERLAP_MICROS);
        let batch = match self.store.revocations_since(from) {
            Ok(batch) => batch,
            Err(err) => {
                self.cache.clear();
                return Err(err);
            }
        };

        let new: Vec<Revoked> = batch
            .revocations
            .iter()
            .filter(|revocation| !self.seen.contains_key(&revocation.id))
            .map(|revocation| revocation.revoked)
            .collect();
        self.cache.revoke(&new);

        for revocation in &batch.revocations {
            self.seen.insert(revocation.id, revocation.at);
        }
        // The next read starts at `batch.now - FEED_OVERLAP_MICROS`, rounded
        // down to a whole second on SQLite; older ids cannot come back.
        let oldest_returned = batch.now - FEED_OVERLAP_MICROS - 1_000_000;
        self.seen.retain(|_, at| *at >= oldest_returned);
        self.since = Some(batch.now);
        Ok(new.len())
    }

    /// Deletes revocations inserted more than `keep` before the last read.
    ///
    /// # Errors
    /// The store's error.
    pub fn purge(&self, keep: Duration) -> StoreResult<u64> {
        let Some(since) = self.since else {
            return Ok(0);
        };
        let keep_micros = i64::try_from(keep.whole_microseconds()).unwrap_or(i64::MAX);
        self.store
            .purge_revocations(since.saturating_sub(keep_micros))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;
    use crate::model::{KeyPair, KeyPairId, Session, SessionId, User, UserId};
    use crate::ports::{Revocation, RevocationBatch};
    use crate::values::{Alias, FullName, KeyName};

    const NOW: OffsetDateTime = datetime!(2030-01-01 12:00 UTC);

    fn user(id: u128) -> User {
        User {
            id: UserId(Uuid::from_u128(id)),
            alias: Alias::parse("jane").unwrap(),
            full_name: FullName::parse("Jane Doe").unwrap(),
            roles: vec!["user".to_owned()],
            groups: vec![],
            verified_at: Some(NOW),
            created_at: NOW,
        }
    }

    fn session(id: u128, user_id: u128) -> SessionWithUser {
        SessionWithUser {
            session: Session {
                id: SessionId(Uuid::from_u128(id)),
                user_id: UserId(Uuid::from_u128(user_id)),
                token_digest: TokenDigest::of(&id.to_le_bytes()),
                ip: "127.0.0.1".to_owned(),
                user_agent: String::new(),
                created_at: NOW,
                verified_at: Some(NOW),
                expires_at: NOW + Duration::hours(1),
                last_seen_at: NOW,
                closed_at: None,
            },
            user: user(user_id),
        }
    }

    fn key_pair(id: u128, user_id: u128) -> KeyPairWithUser {
        KeyPairWithUser {
            key_pair: KeyPair {
                id: KeyPairId(Uuid::from_u128(id)),
                user_id: UserId(Uuid::from_u128(user_id)),
                name: KeyName::parse("ci").unwrap(),
                api_key: format!("key{id}"),
                secret_digest: TokenDigest::of(b"secret"),
                created_at: NOW,
                expires_at: NOW + Duration::days(1),
                verified_at: Some(NOW),
                deleted_at: None,
            },
            user: user(user_id),
        }
    }

    fn cache() -> CredentialCache {
        CredentialCache::new(CacheSettings {
            capacity: 100,
            ttl: Duration::seconds(5),
        })
    }

    fn digest(n: u8) -> TokenDigest {
        TokenDigest([n; 32])
    }

    #[test]
    fn session_entry_expires_at_fresh_until() {
        let cache = cache();
        let ticket = cache.ticket();
        cache.insert_session(digest(1), session(1, 9), NOW + Duration::seconds(5), ticket);
        assert!(cache.session(&digest(1), NOW).is_some());
        assert!(cache.session(&digest(2), NOW).is_none());
        assert!(
            cache
                .session(&digest(1), NOW + Duration::seconds(5))
                .is_none()
        );
        assert!(cache.is_empty(), "a stale entry is removed when read");
    }

    #[test]
    fn revoke_removes_named_session_and_user() {
        let cache = cache();
        let until = NOW + Duration::seconds(5);
        cache.insert_session(digest(1), session(1, 9), until, cache.ticket());
        cache.insert_session(digest(2), session(2, 9), until, cache.ticket());
        cache.insert_session(digest(3), session(3, 8), until, cache.ticket());
        cache.insert_key_pair(digest(4), key_pair(4, 9), until, cache.ticket());
        cache.insert_key_pair(digest(5), key_pair(5, 8), until, cache.ticket());

        cache.revoke(&[Revoked::Session(SessionId(Uuid::from_u128(1)))]);
        assert!(cache.session(&digest(1), NOW).is_none());
        assert!(cache.session(&digest(2), NOW).is_some());

        cache.revoke(&[Revoked::KeyPair(KeyPairId(Uuid::from_u128(5)))]);
        assert!(cache.key_pair(&digest(5), NOW).is_none());
        assert!(cache.key_pair(&digest(4), NOW).is_some());

        cache.revoke(&[Revoked::User(UserId(Uuid::from_u128(9)))]);
        assert!(cache.session(&digest(2), NOW).is_none());
        assert!(cache.key_pair(&digest(4), NOW).is_none());
        assert!(cache.session(&digest(3), NOW).is_some());
    }

    #[test]
    fn fill_started_before_revocation_is_dropped() {
        let cache = cache();
        let ticket = cache.ticket();
        cache.revoke(&[Revoked::Session(SessionId(Uuid::from_u128(77)))]);
        cache.insert_session(digest(1), session(1, 9), NOW + Duration::seconds(5), ticket);
        assert!(cache.session(&digest(1), NOW).is_none());
    }

    /// A feed that returns the rows it is given whose time is after `since`.
    struct FakeFeed {
        now: Mutex<DbStamp>,
        rows: Mutex<Vec<Revocation>>,
        fail: Mutex<bool>,
    }

    impl RevocationStore for FakeFeed {
        fn revocations_since(&self, since: Option<DbStamp>) -> StoreResult<RevocationBatch> {
            if *self.fail.lock().unwrap() {
                return Err(crate::ports::StoreError::Unavailable("down".to_owned()));
            }
            let now = *self.now.lock().unwrap();
            let revocations = match since {
                None => Vec::new(),
                Some(since) => self
                    .rows
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|r| r.at > since)
                    .copied()
                    .collect(),
            };
            Ok(RevocationBatch { now, revocations })
        }

        fn purge_revocations(&self, before: DbStamp) -> StoreResult<u64> {
            let mut rows = self.rows.lock().unwrap();
            let count = rows.len();
            rows.retain(|r| r.at >= before);
            Ok((count - rows.len()) as u64)
        }
    }

    #[test]
    fn follower_applies_each_revocation_once() {
        let cache = Arc::new(cache());
        let feed = Arc::new(FakeFeed {
            now: Mutex::new(100_000_000),
            rows: Mutex::new(Vec::new()),
            fail: Mutex::new(false),
        });
        let mut follower = RevocationFollower::new(feed.clone(), cache.clone());
        assert_eq!(follower.poll().unwrap(), 0);

        let until = NOW + Duration::seconds(5);
        cache.insert_session(digest(1), session(1, 9), until, cache.ticket());
        feed.rows.lock().unwrap().push(Revocation {
            id: 1,
            revoked: Revoked::Session(SessionId(Uuid::from_u128(1))),
            at: 100_100_000,
        });
        *feed.now.lock().unwrap() = 100_200_000;
        assert_eq!(follower.poll().unwrap(), 1);
        assert!(cache.session(&digest(1), NOW).is_none());

        cache.insert_session(digest(1), session(1, 9), until, cache.ticket());
        *feed.now.lock().unwrap() = 100_400_000;
        assert_eq!(
            follower.poll().unwrap(),
            0,
            "the overlap returns row 1 again"
        );
        assert!(cache.session(&digest(1), NOW).is_some());

        *feed.now.lock().unwrap() = 200_000_000;
        follower.poll().unwrap();
        assert_eq!(follower.purge(Duration::seconds(60)).unwrap(), 1);
    }

    #[test]
    fn follower_clears_cache_when_feed_fails() {
        let cache = Arc::new(cache());
        let feed = Arc::new(FakeFeed {
            now: Mutex::new(0),
            rows: Mutex::new(Vec::new()),
            fail: Mutex::new(true),
        });
        let mut follower = RevocationFollower::new(feed, cache.clone());
        let until = NOW + Duration::seconds(5);
        cache.insert_session(digest(1), session(1, 9), until, cache.ticket());
        assert!(follower.poll().is_err());
        assert!(cache.is_empty());
    }
}
