//! Sessions: log in, verify, check, extend, list and close.

use actix_web::{HttpResponse, web};
use twauth_domain::Field;
use twauth_domain::model::{CodeId, SessionId};
use twauth_domain::service::IssuedSession;
use twauth_domain::values::EmailAddress;

use crate::dto::{
    ACKNOWLEDGED, Acknowledged, LoginRequest, SessionCheck, SessionCreated, SessionExtended,
    SessionItem, SessionList, VerifyRequest,
};
use crate::error::ApiError;
use crate::extract::{Client, SessionCaller, blocking, parse_uuid};
use crate::routes::{Endpoint, Verb};
use crate::state::ApiState;

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint::new(Verb::Post, "/session", |route| route.to(start)),
    Endpoint::new(Verb::Get, "/session", |route| route.to(check)),
    Endpoint::new(Verb::Put, "/session/verification", |route| route.to(verify)),
    Endpoint::new(Verb::Put, "/session/extend", |route| route.to(extend)),
    Endpoint::new(Verb::Get, "/sessions", |route| route.to(list)),
    Endpoint::new(Verb::Delete, "/session/{id}", |route| route.to(close)),
];

/// The 202 body shared by login and registration.
pub(crate) fn session_created(issued: IssuedSession) -> HttpResponse {
    HttpResponse::Accepted().json(SessionCreated {
        bearer: issued.bearer.expose().to_owned(),
        session_id: issued.session_id.to_string(),
        expire_at: issued.expires_at.unix_timestamp(),
        ip: issued.ip,
        user_agent: issued.user_agent,
        verification_code_id: issued.code_id.to_string(),
    })
}

/// Logs in
///
/// Starts an unverified session for the account that owns the address and
/// mails a code to that address. An address that belongs to no account gets
/// the same status and body shape, and no mail.
#[utoipa::path(
    post,
    path = "/session",
    context_path = crate::BASE_PATH,
    tag = "sessions",
    operation_id = "start_session",
    request_body = LoginRequest,
    responses(
        (status = 202, description = "An unverified session was started", body = SessionCreated),
        (status = 400, description = "The email is missing or invalid"),
        (status = 429, description = "Too many codes were requested"),
    ),
)]
async fn start(
    state: web::Data<ApiState>,
    Client(client): Client,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let address = EmailAddress::parse(&body.email, Field::Email)?;

    let auth = state.auth.clone();
    let issued = blocking(move || auth.start_session(address, &client)).await?;

    (state.mail_queued)();
    Ok(session_created(issued))
}

/// Verifies a session
///
/// Activates the session that the code was mailed for.
#[utoipa::path(
    put,
    path = "/session/verification",
    context_path = crate::BASE_PATH,
    tag = "sessions",
    operation_id = "verify_session",
    request_body = VerifyRequest,
    responses(
        (status = 202, description = "The session is verified", body = Acknowledged),
        (status = 400, description = "The code is not 6 digits, or `verificationCodeID` is not a UUID"),
        (status = 401, description = "The code is wrong, expired, used or dead, or the code ID is unknown"),
        (status = 429, description = "Too many wrong codes for this account or client address"),
    ),
)]
async fn verify(
    state: web::Data<ApiState>,
    Client(client): Client,
    body: web::Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let code_id = CodeId(parse_uuid(
        &body.verification_code_id,
        Field::VerificationCodeId,
    )?);
    let code = body.code.parse()?;

    let auth = state.auth.clone();
    blocking(move || auth.verify_session(code_id, &code, &client)).await?;

    Ok(HttpResponse::Accepted().json(ACKNOWLEDGED))
}

/// Checks a bearer token
///
/// Returns the session and its user, for a gateway deciding whether a
/// request may pass.
#[utoipa::path(
    get,
    path = "/session",
    context_path = crate::BASE_PATH,
    tag = "sessions",
    operation_id = "check_session",
    responses(
        (status = 200, description = "The bearer token belongs to a verified session", body = SessionCheck),
        (status = 401, description = "The bearer token is missing, malformed, wrong, expired, closed or unverified"),
    ),
    security(("bearer" = [])),
)]
async fn check(SessionCaller(caller): SessionCaller) -> HttpResponse {
    let session = caller.session;
    let user = caller.user;
    HttpResponse::Ok().json(SessionCheck {
        session_id: session.id.to_string(),
        user_id: user.id.to_string(),
        alias: user.alias.as_str().to_owned(),
        full_name: user.full_name.as_str().to_owned(),
        expire_at: session.expires_at.unix_timestamp(),
        ip: session.ip,
        user_agent: session.user_agent,
        verified: true,
        roles: user.roles,
        groups: user.groups,
    })
}

/// Extends the current session
///
/// Moves `expireAt` to now plus the session lifetime.
#[utoipa::path(
    put,
    path = "/session/extend",
    context_path = crate::BASE_PATH,
    tag = "sessions",
    operation_id = "extend_session",
    responses(
        (status = 202, description = "The session was extended", body = SessionExtended),
        (status = 401, description = "The bearer token is missing, malformed, wrong, expired, closed or unverified"),
    ),
    security(("bearer" = [])),
)]
async fn extend(
    state: web::Data<ApiState>,
    SessionCaller(caller): SessionCaller,
) -> Result<HttpResponse, ApiError> {
    let auth = state.auth.clone();
    let expires_at = blocking(move || auth.extend_session(&caller)).await?;

    Ok(HttpResponse::Accepted().json(SessionExtended {
        message: "acknowledged",
        expire_at: expires_at.unix_timestamp(),
    }))
}

/// Lists the caller's sessions
///
/// Lists the verified sessions that have not expired or been closed.
#[utoipa::path(
    get,
    path = "/sessions",
    context_path = crate::BASE_PATH,
    tag = "sessions",
    operation_id = "list_sessions",
    responses(
        (status = 200, description = "The caller's open sessions", body = SessionList),
        (status = 401, description = "The bearer token is missing, malformed, wrong, expired, closed or unverified"),
    ),
    security(("bearer" = [])),
)]
async fn list(
    state: web::Data<ApiState>,
    SessionCaller(caller): SessionCaller,
) -> Result<HttpResponse, ApiError> {
    let current = caller.session.id;
    let auth = state.auth.clone();
    let sessions = blocking(move || auth.list_sessions(&caller)).await?;

    let sessions = sessions
        .into_iter()
        .map(|s| SessionItem {
            session_id: s.id.to_string(),
            ip: s.ip,
            user_agent: s.user_agent,
            expire_at: s.expires_at.unix_timestamp(),
            current: s.id == current,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SessionList { sessions }))
}

/// Closes a session
///
/// Closes one of the caller's own sessions, the current one included.
#[utoipa::path(
    delete,
    path = "/session/{id}",
    context_path = crate::BASE_PATH,
    tag = "sessions",
    operation_id = "close_session",
    params(("id" = Uuid, Path, description = "The session's ID")),
    responses(
        (status = 200, description = "The session is closed", body = Acknowledged),
        (status = 400, description = "The ID is not a UUID"),
        (status = 401, description = "The bearer token is missing, malformed, wrong, expired, closed or unverified"),
        (status = 404, description = "The caller has no session with this ID"),
    ),
    security(("bearer" = [])),
)]
async fn close(
    state: web::Data<ApiState>,
    SessionCaller(caller): SessionCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = SessionId(parse_uuid(&path, Field::Id)?);

    let auth = state.auth.clone();
    blocking(move || auth.close_session(&caller, id)).await?;

    Ok(HttpResponse::Ok().json(ACKNOWLEDGED))
}
