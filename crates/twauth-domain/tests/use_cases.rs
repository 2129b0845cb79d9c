//! The use cases over the in-memory store, a movable clock and a seeded
//! random source: every rule that depends on time is checked by moving the
//! clock, never by sleeping.

use std::sync::Arc;

use time::{Duration, macros::datetime};
use twauth_domain::error::{BAD_CREDENTIAL, WRONG_CODE};
use twauth_domain::mail::MailBody;
use twauth_domain::memory::{ManualClock, MemoryStore, SeededRandom};
use twauth_domain::model::{ClientInfo, CodeId, SessionWithUser};
use twauth_domain::service::IssuedSession;
use twauth_domain::values::{Alias, EmailAddress, FullName, KeyName, OneTimeCode};
use twauth_domain::{Auth, AuthError, Field, Policy};

struct Fixture {
    auth: Auth,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
}

fn fixture_with(policy: Policy) -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(datetime!(2030-01-01 12:00 UTC)));
    let auth = Auth::new(
        store.clone(),
        clock.clone(),
        Arc::new(SeededRandom::new(42)),
        policy,
    );
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
        ip: "203.0.113.7".to_owned(),
        user_agent: "tests".to_owned(),
    }
}

fn address(text: &str) -> EmailAddress {
    EmailAddress::parse(text, Field::Email).unwrap()
}

impl Fixture {
    /// The code in the newest code mail to `to`.
    fn last_code(&self, to: &str) -> OneTimeCode {
        self.store
            .outbox()
            .into_iter()
            .rev()
            .find_map(|mail| match mail.body {
                MailBody::Code {
                    code: Some(code), ..
                } if mail.to.as_str() == to => Some(code),
                _ => None,
            })
            .expect("a code mail")
    }

    fn register(&self, email: &str, alias: &str) -> IssuedSession {
        self.auth
            .register(
                address(email),
                FullName::parse("Test User").unwrap(),
                Alias::parse(alias).unwrap(),
                &client(),
            )
            .unwrap()
    }

    fn register_verified(&self, email: &str, alias: &str) -> SessionWithUser {
        let issued = self.register(email, alias);
        let code = self.last_code(email);
        self.auth
            .verify_session(issued.code_id, &code, &client())
            .unwrap();
        let caller = self.auth.check_session(&issued.bearer).unwrap();
        // Past the least gap between two codes to one address.
        self.clock.advance(Duration::minutes(1));
        caller
    }
}

fn other_code(code: &OneTimeCode) -> OneTimeCode {
    let wrong = if code.expose() == "000000" {
        "000001"
    } else {
        "000000"
    };
    OneTimeCode::parse(wrong).unwrap()
}

#[test]
fn register_verify_check() {
    let f = fixture();
    let issued = f.register("jane@example.com", "jane");
    assert!(matches!(
        f.auth.check_session(&issued.bearer),
        Err(AuthError::Unauthorized(BAD_CREDENTIAL))
    ));

    let code = f.last_code("jane@example.com");
    f.auth
        .verify_session(issued.code_id, &code, &client())
        .unwrap();
    let caller = f.auth.check_session(&issued.bearer).unwrap();
    assert_eq!(caller.user.alias.as_str(), "jane");
    assert_eq!(caller.user.roles, vec!["user"]);
    assert_eq!(caller.user.groups, vec!["public"]);
    assert!(caller.user.verified_at.is_some());
    let emails = f.auth.list_emails(&caller).unwrap();
    assert!(emails[0].verified && emails[0].preferred);
}

#[test]
fn verify_rejects_wrong_unknown_and_reused_codes() {
    let f = fixture();
    let issued = f.register("jane@example.com", "jane");
    let code = f.last_code("jane@example.com");

    let wrong = f
        .auth
        .verify_session(issued.code_id, &other_code(&code), &client());
    assert!(matches!(wrong, Err(AuthError::Unauthorized(WRONG_CODE))));
    let unknown = f
        .auth
        .verify_session(CodeId(uuid::Uuid::new_v4()), &code, &client());
    assert!(matches!(unknown, Err(AuthError::Unauthorized(WRONG_CODE))));

    f.auth
        .verify_session(issued.code_id, &code, &client())
        .unwrap();
    let reused = f.auth.verify_session(issued.code_id, &code, &client());
    assert!(matches!(reused, Err(AuthError::Unauthorized(WRONG_CODE))));
}

