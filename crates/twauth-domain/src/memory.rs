//! Adapters that live in process memory: the system clock and random source
//! used in production, and a movable clock, a seeded random source and a
//! whole store for tests of this crate and of its users.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::mail::{Mail, OutboxEntry};
use crate::model::{
    CodeEffect, CodeId, CodePurpose, Email, EmailId, KeyPair, KeyPairId, KeyPairWithUser, NewCode,
    NewUser, ReservedCode, Session, SessionId, SessionWithUser, User, UserId,
};
use crate::ports::{
    AccountLimit, Clock, CodeStore, EmailChange, EmailStore, KeyPairStore, OutboxStore,
    RandomSource, RateDecision, RateLimitStore, RateRule, Reservation, SessionStore, Store,
    StoreError, StoreResult, Taken, UserStore, decide_hit,
};
use crate::secret::TokenDigest;
use crate::values::EmailAddress;

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The operating system's cryptographically secure random generator.
#[derive(Debug)]
pub struct SystemRandom(ring::rand::SystemRandom);

impl Default for SystemRandom {
    fn default() -> Self {
        SystemRandom(ring::rand::SystemRandom::new())
    }
}

impl RandomSource for SystemRandom {
    fn fill(&self, buf: &mut [u8]) {
        use ring::rand::SecureRandom;
        self.0
            .fill(buf)
            .expect("the operating system random generator failed");
    }
}

/// A clock that changes only when a test advances it. It keeps whole
/// seconds, as the stores do.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        ManualClock(AtomicI64::new(start.unix_timestamp()))
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.whole_seconds(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0.load(Ordering::SeqCst))
            .expect("clock holds a valid timestamp")
    }
}

/// A predictable random source (SplitMix64) for tests. Never use it to
/// issue real credentials.
#[derive(Debug)]
pub struct SeededRandom(AtomicU64);

impl SeededRandom {
    pub fn new(seed: u64) -> Self {
        SeededRandom(AtomicU64::new(seed))
    }
}

impl RandomSource for SeededRandom {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut z = self
                .0
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
                .wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

#[derive(Clone, Debug)]
struct StoredCode {
    code: NewCode,
    attempts: u32,
    used_at: Option<OffsetDateTime>,
}

#[derive(Clone, Debug)]
struct StoredMail {
    entry: OutboxEntry,
    due_at: OffsetDateTime,
    sent_at: Option<OffsetDateTime>,
    failed_at: Option<OffsetDateTime>,
}

#[derive(Default)]
struct State {
    users: HashMap<UserId, User>,
    emails: Vec<Email>,
    sessions: Vec<Session>,
    codes: HashMap<CodeId, StoredCode>,
    key_pairs: Vec<KeyPair>,
    outbox: Vec<StoredMail>,
    /// Counter state per key: window start, count, last event.
    counters: HashMap<String, (OffsetDateTime, u32, OffsetDateTime)>,
    /// Wrong-code counter state per account, in the same shape.
    failures: HashMap<UserId, (OffsetDateTime, u32, OffsetDateTime)>,
}

/// A whole store in one mutex, with the same contract as the database
/// adapters. For tests.
#[derive(Default)]
pub struct MemoryStore(Mutex<State>);

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns every message ever queued, in order, as currently stored.
    pub fn outbox(&self) -> Vec<Mail> {
        self.state()
            .outbox
            .iter()
            .map(|m| m.entry.mail.clone())
            .collect()
    }

    /// Number of stored sessions, users and codes, to check that a request
    /// changed nothing.
    pub fn row_counts(&self) -> (usize, usize, usize) {
        let state = self.state();
        (state.users.len(), state.sessions.len(), state.codes.len())
    }
}

fn queue(state: &mut State, mail: &Mail, now: OffsetDateTime) {
    state.outbox.push(StoredMail {
        entry: OutboxEntry {
            id: Uuid::new_v4(),
            mail: mail.clone(),
            attempts: 0,
            created_at: now.unix_timestamp(),
        },
        due_at: now,
        sent_at: None,
        failed_at: None,
    });
}

fn insert_code(state: &mut State, code: &NewCode, mail: &Mail) {
    state.codes.insert(
        code.id,
        StoredCode {
            code: code.clone(),
            attempts: 0,
            used_at: None,
        },
    );
    queue(state, mail, code.created_at);
}

fn address_taken(state: &State, address: &EmailAddress) -> bool {
    state.emails.iter().any(|e| &e.address == address)
}

