//! Sessions: log in, verify, check, extend, list and close.

use actix_web::{HttpResponse, web};
use twauth_domain::Field;
use twauth_domain::model::{CodeId, SessionId};
use twauth_domain::service::IssuedSession;
use twauth_domain::values::EmailAddress;

use crate::dto::{
    ACKNOWLEDGED, LoginRequest, SessionCheck, SessionCreated, SessionExtended, SessionItem,
    SessionList, VerifyRequest,
};
use crate::error::ApiError;
use crate::extract::{Client, SessionCaller, blocking, parse_uuid};
use crate::routes::resource;
use crate::state::ApiState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/session")
            .route(web::post().to(start))
            .route(web::get().to(check)),
    )
    .service(resource("/session/verification").route(web::put().to(verify)))
    .service(resource("/session/extend").route(web::put().to(extend)))
    .service(resource("/sessions").route(web::get().to(list)))
    .service(resource("/session/{id}").route(web::delete().to(close)));
}

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
