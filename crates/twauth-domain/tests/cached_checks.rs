//! Credential checks through the verified-credential cache: what a cached
//! entry may serve, and what removes it.

use std::sync::Arc;

use time::{Duration, macros::datetime};
use twauth_domain::cache::{CacheSettings, CredentialCache};
use twauth_domain::mail::MailBody;
use twauth_domain::memory::{ManualClock, MemoryStore, SeededRandom};
use twauth_domain::model::{ClientInfo, SessionWithUser};
use twauth_domain::ports::{Clock, SessionStore};
use twauth_domain::secret::Secret;
use twauth_domain::values::{Alias, EmailAddress, FullName, OneTimeCode};
use twauth_domain::{Auth, Field, Policy};

const TTL: Duration = Duration::seconds(5);

struct Fixture {
    auth: Auth,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
}

fn fixture_with(policy: Policy) -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(datetime!(2030-01-01 12:00 UTC)));
    let cache = Arc::new(CredentialCache::new(CacheSettings {
        capacity: 100,
        ttl: TTL,
    }));
    let auth = Auth::new(
        store.clone(),
        clock.clone(),
        Arc::new(SeededRandom::new(7)),
        policy,
    )
    .with_cache(cache);
    Fixture { auth, store, clock }
}

fn fixture() -> Fixture {
    fixture_with(Policy {
        code_hash_cost: 4,
        ..Policy::default()
    })
}

fn client() -> ClientInfo {
    ClientInfo {
        ip: "203.0.113.9".to_owned(),
        user_agent: "tests".to_owned(),
    }
}

impl Fixture {
    fn last_code(&self) -> OneTimeCode {
        self.store
            .outbox()
            .into_iter()
            .rev()
            .find_map(|mail| match mail.body {
                MailBody::Code {
                    code: Some(code), ..
                } => Some(code),
                _ => None,
            })
            .expect("a code mail")
    }

    /// Registers and verifies a user; returns its bearer and the check.
    fn verified_session(&self) -> (Secret, SessionWithUser) {
        let issued = self
            .auth
            .register(
                EmailAddress::parse("jane@example.com", Field::Email).unwrap(),
                FullName::parse("Jane Doe").unwrap(),
                Alias::parse("jane").unwrap(),
                &client(),
            )
            .unwrap();
        self.auth
            .verify_session(issued.code_id, &self.last_code(), &client())
            .unwrap();
        let caller = self.auth.check_session(&issued.bearer).unwrap();
        (issued.bearer, caller)
    }
}

#[test]
fn check_fills_cache_and_hits_it() {
    let f = fixture();
    let (bearer, caller) = f.verified_session();

    let cached = f.auth.cached_session(&bearer).expect("a cache hit");
    assert_eq!(cached.session.id, caller.session.id);
    assert!(
        f.auth
            .cached_session(&Secret::from_client("other"))
            .is_none()
    );
}

#[test]
fn close_through_auth_removes_entry() {
    let f = fixture();
    let (bearer, caller) = f.verified_session();

    f.auth.close_session(&caller, caller.session.id).unwrap();
    assert!(f.auth.cached_session(&bearer).is_none());
    assert!(f.auth.check_session(&bearer).is_err());
}

#[test]
fn change_elsewhere_lasts_at_most_ttl() {
    let f = fixture();
    let (bearer, caller) = f.verified_session();

    // A close that bypasses this `Auth`, as another process's would.
    f.store
        .close_session(caller.user.id, caller.session.id, f.clock.now())
        .unwrap();
    f.clock.advance(TTL - Duration::seconds(1));
    assert!(f.auth.check_session(&bearer).is_ok(), "served from cache");
    f.clock.advance(Duration::seconds(1));
    assert!(
        f.auth.check_session(&bearer).is_err(),
        "read again after TTL"
    );
}

#[test]
fn entry_ends_at_session_expiry() {
    let f = fixture_with(Policy {
        code_hash_cost: 4,
        session_lifetime: Duration::seconds(3),
        session_max_lifetime: Duration::seconds(3),
        ..Policy::default()
    });
    let (bearer, _) = f.verified_session();

    f.clock.advance(Duration::seconds(2));
    assert!(f.auth.cached_session(&bearer).is_some());
    f.clock.advance(Duration::seconds(1));
    assert!(f.auth.cached_session(&bearer).is_none());
    assert!(f.auth.check_session(&bearer).is_err());
}

#[test]
fn extend_replaces_cached_expiry() {
    let f = fixture();
    let (bearer, caller) = f.verified_session();

    // Within the TTL, so the entry read before the extend is still fresh.
    f.clock.advance(Duration::seconds(2));
    let expires_at = f.auth.extend_session(&caller).unwrap();
    assert!(expires_at > caller.session.expires_at);
    let checked = f.auth.check_session(&bearer).unwrap();
    assert_eq!(checked.session.expires_at, expires_at);
}

#[test]
fn idle_rule_holds_with_cache() {
    let f = fixture_with(Policy {
        code_hash_cost: 4,
        session_idle_timeout: Some(Duration::minutes(30)),
        ..Policy::default()
    });
    let (bearer, _) = f.verified_session();

    // Used every 20 minutes it stays alive, and each use past the touch
    // interval reaches the store, which records it.
    for _ in 0..5 {
        f.clock.advance(Duration::minutes(20));
        let checked = f.auth.check_session(&bearer).unwrap();
        assert_eq!(checked.session.last_seen_at, f.clock.now());
    }
    f.clock.advance(Duration::minutes(31));
    assert!(f.auth.check_session(&bearer).is_err());
}
