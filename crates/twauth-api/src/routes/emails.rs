//! A user's emails: add, verify, list, prefer and delete.

use actix_web::{HttpResponse, web};
use twauth_domain::Field;
use twauth_domain::model::{CodeId, EmailId};
use twauth_domain::values::EmailAddress;

use crate::dto::{
    ACKNOWLEDGED, Acknowledged, AddEmailRequest, EmailCreated, EmailItem, EmailList,
    PreferEmailRequest, VerifyRequest,
};
use crate::error::ApiError;
use crate::extract::{Client, SessionCaller, blocking, parse_uuid};
use crate::routes::{Endpoint, Verb};
use crate::state::ApiState;

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint::new(Verb::Post, "/email", |route| route.to(add)),
    Endpoint::new(Verb::Put, "/email/verification", |route| route.to(verify)),
    Endpoint::new(Verb::Put, "/email/preferred", |route| route.to(prefer)),
    Endpoint::new(Verb::Get, "/emails", |route| route.to(list)),
    Endpoint::new(Verb::Delete, "/email/{id}", |route| route.to(delete)),
];

/// Adds an email address
///
/// Creates an unverified email on the caller's account and mails a code to
/// the new address.
#[utoipa::path(
    post,
    path = "/email",
    context_path = crate::BASE_PATH,
    tag = "emails",
    operation_id = "add_email",
    request_body = AddEmailRequest,
    responses(
        (status = 202, description = "The email was added, unverified", body = EmailCreated),
        (status = 400, description = "The address is missing or invalid"),
        (status = 401, description = "The bearer token is missing, malformed, wrong, expired, closed or unverified"),
        (status = 409, description = "The address is already on an account"),
        (status = 429, description = "Too many codes were requested"),
    ),
    security(("bearer" = [])),
)]
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

/// Verifies an email address
#[utoipa::path(
    put,
    path = "/email/verification",
    context_path = crate::BASE_PATH,
    tag = "emails",
    operation_id = "verify_email",
    request_body = VerifyRequest,
    responses(
        (status = 202, description = "The email is verified", body = Acknowledged),
        (status = 400, description = "The code is not 6 digits, or `verificationCodeID` is not a UUID"),
        (status = 401, description = "The bearer token is not valid, or the code is wrong, expired, used, dead or another user's"),
        (status = 429, description = "Too many wrong codes for this account or client address"),
    ),
    security(("bearer" = [])),
)]
async fn verify(
    state: web::Data<ApiState>,
    SessionCaller(caller): SessionCaller,
    Client(client): Client,
    body: web::Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let code_id = CodeId(parse_uuid(
        &body.verification_code_id,
        Field::VerificationCodeId,
    )?);
    let code = body.code.parse()?;

    let auth = state.auth.clone();
    blocking(move || auth.verify_email(&caller, code_id, &code, &client)).await?;

    (state.mail_queued)();
    Ok(HttpResponse::Accepted().json(ACKNOWLEDGED))
}

/// Lists the caller's email addresses
#[utoipa::path(
    get,
    path = "/emails",
    context_path = crate::BASE_PATH,
    tag = "emails",
    operation_id = "list_emails",
    responses(
        (status = 200, description = "The caller's emails", body = EmailList),
        (status = 401, description = "The bearer token is missing, malformed, wrong, expired, closed or unverified"),
    ),
    security(("bearer" = [])),
)]
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

/// Makes an email address the preferred one
///
/// Codes for key pairs, and notices, go to the preferred address.
#[utoipa::path(
    put,
    path = "/email/preferred",
    context_path = crate::BASE_PATH,
    tag = "emails",
    operation_id = "prefer_email",
    request_body = PreferEmailRequest,
    responses(
        (status = 202, description = "The email is now the preferred one", body = Acknowledged),
        (status = 400, description = "`emailID` is missing or not a UUID"),
        (status = 401, description = "The bearer token is missing, malformed, wrong, expired, closed or unverified"),
        (status = 404, description = "The caller has no email with this ID"),
        (status = 409, description = "The email is not verified"),
    ),
    security(("bearer" = [])),
)]
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

/// Deletes an email address
///
/// The preferred email cannot be deleted; prefer another one first.
#[utoipa::path(
    delete,
    path = "/email/{id}",
    context_path = crate::BASE_PATH,
    tag = "emails",
    operation_id = "delete_email",
    params(("id" = Uuid, Path, description = "The email's ID")),
    responses(
        (status = 200, description = "The email was deleted", body = Acknowledged),
        (status = 400, description = "The ID is not a UUID"),
        (status = 401, description = "The bearer token is missing, malformed, wrong, expired, closed or unverified"),
        (status = 404, description = "The caller has no email with this ID"),
        (status = 409, description = "The email is the preferred one"),
    ),
    security(("bearer" = [])),
)]
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
