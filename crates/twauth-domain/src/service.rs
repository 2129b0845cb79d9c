//! The use cases: every action the API offers, over the ports.
//!
//! [`Auth`] is cheap to share behind an `Arc`. Its methods block on the store
//! and on bcrypt, so async callers run them on a blocking thread pool.

use std::sync::{Arc, OnceLock};

use time::OffsetDateTime;
use uuid::Uuid;

use crate::cache::CredentialCache;
use crate::error::{AuthError, BAD_CREDENTIAL, Field, WRONG_CODE};
use crate::mail::{Mail, MailBody, NoticeEvent};
use crate::model::{
    ClientInfo, CodeEffect, CodeId, CodePurpose, Email, EmailId, KeyPair, KeyPairId,
    KeyPairWithUser, NewCode, NewUser, Session, SessionId, SessionStatus, SessionWithUser, User,
    UserId,
};
use crate::policy::Policy;
use crate::ports::{
    Clock, EmailChange, RandomSource, RateDecision, RateRule, Reservation, Revoked, Store,
};
use crate::secret::{self, CodeHash, Secret, TokenDigest};
use crate::values::{Alias, EmailAddress, FullName, KeyName, OneTimeCode};

/// A session that a login or registration started, as the client sees it.
#[derive(Debug)]
pub struct IssuedSession {
    pub session_id: SessionId,
    pub bearer: Secret,
    pub expires_at: OffsetDateTime,
    pub ip: String,
    pub user_agent: String,
    pub code_id: CodeId,
}

/// A key pair just created, with the secret that is shown only once.
#[derive(Debug)]
pub struct IssuedKeyPair {
    pub key_pair: KeyPair,
    pub secret: Secret,
    pub code_id: CodeId,
}

/// The use cases of twauth over one set of ports.
pub struct Auth {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
    policy: Policy,
    decoy_hash: OnceLock<CodeHash>,
    /// Usable credentials from earlier checks; `None` asks the store every
    /// time.
    cache: Option<Arc<CredentialCache>>,
}