#[test]
fn code_expires_after_its_lifetime() {
    let f = fixture();
    let issued = f.register("jane@example.com", "jane");
    let code = f.last_code("jane@example.com");
    f.clock.advance(Duration::minutes(10));
    let late = f.auth.verify_session(issued.code_id, &code, &client());
    assert!(matches!(late, Err(AuthError::Unauthorized(WRONG_CODE))));
}

#[test]
fn code_dies_after_max_attempts() {
    let f = fixture();
    let issued = f.register("jane@example.com", "jane");
    let code = f.last_code("jane@example.com");
    for _ in 0..5 {
        let _ = f
            .auth
            .verify_session(issued.code_id, &other_code(&code), &client());
    }
    let right = f.auth.verify_session(issued.code_id, &code, &client());
    assert!(matches!(right, Err(AuthError::Unauthorized(WRONG_CODE))));
}

#[test]
fn login_of_unknown_address_stores_and_mails_nothing() {
    let f = fixture();
    let before = f.store.row_counts();
    let issued = f
        .auth
        .start_session(address("ghost@example.com"), &client())
        .unwrap();
    assert_eq!(f.store.row_counts(), before);
    assert!(f.store.outbox().is_empty());
    let guess = OneTimeCode::parse("123456").unwrap();
    assert!(
        f.auth
            .verify_session(issued.code_id, &guess, &client())
            .is_err()
    );
}

#[test]
fn login_mails_the_given_address() {
    let f = fixture();
    f.register_verified("jane@example.com", "jane");
    let issued = f
        .auth
        .start_session(address("Jane@Example.com"), &client())
        .unwrap();
    let code = f.last_code("jane@example.com");
    f.auth
        .verify_session(issued.code_id, &code, &client())
        .unwrap();
    assert!(f.auth.check_session(&issued.bearer).is_ok());
}

#[test]
fn session_expires_and_extend_is_capped() {
    let f = fixture();
    let caller = f.register_verified("jane@example.com", "jane");
    let bearer_session = caller.session.id;
    let verified_at = caller.session.verified_at.unwrap();

    // Extending every 20 hours keeps the session alive, up to 30 days.
    let mut current = caller;
    for _ in 0..40 {
        f.clock.advance(Duration::hours(20));
        let Ok(expires_at) = f.auth.extend_session(&current) else {
            break;
        };
        assert!(expires_at <= verified_at + Duration::days(30));
        current.session.expires_at = expires_at;
    }
    assert_eq!(current.session.id, bearer_session);
    assert_eq!(current.session.expires_at, verified_at + Duration::days(30));
}

#[test]
fn session_dies_after_lifetime() {
    let f = fixture();
    let issued = f.register("jane@example.com", "jane");
    let code = f.last_code("jane@example.com");
    f.auth
        .verify_session(issued.code_id, &code, &client())
        .unwrap();
    f.clock.advance(Duration::hours(24) - Duration::seconds(1));
    assert!(f.auth.check_session(&issued.bearer).is_ok());
    f.clock.advance(Duration::seconds(1));
    assert!(f.auth.check_session(&issued.bearer).is_err());
}

#[test]
fn idle_session_dies_when_timeout_is_set() {
    let f = fixture_with(Policy {
        code_hash_cost: 4,
        session_idle_timeout: Some(Duration::minutes(30)),
        ..Policy::default()
    });
    let issued = f.register("jane@example.com", "jane");
    let code = f.last_code("jane@example.com");
    f.auth
        .verify_session(issued.code_id, &code, &client())
        .unwrap();

    // Used every 20 minutes it stays alive.
    for _ in 0..5 {
        f.clock.advance(Duration::minutes(20));
        assert!(f.auth.check_session(&issued.bearer).is_ok());
    }
    f.clock.advance(Duration::minutes(31));
    assert!(f.auth.check_session(&issued.bearer).is_err());
}

