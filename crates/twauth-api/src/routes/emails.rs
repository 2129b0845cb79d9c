//! A user's emails: add, verify, list, prefer and delete.

use actix_web::{HttpResponse, web};
use twauth_domain::Field;
use twauth_domain::model::{CodeId, EmailId};
use twauth_domain::values::EmailAddress;

use crate::dto::{
    ACKNOWLEDGED, AddEmailRequest, EmailCreated, EmailItem, EmailList, PreferEmailRequest,
    VerifyRequest,
};
use crate::error::ApiError;
use crate::extract::{Client, SessionCaller, blocking, parse_uuid};
use crate::routes::resource;
use crate::state::ApiState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/email").route(web::post().to(add)))
        .service(resource("/email/verification").route(web::put().to(verify)))
        .service(resource("/email/preferred").route(web::put().to(prefer)))
        .service(resource("/emails").route(web::get().to(list)))
        .service(resource("/email/{id}").route(web::delete().to(delete)));
}

async fn add(
    state: web::Data<ApiState>,
    SessionCaller(caller): SessionCaller,
    Client(client): Client,
    body: web::Json<AddEmailRequest>,
) -> Result<HttpResponse, ApiError> {
    let address = EmailAddress::parse(&body.address, Field::Address)?;

    let auth = state.auth.clone();
    let (email_id, code_id) = blocking(move || auth.add_email(&caller, address, &client)).await?;

    (state.mail_queued)();
    Ok(HttpResponse::Accepted().json(EmailCreated {
        email_id: email_id.to_string(),
        verification_code_id: code_id.to_string(),
    }))
}

async fn verify(
    state: web::Data<ApiState>,
    SessionCaller(caller): SessionCaller,
    Client(client): Client,
    body: web::Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let code_id = CodeId(parse_uuid(&body.verification_code_id, Field::VerificationCodeId)?);
    let code = body.code.parse()?;

    let auth = state.auth.clone();
    blocking(move || auth.verify_email(&caller, code_id, &code, &client)).await?;

    (state.mail_queued)();
    Ok(HttpResponse::Accepted().json(ACKNOWLEDGED))
}

async fn list(
    state: web::Data<ApiState>,
    SessionCaller(caller): SessionCaller,
) -> Result<HttpResponse, ApiError> {
    let auth = state.auth.clone();
    let emails = blocking(move || auth.list_emails(&caller)).await?;

    let emails = emails
        .into_iter()
        .map(|e| EmailItem {
            id: e.id.to_string(),
            address: e.address.to_string(),
            verified: e.verified,
            preferred: e.preferred,
        })
        .collect();
    Ok(HttpResponse::Ok().json(EmailList { emails }))
}

async fn prefer(
    state: web::Data<ApiState>,
    SessionCaller(caller): SessionCaller,
    Client(client): Client,
    body: web::Json<PreferEmailRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = EmailId(parse_uuid(&body.email_id, Field::EmailId)?);

    let auth = state.auth.clone();
    blocking(move || auth.prefer_email(&caller, id, &client)).await?;

    (state.mail_queued)();
    Ok(HttpResponse::Accepted().json(ACKNOWLEDGED))
}

async fn delete(
    state: web::Data<ApiState>,
    SessionCaller(caller): SessionCaller,
    Client(client): Client,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = EmailId(parse_uuid(&path, Field::Id)?);

    let auth = state.auth.clone();
    blocking(move || auth.delete_email(&caller, id, &client)).await?;

    (state.mail_queued)();
    Ok(HttpResponse::Ok().json(ACKNOWLEDGED))
}
