//! In-process tests of the time rules. Each test runs the API over a real
//! database (SQLite always, PostgreSQL when `TWAUTH_TEST_DATABASE_URL` is
//! set) with a `ManualClock` that it moves by hand, so nothing sleeps. Codes
//! are read from a `MemoryTransport` after an outbox delivery step.

use std::sync::Arc;

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::{App, Error};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use twauth_api::{ApiSettings, ApiState};
use twauth_domain::delivery::{DeliveryPolicy, deliver_due};
use twauth_domain::memory::{ManualClock, SeededRandom};
use twauth_domain::{Auth, Policy};
use twauth_mail::{MailSettings, MemoryTransport};
use twauth_persistence::{Database, PoolSettings};

use crate::harness::{BASE, Backend, PgDatabase, postgres_admin_url};

/// 1 January 2030, 12:00 UTC: where every test clock starts.
const START: i64 = 1_893_499_200;

/// A database, a clock and a mail transport for one test.
struct Rig {
    database: Arc<Database>,
    clock: Arc<ManualClock>,
    transport: MemoryTransport,
    _pg: Option<PgDatabase>,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// Creates and migrates a fresh database, or returns `None` for
    /// PostgreSQL when no test server is configured.
    fn new(backend: Backend) -> Option<Rig> {
        let dir = tempfile::tempdir().expect("create a temp dir");
        let (pg, url) = match backend {
            Backend::Sqlite => (
                None,
                format!("sqlite://{}", dir.path().join("twauth.db").display()),
            ),
            Backend::Postgres => {
                let Some(admin) = postgres_admin_url() else {
                    assert!(
                        std::env::var("CI").is_err(),
                        "TWAUTH_TEST_DATABASE_URL must be set in CI"
                    );
                    eprintln!("skipped: TWAUTH_TEST_DATABASE_URL is not set");
                    return None;
                };
                let db = PgDatabase::create(&admin);
                let url = db.url.clone();
                (Some(db), url)
            }
        };
        let database =
            Database::connect(&url, &PoolSettings::default()).expect("open the database");
        database.migrate().expect("migrate the database");
        Some(Rig {
            database: Arc::new(database),
            clock: Arc::new(ManualClock::new(
                OffsetDateTime::from_unix_timestamp(START).unwrap(),
            )),
            transport: MemoryTransport::new(MailSettings::default()),
            _pg: pg,
            _dir: dir,
        })
    }

    /// Builds the use cases over this rig's ports with `policy`.
    fn auth(&self, policy: Policy) -> Arc<Auth> {
        Arc::new(Auth::new(
            self.database.clone(),
            self.clock.clone(),
            Arc::new(SeededRandom::new(7)),
            policy,
        ))
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn now(&self) -> i64 {
        twauth_domain::ports::Clock::now(self.clock.as_ref()).unix_timestamp()
    }

    /// Delivers due mail and returns the newest code sent to `address`.
    fn code_to(&self, address: &str) -> String {
        deliver_due(
            self.database.as_ref(),
            &self.transport,
            self.clock.as_ref(),
            &DeliveryPolicy::default(),
        )
        .expect("deliver mail");
        self.transport
            .sent()
            .iter()
            .rev()
            .filter(|sent| sent.to == address)
            .find_map(|sent| sent.code().map(str::to_owned))
            .unwrap_or_else(|| panic!("no code was sent to {address}"))
    }
}

/// Returns the default policy with the cheapest code hash, so tests run
/// fast.
fn test_policy() -> Policy {
    Policy {
        code_hash_cost: 4,
        ..Policy::default()
    }
}

async fn start_app(
    auth: Arc<Auth>,
) -> impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = Error> {
    let state = ApiState::new(auth, ApiSettings::default());
    init_service(App::new().configure(twauth_api::configure(state))).await
}

/// Sends a request to the API and returns its status and JSON body (null
/// when the body is empty).
async fn send<S, B>(app: &S, request: TestRequest) -> (StatusCode, Value)
where
    S: Service<Request, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    let request = request
        .peer_addr("127.0.0.1:40000".parse().unwrap())
        .to_request();
    let response = call_service(app, request).await;
    let status = response.status();
    let body = read_body(response).await;
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).expect("a JSON body")
    };
    (status, json)
}