impl UserStore for MemoryStore {
    fn register(
        &self,
        user: &NewUser,
        email: &Email,
        session: &Session,
        code: &NewCode,
        mail: &Mail,
    ) -> StoreResult<()> {
        let mut state = self.state();
        if address_taken(&state, &email.address) {
            return Err(StoreError::Conflict(Taken::EmailAddress));
        }
        if state
            .users
            .values()
            .any(|u| u.alias.key() == user.alias.key())
        {
            return Err(StoreError::Conflict(Taken::Alias));
        }
        state.users.insert(
            user.id,
            User {
                id: user.id,
                alias: user.alias.clone(),
                full_name: user.full_name.clone(),
                roles: user.roles.clone(),
                groups: user.groups.clone(),
                verified_at: None,
                created_at: user.created_at,
            },
        );
        state.emails.push(email.clone());
        state.sessions.push(session.clone());
        insert_code(&mut state, code, mail);
        Ok(())
    }

    fn find_user(&self, id: UserId) -> StoreResult<Option<User>> {
        Ok(self.state().users.get(&id).cloned())
    }

    fn find_login_email(&self, address: &EmailAddress) -> StoreResult<Option<Email>> {
        let state = self.state();
        let Some(email) = state.emails.iter().find(|e| &e.address == address) else {
            return Ok(None);
        };
        let user_verified = state
            .users
            .get(&email.user_id)
            .is_some_and(|u| u.verified_at.is_some());
        let usable = email.verified || (!user_verified && email.preferred);
        Ok(usable.then(|| email.clone()))
    }

    fn purge_unverified_users(&self, created_before: OffsetDateTime) -> StoreResult<u64> {
        let mut state = self.state();
        let doomed: Vec<UserId> = state
            .users
            .values()
            .filter(|u| u.verified_at.is_none() && u.created_at < created_before)
            .map(|u| u.id)
            .collect();
        for id in &doomed {
            state.users.remove(id);
            state.emails.retain(|e| e.user_id != *id);
            state.sessions.retain(|s| s.user_id != *id);
            state.codes.retain(|_, c| c.code.user_id != *id);
            state.key_pairs.retain(|k| k.user_id != *id);
        }
        Ok(doomed.len() as u64)
    }
}

impl SessionStore for MemoryStore {
    fn start_session(&self, session: &Session, code: &NewCode, mail: &Mail) -> StoreResult<()> {
        let mut state = self.state();
        state.sessions.push(session.clone());
        insert_code(&mut state, code, mail);
        Ok(())
    }

    fn find_session(&self, digest: &TokenDigest) -> StoreResult<Option<SessionWithUser>> {
        let state = self.state();
        let found = state
            .sessions
            .iter()
            .find(|s| &s.token_digest == digest)
            .and_then(|s| {
                let user = state.users.get(&s.user_id)?;
                Some(SessionWithUser {
                    session: s.clone(),
                    user: user.clone(),
                })
            });
        Ok(found)
    }

    fn touch_session(&self, id: SessionId, at: OffsetDateTime) -> StoreResult<()> {
        let mut state = self.state();
        if let Some(s) = state.sessions.iter_mut().find(|s| s.id == id) {
            s.last_seen_at = at;
        }
        Ok(())
    }

    fn list_sessions(&self, user: UserId, now: OffsetDateTime) -> StoreResult<Vec<Session>> {
        let state = self.state();
        Ok(state
            .sessions
            .iter()
            .filter(|s| {
                s.user_id == user
                    && s.verified_at.is_some()
                    && s.closed_at.is_none()
                    && s.expires_at > now
            })
            .cloned()
            .collect())
    }