#[test]
fn closed_session_authenticates_nothing() {
    let f = fixture();
    let caller = f.register_verified("jane@example.com", "jane");
    let issued = f
        .auth
        .start_session(address("jane@example.com"), &client())
        .unwrap();
    let code = f.last_code("jane@example.com");
    f.auth
        .verify_session(issued.code_id, &code, &client())
        .unwrap();
    assert_eq!(f.auth.list_sessions(&caller).unwrap().len(), 2);

    f.auth.close_session(&caller, issued.session_id).unwrap();
    assert!(f.auth.check_session(&issued.bearer).is_err());
    assert!(matches!(
        f.auth.close_session(&caller, issued.session_id),
        Err(AuthError::NotFound(_))
    ));
}

#[test]
fn key_pair_lifecycle() {
    let f = fixture();
    let caller = f.register_verified("jane@example.com", "jane");
    let name = KeyName::parse("ci").unwrap();
    for days in [0, -1, 366] {
        let result = f
            .auth
            .create_key_pair(&caller, name.clone(), days, &client());
        assert!(
            matches!(
                result,
                Err(AuthError::Invalid {
                    field: Field::Days,
                    ..
                })
            ),
            "days {days}"
        );
    }

    let issued = f
        .auth
        .create_key_pair(&caller, name, 30, &client())
        .unwrap();
    let key = issued.key_pair.api_key.clone();
    assert!(
        f.auth.check_key_pair(&key, &issued.secret).is_err(),
        "unverified"
    );

    let code = f.last_code("jane@example.com");
    f.auth
        .verify_key_pair(&caller, issued.code_id, &code)
        .unwrap();
    let found = f.auth.check_key_pair(&key, &issued.secret).unwrap();
    assert_eq!(found.user.id, caller.user.id);

    let wrong = twauth_domain::secret::Secret::from_client("nope");
    assert!(f.auth.check_key_pair(&key, &wrong).is_err());

    f.clock.advance(Duration::days(30));
    assert!(
        f.auth.check_key_pair(&key, &issued.secret).is_err(),
        "expired"
    );
}

#[test]
fn account_locks_after_failures_until_window_passes() {
    let f = fixture_with(Policy {
        code_hash_cost: 4,
        account_failures: twauth_domain::ports::AccountLimit {
            max_failures: 3,
            window: Duration::hours(1),
        },
        ..Policy::default()
    });
    let issued = f.register("jane@example.com", "jane");
    let code = f.last_code("jane@example.com");
    for _ in 0..3 {
        let _ = f
            .auth
            .verify_session(issued.code_id, &other_code(&code), &client());
    }
    let locked = f.auth.verify_session(issued.code_id, &code, &client());
    let Err(AuthError::TooManyRequests { retry_after, .. }) = locked else {
        panic!("expected 429, got {locked:?}");
    };
    assert_eq!(retry_after.as_secs(), 3600);
}

#[test]
fn codes_per_address_are_limited() {
    let f = fixture();
    f.register_verified("jane@example.com", "jane");
    let again = f.auth.start_session(address("jane@example.com"), &client());
    assert!(again.is_ok());
    let too_soon = f.auth.start_session(address("jane@example.com"), &client());
    let Err(AuthError::TooManyRequests { retry_after, .. }) = too_soon else {
        panic!("expected 429, got {too_soon:?}");
    };
    assert_eq!(retry_after.as_secs(), 60);
}

#[test]
fn unverified_account_is_purged_and_frees_its_address() {
    let f = fixture();
    f.register("jane@example.com", "jane");
    f.clock.advance(Duration::hours(24) + Duration::seconds(1));
    assert_eq!(f.auth.purge_unverified_users().unwrap(), 1);
    f.clock.advance(Duration::minutes(1));
    f.register("jane@example.com", "jane");
}