impl Auth {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn RandomSource>,
        policy: Policy,
    ) -> Self {
        Auth {
            store,
            clock,
            random,
            policy,
            decoy_hash: OnceLock::new(),
            cache: None,
        }
    }

    /// Keeps usable credentials in `cache`. Revocations made through this
    /// `Auth` remove their entries at once; revocations made by other
    /// processes need a [`crate::cache::RevocationFollower`] on the same
    /// cache.
    pub fn with_cache(mut self, cache: Arc<CredentialCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    pub fn cache(&self) -> Option<&Arc<CredentialCache>> {
        self.cache.as_ref()
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Registers a user, starts its first session and mails the code.
    ///
    /// # Errors
    /// [`AuthError::Conflict`] when the address or alias is taken.
    pub fn register(
        &self,
        address: EmailAddress,
        full_name: FullName,
        alias: Alias,
        client: &ClientInfo,
    ) -> Result<IssuedSession, AuthError> {
        let now = self.clock.now();
        self.limit_client(
            "register",
            client,
            &self.policy.registrations_per_client,
            now,
        )?;
        self.limit_address(&address, now)?;
        let user = NewUser {
            id: UserId(self.random.uuid()),
            alias,
            full_name,
            roles: self.policy.default_roles.clone(),
            groups: self.policy.default_groups.clone(),
            created_at: now,
        };
        let email = Email {
            id: EmailId(self.random.uuid()),
            user_id: user.id,
            address,
            verified: false,
            preferred: true,
            created_at: now,
        };
        let (session, bearer) = self.new_session(user.id, client, now);
        let (code, mail) = self.new_code(
            user.id,
            CodePurpose::Registration,
            session.id.0,
            &email.address,
            now,
        );

        self.store.register(&user, &email, &session, &code, &mail)?;
        Ok(issued(session, bearer, code.id))
    }

    /// Starts a login for an address and mails the code to it.
    ///
    /// An address that belongs to no account gets a response of the same
    /// shape after the same hashing work, and no mail. Nothing is stored for
    /// it, so its session can never be verified.
    pub fn start_session(
        &self,
        address: EmailAddress,
        client: &ClientInfo,
    ) -> Result<IssuedSession, AuthError> {
        let now = self.clock.now();
        self.limit_client("login", client, &self.policy.logins_per_client, now)?;
        // The address is counted whether or not it has an account, so the
        // limit reveals nothing about which addresses exist.
        self.limit_address(&address, now)?;
        let Some(email) = self.store.find_login_email(&address)? else {
            let (session, bearer) = self.new_session(UserId(Uuid::nil()), client, now);
            let (code, _) = self.new_code(
                session.user_id,
                CodePurpose::Login,
                session.id.0,
                &address,
                now,
            );
            return Ok(issued(session, bearer, code.id));
        };

        // The address of an account whose registration is still open can
        // log in to claim it; that code finishes the registration.
        let purpose = if email.verified {
            CodePurpose::Login
        } else {
            CodePurpose::Registration
        };
        let (session, bearer) = self.new_session(email.user_id, client, now);
        let (code, mail) = self.new_code(email.user_id, purpose, session.id.0, &email.address, now);

        self.store.start_session(&session, &code, &mail)?;
        Ok(issued(session, bearer, code.id))
    }

    /// Verifies a pending session with its code.
    ///
    /// # Errors
    /// [`AuthError::Unauthorized`] with one message for an unknown, wrong,
    /// expired, used or dead code.
    pub fn verify_session(
        &self,
        code_id: CodeId,
        code: &OneTimeCode,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let now = self.clock.now();
        self.limit_verifications(client, now)?;
        let purposes = [CodePurpose::Registration, CodePurpose::Login];
        let reserved = self.check_code(code_id, code, &purposes, None, now)?;

        let effect = CodeEffect::VerifySession {
            session: SessionId(reserved.0),
            expires_at: now + self.policy.session_lifetime,
            registration: reserved.1 == CodePurpose::Registration,
        };
        self.consume(code_id, now, &effect)
    }

    /// Authenticates a bearer token: the session must be verified, open and
    /// unexpired.
    pub fn check_session(&self, bearer: &Secret) -> Result<SessionWithUser, AuthError> {
        let now = self.clock.now();
        let digest = bearer.digest();
        if let Some(found) = self.cached_session_at(&digest, now) {
            return Ok(found);
        }

        let ticket = self.cache.as_ref().map(|cache| cache.ticket());
        let mut found = self
            .store
            .find_session(&digest)?
            .ok_or(AuthError::Unauthorized(BAD_CREDENTIAL))?;
        if found.session.status(now, self.policy.session_idle_timeout) != SessionStatus::Active {
            return Err(AuthError::Unauthorized(BAD_CREDENTIAL));
        }

        if self.policy.session_idle_timeout.is_some()
            && now - found.session.last_seen_at >= self.policy.session_touch_interval
        {
            self.store.touch_session(found.session.id, now)?;
            found.session.last_seen_at = now;
        }
        if let (Some(cache), Some(ticket)) = (&self.cache, ticket) {
            let fresh_until = self.session_fresh_until(&found, now, cache.ttl());
            cache.insert_session(digest, found.clone(), fresh_until, ticket);
        }
        Ok(found)
    }

    /// Authenticates a bearer token from the cache alone, without blocking.
    /// `None` means the cache has no fresh entry and [`Auth::check_session`]
    /// must ask the store.
    pub fn cached_session(&self, bearer: &Secret) -> Option<SessionWithUser> {
        self.cache.as_ref()?;
        self.cached_session_at(&bearer.digest(), self.clock.now())
    }

    fn cached_session_at(
        &self,
        digest: &TokenDigest,
        now: OffsetDateTime,
    ) -> Option<SessionWithUser> {
        let found = self.cache.as_ref()?.session(digest, now)?;
        // Fresh entries are active, but the idle rule is checked again in
        // case the idle timeout is shorter than the touch interval.
        (found.session.status(now, self.policy.session_idle_timeout) == SessionStatus::Active)
            .then_some(found)
    }

    /// The time until which a usable session may be served from the cache:
    /// its expiry, the TTL, and, with an idle timeout, the time its last-seen
    /// stamp is due to be written.
    fn session_fresh_until(
        &self,
        found: &SessionWithUser,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> OffsetDateTime {
        let mut until = (now + ttl).min(found.session.expires_at);
        if self.policy.session_idle_timeout.is_some() {
            until = until.min(found.session.last_seen_at + self.policy.session_touch_interval);
        }
        until
    }

    /// Lists the caller's open, verified sessions.
    pub fn list_sessions(&self, caller: &SessionWithUser) -> Result<Vec<Session>, AuthError> {
        let now = self.clock.now();
        let mut sessions = self.store.list_sessions(caller.user.id, now)?;
        sessions
            .retain(|s| s.status(now, self.policy.session_idle_timeout) == SessionStatus::Active);
        Ok(sessions)
    }

    /// Closes one of the caller's sessions, the current one included.
    pub fn close_session(&self, caller: &SessionWithUser, id: SessionId) -> Result<(), AuthError> {
        let now = self.clock.now();
        if self.store.close_session(caller.user.id, id, now)? {
            self.revoke(Revoked::Session(id));
            Ok(())
        } else {
            Err(AuthError::NotFound("session"))
        }
    }

    /// Moves the caller's session expiry to now plus the session lifetime,
    /// capped at the maximum lifetime from verification. Returns the new
    /// expiry.
    pub fn extend_session(&self, caller: &SessionWithUser) -> Result<OffsetDateTime, AuthError> {
        let now = self.clock.now();
        let session = &caller.session;
        let verified_at = session.verified_at.unwrap_or(session.created_at);
        let cap = verified_at + self.policy.session_max_lifetime;
        let expires_at = (now + self.policy.session_lifetime)
            .min(cap)
            .max(session.expires_at);

        if !self.store.extend_session(session.id, expires_at)? {
            return Err(AuthError::Unauthorized(BAD_CREDENTIAL));
        }
        // The cached entry carries the old expiry. Other processes keep
        // theirs until it ends, which is never later than the new one.
        self.revoke(Revoked::Session(session.id));
        Ok(expires_at)
    }

    /// Adds an unverified email to the caller's account and mails its code
    /// to the new address.
    pub fn add_email(
        &self,
        caller: &SessionWithUser,
        address: EmailAddress,
        client: &ClientInfo,
    ) -> Result<(EmailId, CodeId), AuthError> {
        let now = self.clock.now();
        self.limit_client("email", client, &self.policy.emails_per_client, now)?;
        self.limit_address(&address, now)?;
        let email = Email {
            id: EmailId(self.random.uuid()),
            user_id: caller.user.id,
            address,
            verified: false,
            preferred: false,
            created_at: now,
        };
        let (code, mail) = self.new_code(
            caller.user.id,
            CodePurpose::Email,
            email.id.0,
            &email.address,
            now,
        );

        self.store.add_email(&email, &code, &mail)?;
        let event = NoticeEvent::EmailAdded {
            address: email.address.to_string(),
        };
        self.notify(caller.user.id, event, client, now)?;
        Ok((email.id, code.id))
    }

    /// Verifies an email of the caller with its code.
    pub fn verify_email(
        &self,
        caller: &SessionWithUser,
        code_id: CodeId,
        code: &OneTimeCode,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let now = self.clock.now();
        self.limit_verifications(client, now)?;
        let user = caller.user.id;
        let (subject, _) =
            self.check_code(code_id, code, &[CodePurpose::Email], Some(user), now)?;
        let email = EmailId(subject);
        self.consume(code_id, now, &CodeEffect::VerifyEmail { email })?;

        let address = self
            .store
            .list_emails(user)?
            .into_iter()
            .find(|e| e.id == email)
            .map(|e| e.address.to_string())
            .unwrap_or_default();
        self.notify(user, NoticeEvent::EmailVerified { address }, client, now)
    }

    /// Lists the caller's emails.
    pub fn list_emails(&self, caller: &SessionWithUser) -> Result<Vec<Email>, AuthError> {
        Ok(self.store.list_emails(caller.user.id)?)
    }

    /// Makes a verified email of the caller the preferred one.
    pub fn prefer_email(
        &self,
        caller: &SessionWithUser,
        id: EmailId,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let now = self.clock.now();
        match self.store.prefer_email(caller.user.id, id)? {
            EmailChange::Done(email) => {
                let event = NoticeEvent::EmailPreferred {
                    address: email.address.to_string(),
                };
                self.notify(caller.user.id, event, client, now)
            }
            EmailChange::Unverified => Err(AuthError::Conflict(
                "only a verified email can be preferred",
            )),
            EmailChange::NotFound | EmailChange::Preferred => Err(AuthError::NotFound("email")),
        }
    }

    /// Deletes an email of the caller that is not the preferred one.
    pub fn delete_email(
        &self,
        caller: &SessionWithUser,
        id: EmailId,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let now = self.clock.now();
        match self.store.delete_email(caller.user.id, id)? {
            EmailChange::Done(email) => {
                let event = NoticeEvent::EmailDeleted {
                    address: email.address.to_string(),
                };
                self.notify(caller.user.id, event, client, now)
            }
            EmailChange::Preferred => Err(AuthError::Conflict(
                "the preferred email cannot be deleted; prefer another one first",
            )),
            EmailChange::NotFound | EmailChange::Unverified => Err(AuthError::NotFound("email")),
        }
    }

    /// Creates an unverified key pair for `days` days and mails its code to
    /// the caller's preferred address.
    pub fn create_key_pair(
        &self,
        caller: &SessionWithUser,
        name: KeyName,
        days: i64,
        client: &ClientInfo,
    ) -> Result<IssuedKeyPair, AuthError> {
        let max = i64::from(self.policy.key_pair_max_days);
        if !(1..=max).contains(&days) {
            return Err(AuthError::invalid(
                Field::Days,
                format!("must be an integer from 1 to {max}"),
            ));
        }

        let now = self.clock.now();
        let secret = Secret::generate(self.random.as_ref());
        let key_pair = KeyPair {
            id: KeyPairId(self.random.uuid()),
            user_id: caller.user.id,
            name,
            api_key: secret::generate_api_key(self.random.as_ref()),
            secret_digest: secret.digest(),
            created_at: now,
            expires_at: now + time::Duration::days(days),
            verified_at: None,
            deleted_at: None,
        };
        let to = self.preferred_address(caller.user.id)?;
        self.limit_address(&to, now)?;
        let (code, mail) = self.new_code(
            caller.user.id,
            CodePurpose::KeyPair,
            key_pair.id.0,
            &to,
            now,
        );

        self.store.create_key_pair(&key_pair, &code, &mail)?;
        let event = NoticeEvent::KeyPairCreated {
            name: key_pair.name.as_str().to_owned(),
        };
        self.notify(caller.user.id, event, client, now)?;
        Ok(IssuedKeyPair {
            key_pair,
            secret,
            code_id: code.id,
        })
    }

    /// Verifies a key pair of the caller with its code.
    pub fn verify_key_pair(
        &self,
        caller: &SessionWithUser,
        code_id: CodeId,
        code: &OneTimeCode,
    ) -> Result<(), AuthError> {
        let now = self.clock.now();
        let user = Some(caller.user.id);
        let (subject, _) = self.check_code(code_id, code, &[CodePurpose::KeyPair], user, now)?;
        let effect = CodeEffect::VerifyKeyPair {
            key_pair: KeyPairId(subject),
        };
        self.consume(code_id, now, &effect)
    }

    /// Authenticates a key pair: verified, not deleted, unexpired, and the
    /// secret's digest equal to the stored one.
    pub fn check_key_pair(
        &self,
        api_key: &str,
        secret: &Secret,
    ) -> Result<KeyPairWithUser, AuthError> {
        let now = self.clock.now();
        if let Some(checked) = self.cached_key_pair_at(api_key, secret, now) {
            return checked;
        }

        let ticket = self.cache.as_ref().map(|cache| cache.ticket());
        let found = self
            .store
            .find_key_pair(api_key)?
            .ok_or(AuthError::Unauthorized(BAD_CREDENTIAL))?;
        if !found.key_pair.secret_digest.matches(&secret.digest()) || !found.key_pair.is_usable(now)
        {
            return Err(AuthError::Unauthorized(BAD_CREDENTIAL));
        }
        if let (Some(cache), Some(ticket)) = (&self.cache, ticket) {
            let fresh_until = (now + cache.ttl()).min(found.key_pair.expires_at);
            let key = TokenDigest::of(api_key.as_bytes());
            cache.insert_key_pair(key, found.clone(), fresh_until, ticket);
        }
        Ok(found)
    }

    /// Authenticates a key pair from the cache alone, without blocking.
    /// `None` means the cache has no fresh entry for the API key and
    /// [`Auth::check_key_pair`] must ask the store; a cached key pair with
    /// another secret is rejected here.
    pub fn cached_key_pair(
        &self,
        api_key: &str,
        secret: &Secret,
    ) -> Option<Result<KeyPairWithUser, AuthError>> {
        self.cache.as_ref()?;
        self.cached_key_pair_at(api_key, secret, self.clock.now())
    }

    fn cached_key_pair_at(
        &self,
        api_key: &str,
        secret: &Secret,
        now: OffsetDateTime,
    ) -> Option<Result<KeyPairWithUser, AuthError>> {
        let cache = self.cache.as_ref()?;
        let found = cache.key_pair(&TokenDigest::of(api_key.as_bytes()), now)?;
        if !found.key_pair.secret_digest.matches(&secret.digest()) || !found.key_pair.is_usable(now)
        {
            return Some(Err(AuthError::Unauthorized(BAD_CREDENTIAL)));
        }
        Some(Ok(found))
    }

    /// Lists the caller's key pairs that are not deleted.
    pub fn list_key_pairs(&self, caller: &SessionWithUser) -> Result<Vec<KeyPair>, AuthError> {
        Ok(self.store.list_key_pairs(caller.user.id)?)
    }

    /// Deletes one of the caller's key pairs.
    pub fn delete_key_pair(
        &self,
        caller: &SessionWithUser,
        id: KeyPairId,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let now = self.clock.now();
        let deleted = self
            .store
            .delete_key_pair(caller.user.id, id, now)?
            .ok_or(AuthError::NotFound("key pair"))?;
        self.revoke(Revoked::KeyPair(id));
        let event = NoticeEvent::KeyPairDeleted {
            name: deleted.name.as_str().to_owned(),
        };
        self.notify(caller.user.id, event, client, now)
    }

    /// Finds a user whose registration is verified, for its public alias.
    pub fn find_user(&self, id: UserId) -> Result<User, AuthError> {
        self.store
            .find_user(id)?
            .filter(|user| user.verified_at.is_some())
            .ok_or(AuthError::NotFound("user"))
    }

    /// Removes accounts whose registration was never verified in time.
    pub fn purge_unverified_users(&self) -> Result<u64, AuthError> {
        let now = self.clock.now();
        let longest = [
            self.policy.codes_per_address.window,
            self.policy.logins_per_client.window,
            self.policy.registrations_per_client.window,
            self.policy.emails_per_client.window,
            self.policy.verifications_per_client.window,
        ]
        .into_iter()
        .max()
        .unwrap_or_default();
        self.store.purge_rate_counters(now - longest)?;
        Ok(self
            .store
            .purge_unverified_users(now - self.policy.unverified_account_ttl)?)
    }

    /// Removes a revoked credential from this process's cache. Other
    /// processes learn of it from the store's revocation feed.
    fn revoke(&self, revoked: Revoked) {
        if let Some(cache) = &self.cache {
            cache.revoke(&[revoked]);
        }
    }

    fn new_session(
        &self,
        user_id: UserId,
        client: &ClientInfo,
        now: OffsetDateTime,
    ) -> (Session, Secret) {
        let bearer = Secret::generate(self.random.as_ref());
        let session = Session {
            id: SessionId(self.random.uuid()),
            user_id,
            token_digest: bearer.digest(),
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
            created_at: now,
            verified_at: None,
            // A pending session dies with its code.
            expires_at: now + self.policy.code_lifetime,
            last_seen_at: now,
            closed_at: None,
        };
        (session, bearer)
    }

    /// Draws a code, hashes it, and builds the mail that carries it.
    fn new_code(
        &self,
        user_id: UserId,
        purpose: CodePurpose,
        subject: Uuid,
        to: &EmailAddress,
        now: OffsetDateTime,
    ) -> (NewCode, Mail) {
        let plain = secret::generate_code(self.random.as_ref());
        let expires_at = now + self.policy.code_lifetime;
        let code = NewCode {
            id: CodeId(self.random.uuid()),
            user_id,
            purpose,
            subject,
            hash: secret::hash_code(&plain, self.policy.code_hash_cost),
            created_at: now,
            expires_at,
        };
        let mail = Mail {
            to: to.clone(),
            body: MailBody::Code {
                purpose,
                code: Some(plain),
                expires_at: expires_at.unix_timestamp(),
            },
        };
        (code, mail)
    }

    /// Takes one attempt of a code and checks it. Returns the code's subject
    /// and purpose.
    fn check_code(
        &self,
        id: CodeId,
        code: &OneTimeCode,
        purposes: &[CodePurpose],
        user: Option<UserId>,
        now: OffsetDateTime,
    ) -> Result<(Uuid, CodePurpose), AuthError> {
        let reservation = self.store.reserve_code_attempt(
            id,
            purposes,
            user,
            now,
            self.policy.code_max_attempts,
            &self.policy.account_failures,
        )?;
        let reserved = match reservation {
            Reservation::Reserved(reserved) => reserved,
            Reservation::NoCode => {
                // Spend the same bcrypt work as for a known code, so timing
                // does not tell an unknown id from a wrong code.
                let _ = secret::verify_code(code, self.decoy_hash());
                return Err(AuthError::Unauthorized(WRONG_CODE));
            }
            Reservation::AccountLocked { retry_after } => {
                return Err(too_many(
                    "too many wrong codes for this account, try again later",
                    retry_after,
                ));
            }
        };
        if !secret::verify_code(code, &reserved.hash) {
            return Err(AuthError::Unauthorized(WRONG_CODE));
        }
        Ok((reserved.subject, reserved.purpose))
    }

    fn consume(
        &self,
        id: CodeId,
        now: OffsetDateTime,
        effect: &CodeEffect,
    ) -> Result<(), AuthError> {
        if self.store.consume_code(id, now, effect)? {
            Ok(())
        } else {
            Err(AuthError::Unauthorized(WRONG_CODE))
        }
    }

    /// Counts one code mailed to `address` against its limit.
    fn limit_address(&self, address: &EmailAddress, now: OffsetDateTime) -> Result<(), AuthError> {
        let key = format!("code:{}", address.as_str());
        match self.store.hit(&key, now, &self.policy.codes_per_address)? {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited { retry_after } => Err(too_many(
                "too many codes requested for this address, try again later",
                retry_after,
            )),
        }
    }

    /// Counts one request of `action` from the client's address.
    fn limit_client(
        &self,
        action: &str,
        client: &ClientInfo,
        rule: &RateRule,
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        let key = format!("client:{action}:{}", client.ip);
        match self.store.hit(&key, now, rule)? {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited { retry_after } => Err(too_many(
                "too many requests from this client address, try again later",
                retry_after,
            )),
        }
    }

    fn limit_verifications(
        &self,
        client: &ClientInfo,
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        self.limit_client("verify", client, &self.policy.verifications_per_client, now)
    }

    fn decoy_hash(&self) -> &CodeHash {
        self.decoy_hash.get_or_init(|| {
            let decoy = secret::generate_code(self.random.as_ref());
            secret::hash_code(&decoy, self.policy.code_hash_cost)
        })
    }

    fn preferred_address(&self, user: UserId) -> Result<EmailAddress, AuthError> {
        self.store
            .list_emails(user)?
            .into_iter()
            .find(|e| e.preferred)
            .map(|e| e.address)
            .ok_or(AuthError::Internal(crate::ports::StoreError::Internal(
                "user has no preferred email".to_owned(),
            )))
    }

    /// Queues a notice of a credential change to the user's preferred address.
    fn notify(
        &self,
        user: UserId,
        event: NoticeEvent,
        client: &ClientInfo,
        now: OffsetDateTime,
    ) -> Result<(), AuthError> {
        let to = self.preferred_address(user)?;
        let mail = Mail {
            to,
            body: MailBody::Notice {
                event,
                at: now.unix_timestamp(),
                ip: client.ip.clone(),
                user_agent: client.user_agent.clone(),
            },
        };
        self.store.enqueue(&[mail], now)?;
        Ok(())
    }
}

fn too_many(message: &'static str, retry_after: time::Duration) -> AuthError {
    let seconds = retry_after.whole_seconds().max(1);
    AuthError::TooManyRequests {
        message,
        retry_after: std::time::Duration::from_secs(seconds.unsigned_abs()),
    }
}

fn issued(session: Session, bearer: Secret, code_id: CodeId) -> IssuedSession {
    IssuedSession {
        session_id: session.id,
        bearer,
        expires_at: session.expires_at,
        ip: session.ip,
        user_agent: session.user_agent,
        code_id,
    }
}