fn get(path: &str, bearer: &str) -> TestRequest {
    TestRequest::get()
        .uri(&format!("{BASE}{path}"))
        .insert_header(("authorization", format!("Bearer {bearer}")))
}

fn put(path: &str, bearer: Option<&str>, body: Value) -> TestRequest {
    let request = TestRequest::put()
        .uri(&format!("{BASE}{path}"))
        .set_json(body);
    match bearer {
        Some(bearer) => request.insert_header(("authorization", format!("Bearer {bearer}"))),
        None => request,
    }
}

fn post(path: &str, bearer: Option<&str>, body: Value) -> TestRequest {
    let request = TestRequest::post()
        .uri(&format!("{BASE}{path}"))
        .set_json(body);
    match bearer {
        Some(bearer) => request.insert_header(("authorization", format!("Bearer {bearer}"))),
        None => request,
    }
}

/// Registers `email` without verifying it. Returns the 202 body.
async fn register<S, B>(app: &S, email: &str, alias: &str) -> Value
where
    S: Service<Request, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    let body = json!({"email": email, "fullName": "Clock Tester", "alias": alias});
    let (status, created) = send(app, post("/user", None, body)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "register {email}");
    created
}

async fn verify_session<S, B>(app: &S, started: &Value, code: &str) -> StatusCode
where
    S: Service<Request, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    let body = json!({"verificationCodeID": started["verificationCodeID"], "code": code});
    send(app, put("/session/verification", None, body)).await.0
}

/// Registers `email`, verifies the registration and returns the bearer.
async fn registered<S, B>(app: &S, rig: &Rig, email: &str, alias: &str) -> String
where
    S: Service<Request, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    let created = register(app, email, alias).await;
    let code = rig.code_to(email);
    assert_eq!(
        verify_session(app, &created, &code).await,
        StatusCode::ACCEPTED
    );
    created["bearer"].as_str().unwrap().to_owned()
}

async fn session_status<S, B>(app: &S, bearer: &str) -> StatusCode
where
    S: Service<Request, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    send(app, get("/session", bearer)).await.0
}