    fn close_session(&self, user: UserId, id: SessionId, at: OffsetDateTime) -> StoreResult<bool> {
        let mut state = self.state();
        match state
            .sessions
            .iter_mut()
            .find(|s| s.id == id && s.user_id == user && s.closed_at.is_none())
        {
            Some(s) => {
                s.closed_at = Some(at);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn extend_session(&self, id: SessionId, expires_at: OffsetDateTime) -> StoreResult<bool> {
        let mut state = self.state();
        match state
            .sessions
            .iter_mut()
            .find(|s| s.id == id && s.closed_at.is_none())
        {
            Some(s) => {
                s.expires_at = expires_at;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

impl CodeStore for MemoryStore {
    fn reserve_code_attempt(
        &self,
        id: CodeId,
        purposes: &[CodePurpose],
        user: Option<UserId>,
        now: OffsetDateTime,
        max_attempts: u32,
        account: &AccountLimit,
    ) -> StoreResult<Reservation> {
        let mut state = self.state();
        let Some(stored) = state.codes.get(&id) else {
            return Ok(Reservation::NoCode);
        };
        let live = stored.used_at.is_none()
            && stored.code.expires_at > now
            && stored.attempts < max_attempts
            && purposes.contains(&stored.code.purpose)
            && user.is_none_or(|u| u == stored.code.user_id);
        if !live {
            return Ok(Reservation::NoCode);
        }
        let owner = stored.code.user_id;

        let rule = account.as_rule();
        let (decision, next) = decide_hit(state.failures.get(&owner).copied(), now, &rule);
        if let RateDecision::Limited { retry_after } = decision {
            return Ok(Reservation::AccountLocked { retry_after });
        }
        if let Some(next) = next {
            state.failures.insert(owner, next);
        }

        let stored = state.codes.get_mut(&id).expect("code looked up above");
        stored.attempts += 1;
        Ok(Reservation::Reserved(ReservedCode {
            id,
            user_id: stored.code.user_id,
            purpose: stored.code.purpose,
            subject: stored.code.subject,
            hash: stored.code.hash.clone(),
        }))
    }

    fn consume_code(
        &self,
        id: CodeId,
        now: OffsetDateTime,
        effect: &CodeEffect,
    ) -> StoreResult<bool> {
        let mut state = self.state();
        let Some(stored) = state.codes.get_mut(&id) else {
            return Ok(false);
        };
        if stored.used_at.is_some() || stored.code.expires_at <= now {
            return Ok(false);
        }
        let user_id = stored.code.user_id;

        // A subject closed or deleted after the code was sent leaves the code
        // unused and changes nothing.
        let subject_alive = match effect {
            CodeEffect::VerifySession { session, .. } => state
                .sessions
                .iter()
                .any(|s| s.id == *session && s.closed_at.is_none()),
            CodeEffect::VerifyEmail { email } => state.emails.iter().any(|e| e.id == *email),
            CodeEffect::VerifyKeyPair { key_pair } => state
                .key_pairs
                .iter()
                .any(|k| k.id == *key_pair && k.deleted_at.is_none()),
        };
        if !subject_alive {
            return Ok(false);
        }
        if let Some(stored) = state.codes.get_mut(&id) {
            stored.used_at = Some(now);
        }
        state.failures.remove(&user_id);

        match effect {
            CodeEffect::VerifySession {
                session,
                expires_at,
                registration,
            } => {
                if let Some(s) = state.sessions.iter_mut().find(|s| s.id == *session) {
                    s.verified_at = Some(now);
                    s.expires_at = *expires_at;
                    s.last_seen_at = now;
                }
                if *registration {
                    if let Some(u) = state.users.get_mut(&user_id) {
                        u.verified_at = Some(now);
                    }
                    for e in state
                        .emails
                        .iter_mut()
                        .filter(|e| e.user_id == user_id && e.preferred)
                    {
                        e.verified = true;
                    }
                }
            }
            CodeEffect::VerifyEmail { email } => {
                if let Some(e) = state.emails.iter_mut().find(|e| e.id == *email) {
                    e.verified = true;
                }
            }
            CodeEffect::VerifyKeyPair { key_pair } => {
                if let Some(k) = state.key_pairs.iter_mut().find(|k| k.id == *key_pair) {
                    k.verified_at = Some(now);
                }
            }
        }
        Ok(true)
    }
}

impl EmailStore for MemoryStore {
    fn add_email(&self, email: &Email, code: &NewCode, mail: &Mail) -> StoreResult<()> {
        let mut state = self.state();
        if address_taken(&state, &email.address) {
            return Err(StoreError::Conflict(Taken::EmailAddress));
        }
        state.emails.push(email.clone());
        insert_code(&mut state, code, mail);
        Ok(())
    }

    fn list_emails(&self, user: UserId) -> StoreResult<Vec<Email>> {
        Ok(self
            .state()
            .emails
            .iter()
            .filter(|e| e.user_id == user)
            .cloned()
            .collect())
    }

    fn prefer_email(&self, user: UserId, id: EmailId) -> StoreResult<EmailChange> {
        let mut state = self.state();
        let Some(target) = state
            .emails
            .iter()
            .find(|e| e.id == id && e.user_id == user)
        else {
            return Ok(EmailChange::NotFound);
        };
        if !target.verified {
            return Ok(EmailChange::Unverified);
        }
        for e in state.emails.iter_mut().filter(|e| e.user_id == user) {
            e.preferred = e.id == id;
        }
        let done = state.emails.iter().find(|e| e.id == id).cloned();
        Ok(done.map_or(EmailChange::NotFound, EmailChange::Done))
    }

    fn delete_email(&self, user: UserId, id: EmailId) -> StoreResult<EmailChange> {
        let mut state = self.state();
        let Some(pos) = state
            .emails
            .iter()
            .position(|e| e.id == id && e.user_id == user)
        else {
            return Ok(EmailChange::NotFound);
        };
        if state.emails[pos].preferred {
            return Ok(EmailChange::Preferred);
        }
        Ok(EmailChange::Done(state.emails.remove(pos)))
    }
}

impl KeyPairStore for MemoryStore {
    fn create_key_pair(&self, key_pair: &KeyPair, code: &NewCode, mail: &Mail) -> StoreResult<()> {
        let mut state = self.state();
        state.key_pairs.push(key_pair.clone());
        insert_code(&mut state, code, mail);
        Ok(())
    }

    fn find_key_pair(&self, api_key: &str) -> StoreResult<Option<KeyPairWithUser>> {
        let state = self.state();
        Ok(state
            .key_pairs
            .iter()
            .find(|k| k.api_key == api_key)
            .and_then(|k| {
                Some(KeyPairWithUser {
                    key_pair: k.clone(),
                    user: state.users.get(&k.user_id)?.clone(),
                })
            }))
    }

    fn list_key_pairs(&self, user: UserId) -> StoreResult<Vec<KeyPair>> {
        Ok(self
            .state()
            .key_pairs
            .iter()
            .filter(|k| k.user_id == user && k.deleted_at.is_none())
            .cloned()
            .collect())
    }

    fn delete_key_pair(
        &self,
        user: UserId,
        id: KeyPairId,
        at: OffsetDateTime,
    ) -> StoreResult<Option<KeyPair>> {
        let mut state = self.state();
        let found = state
            .key_pairs
            .iter_mut()
            .find(|k| k.id == id && k.user_id == user && k.deleted_at.is_none());
        Ok(found.map(|k| {
            k.deleted_at = Some(at);
            k.clone()
        }))
    }
}

impl OutboxStore for MemoryStore {
    fn enqueue(&self, mails: &[Mail], now: OffsetDateTime) -> StoreResult<()> {
        let mut state = self.state();
        for mail in mails {
            queue(&mut state, mail, now);
        }
        Ok(())
    }

    fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: u32,
        lease: Duration,
    ) -> StoreResult<Vec<OutboxEntry>> {
        let mut state = self.state();
        let mut claimed = Vec::new();
        for stored in state.outbox.iter_mut() {
            if claimed.len() >= limit as usize {
                break;
            }
            if stored.sent_at.is_none() && stored.failed_at.is_none() && stored.due_at <= now {
                stored.due_at = now + lease;
                claimed.push(stored.entry.clone());
            }
        }
        Ok(claimed)
    }

    fn mark_sent(&self, id: Uuid, at: OffsetDateTime, redacted: &Mail) -> StoreResult<()> {
        let mut state = self.state();
        if let Some(m) = state.outbox.iter_mut().find(|m| m.entry.id == id) {
            m.sent_at = Some(at);
            m.entry.mail = redacted.clone();
        }
        Ok(())
    }

    fn mark_retry(
        &self,
        id: Uuid,
        next_attempt_at: OffsetDateTime,
        _error: &str,
    ) -> StoreResult<()> {
        let mut state = self.state();
        if let Some(m) = state.outbox.iter_mut().find(|m| m.entry.id == id) {
            m.due_at = next_attempt_at;
            m.entry.attempts += 1;
        }
        Ok(())
    }

    fn mark_failed(
        &self,
        id: Uuid,
        at: OffsetDateTime,
        redacted: &Mail,
        _error: &str,
    ) -> StoreResult<()> {
        let mut state = self.state();
        if let Some(m) = state.outbox.iter_mut().find(|m| m.entry.id == id) {
            m.failed_at = Some(at);
            m.entry.mail = redacted.clone();
        }
        Ok(())
    }

    fn purge_finished(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let mut state = self.state();
        let old = state.outbox.len();
        state
            .outbox
            .retain(|m| m.sent_at.or(m.failed_at).is_none_or(|done| done >= before));
        Ok((old - state.outbox.len()) as u64)
    }

    fn pending_count(&self) -> StoreResult<u64> {
        let state = self.state();
        Ok(state
            .outbox
            .iter()
            .filter(|m| m.sent_at.is_none() && m.failed_at.is_none())
            .count() as u64)
    }
}

impl RateLimitStore for MemoryStore {
    fn hit(&self, key: &str, now: OffsetDateTime, rule: &RateRule) -> StoreResult<RateDecision> {
        let mut state = self.state();
        let (decision, next) = decide_hit(state.counters.get(key).copied(), now, rule);
        if let Some(next) = next {
            state.counters.insert(key.to_owned(), next);
        }
        Ok(decision)
    }

    fn purge_rate_counters(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let mut state = self.state();
        let old = state.counters.len();
        state.counters.retain(|_, (start, _, _)| *start >= before);
        Ok((old - state.counters.len()) as u64)
    }
}

impl Store for MemoryStore {
    fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}