async fn code_expires_after_ten_minutes(rig: Rig) {
    let app = start_app(rig.auth(test_policy())).await;

    // Just inside the lifetime the code still works.
    let first = register(&app, "inside@example.com", "inside").await;
    let code = rig.code_to("inside@example.com");
    rig.advance(Duration::minutes(10) - Duration::seconds(1));
    assert_eq!(
        verify_session(&app, &first, &code).await,
        StatusCode::ACCEPTED
    );

    // At ten minutes it is dead, and so is the pending session.
    let second = register(&app, "late@example.com", "late").await;
    let code = rig.code_to("late@example.com");
    rig.advance(Duration::minutes(10));
    assert_eq!(
        verify_session(&app, &second, &code).await,
        StatusCode::UNAUTHORIZED
    );
    let bearer = second["bearer"].as_str().unwrap();
    assert_eq!(session_status(&app, bearer).await, StatusCode::UNAUTHORIZED);

    // A key pair code too, a minute later because codes to one address
    // are at least a minute apart by default.
    rig.advance(Duration::minutes(1));
    let owner = first["bearer"].as_str().unwrap();
    let (status, key) = send(
        &app,
        post("/keypair", Some(owner), json!({"name": "ci", "days": 30})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let code = rig.code_to("inside@example.com");
    rig.advance(Duration::minutes(10));
    let body = json!({"verificationCodeID": key["verificationCodeID"], "code": code});
    let (status, _) = send(&app, put("/keypair/verification", Some(owner), body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn session_expires_after_a_day(rig: Rig) {
    let app = start_app(rig.auth(test_policy())).await;
    let bearer = registered(&app, &rig, "day@example.com", "day").await;
    let verified_at = rig.now();

    let (status, session) = send(&app, get("/session", &bearer)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session["expireAt"], verified_at + 24 * 60 * 60);

    rig.advance(Duration::hours(24) - Duration::seconds(1));
    assert_eq!(session_status(&app, &bearer).await, StatusCode::OK);
    rig.advance(Duration::seconds(1));
    assert_eq!(
        session_status(&app, &bearer).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = send(&app, put("/session/extend", Some(&bearer), json!({}))).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an expired session cannot extend"
    );
}

async fn extend_stops_at_thirty_days(rig: Rig) {
    let app = start_app(rig.auth(test_policy())).await;
    let bearer = registered(&app, &rig, "long@example.com", "long").await;
    let cap = rig.now() + 30 * 24 * 60 * 60;

    rig.advance(Duration::hours(12));
    let (status, extended) = send(&app, put("/session/extend", Some(&bearer), json!({}))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(extended["message"], "acknowledged");
    assert_eq!(extended["expireAt"], rig.now() + 24 * 60 * 60);
    let (_, session) = send(&app, get("/session", &bearer)).await;
    assert_eq!(session["expireAt"], extended["expireAt"]);

    // Extend every 23 hours: the session lives on, but never past the cap.
    let mut last = 0;
    while rig.now() + Duration::hours(23).whole_seconds() < cap {
        rig.advance(Duration::hours(23));
        let (status, extended) = send(&app, put("/session/extend", Some(&bearer), json!({}))).await;
        assert_eq!(status, StatusCode::ACCEPTED, "at {}", rig.now());
        last = extended["expireAt"].as_i64().unwrap();
        assert_eq!(last, (rig.now() + 24 * 60 * 60).min(cap));
    }
    assert_eq!(last, cap, "the last extends reach the cap");

    rig.advance(Duration::seconds(cap - rig.now() - 1));
    assert_eq!(session_status(&app, &bearer).await, StatusCode::OK);
    rig.advance(Duration::seconds(1));
    assert_eq!(
        session_status(&app, &bearer).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = send(&app, put("/session/extend", Some(&bearer), json!({}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn idle_timeout_ends_unused_session(rig: Rig) {
    let policy = Policy {
        session_idle_timeout: Some(Duration::hours(1)),
        ..test_policy()
    };
    let app = start_app(rig.auth(policy)).await;
    let bearer = registered(&app, &rig, "idle@example.com", "idle").await;

    // Each use moves the idle deadline.
    for _ in 0..3 {
        rig.advance(Duration::minutes(59));
        assert_eq!(session_status(&app, &bearer).await, StatusCode::OK);
    }
    let (status, listed) = send(&app, get("/sessions", &bearer)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1);

    rig.advance(Duration::hours(1));
    assert_eq!(
        session_status(&app, &bearer).await,
        StatusCode::UNAUTHORIZED
    );
}

async fn idle_timeout_off_by_default(rig: Rig) {
    let app = start_app(rig.auth(test_policy())).await;
    let bearer = registered(&app, &rig, "busy@example.com", "busy").await;
    rig.advance(Duration::hours(23));
    assert_eq!(session_status(&app, &bearer).await, StatusCode::OK);
}

async fn key_pair_expires_after_its_days(rig: Rig) {
    let app = start_app(rig.auth(test_policy())).await;
    let bearer = registered(&app, &rig, "keys@example.com", "keys").await;
    // By default codes to one address are at least a minute apart.
    rig.advance(Duration::minutes(1));

    let (status, key) = send(
        &app,
        post(
            "/keypair",
            Some(&bearer),
            json!({"name": "short", "days": 2}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(key["expireAt"], rig.now() + 2 * 24 * 60 * 60);
    let code = rig.code_to("keys@example.com");
    let body = json!({"verificationCodeID": key["verificationCodeID"], "code": code});
    let (status, _) = send(&app, put("/keypair/verification", Some(&bearer), body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    let check = || {
        TestRequest::get()
            .uri(&format!("{BASE}/keypair"))
            .insert_header(("api-key", key["apiKey"].as_str().unwrap()))
            .insert_header(("api-secret", key["apiSecret"].as_str().unwrap()))
    };
    let (status, checked) = send(&app, check()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(checked["expireAt"], key["expireAt"]);

    // The key outlives the session that made it.
    rig.advance(Duration::days(2) - Duration::seconds(1));
    assert_eq!(send(&app, check()).await.0, StatusCode::OK);
    rig.advance(Duration::seconds(1));
    assert_eq!(send(&app, check()).await.0, StatusCode::UNAUTHORIZED);
}

async fn unverified_account_is_purged(rig: Rig) {
    let auth = rig.auth(test_policy());
    let app = start_app(auth.clone()).await;
    let first = register(&app, "claim@example.com", "claimer").await;
    rig.code_to("claim@example.com");

    // Until the purge the address and alias stay taken.
    rig.advance(Duration::hours(23));
    assert_eq!(auth.purge_unverified_users().unwrap(), 0);
    let body = json!({"email": "claim@example.com", "fullName": "Other", "alias": "other"});
    assert_eq!(
        send(&app, post("/user", None, body)).await.0,
        StatusCode::CONFLICT
    );

    rig.advance(Duration::hours(1) + Duration::seconds(1));
    assert_eq!(auth.purge_unverified_users().unwrap(), 1);

    // The old registration can no longer be verified, and its bearer is dead.
    let code = rig.code_to("claim@example.com");
    assert_eq!(
        verify_session(&app, &first, &code).await,
        StatusCode::UNAUTHORIZED
    );
    let old_bearer = first["bearer"].as_str().unwrap();
    assert_eq!(
        session_status(&app, old_bearer).await,
        StatusCode::UNAUTHORIZED
    );

    // Address and alias are free again.
    let bearer = registered(&app, &rig, "claim@example.com", "claimer").await;
    assert_eq!(session_status(&app, &bearer).await, StatusCode::OK);
}

async fn verified_account_is_not_purged(rig: Rig) {
    let auth = rig.auth(test_policy());
    let app = start_app(auth.clone()).await;
    let bearer = registered(&app, &rig, "stay@example.com", "stayer").await;

    // An account claimed through a login before the purge stays too.
    let pending = register(&app, "late@example.com", "latecomer").await;
    rig.code_to("late@example.com");
    rig.advance(Duration::hours(20));
    let body = json!({"email": "late@example.com"});
    let (status, login) = send(&app, post("/session", None, body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let code = rig.code_to("late@example.com");
    assert_eq!(
        verify_session(&app, &login, &code).await,
        StatusCode::ACCEPTED
    );
    assert_ne!(login["sessionID"], pending["sessionID"]);

    rig.advance(Duration::days(2));
    assert_eq!(auth.purge_unverified_users().unwrap(), 0);
    let body = json!({"email": "stay@example.com"});
    let (status, login) = send(&app, post("/session", None, body)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let code = rig.code_to("stay@example.com");
    assert_eq!(
        verify_session(&app, &login, &code).await,
        StatusCode::ACCEPTED
    );
    // The first session expired a day after its verification.
    assert_eq!(
        session_status(&app, &bearer).await,
        StatusCode::UNAUTHORIZED
    );
}

/// Declares one `#[actix_web::test]` per backend for an async function
/// that takes a [`Rig`].
macro_rules! on_both_backends_in_process {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    let rig = super::Rig::new(crate::harness::Backend::Sqlite).unwrap();
                    super::$name(rig).await;
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                async fn $name() {
                    if let Some(rig) = super::Rig::new(crate::harness::Backend::Postgres) {
                        super::$name(rig).await;
                    }
                }
            )*
        }
    };
}

on_both_backends_in_process!(
    code_expires_after_ten_minutes,
    session_expires_after_a_day,
    extend_stops_at_thirty_days,
    idle_timeout_ends_unused_session,
    idle_timeout_off_by_default,
    key_pair_expires_after_its_days,
    unverified_account_is_purged,
    verified_account_is_not_purged,
);
