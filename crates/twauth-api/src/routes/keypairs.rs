//! Key pairs: create, verify, check, list and delete.

use actix_web::{HttpResponse, web};
use twauth_domain::Field;
use twauth_domain::model::{CodeId, KeyPairId};
use twauth_domain::values::KeyName;

use crate::dto::{
    ACKNOWLEDGED, Acknowledged, CreateKeyPairRequest, KeyPairCheck, KeyPairCreated, KeyPairItem,
    KeyPairList, VerifyRequest,
};
use crate::error::ApiError;
use crate::extract::{Client, KeyPairCaller, SessionCaller, blocking, parse_uuid};
use crate::routes::{Endpoint, Verb};
use crate::state::ApiState;

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint::new(Verb::Post, "/keypair", |route| route.to(create)),
    Endpoint::new(Verb::Get, "/keypair", |route| route.to(check)),
    Endpoint::new(Verb::Put, "/keypair/verification", |route| route.to(verify)),
    Endpoint::new(Verb::Get, "/keypairs", |route| route.to(list)),
    Endpoint::new(Verb::Delete, "/keypair/{id}", |route| route.to(delete)),
];

/// Creates a key pair
///
/// Mails a code to the preferred email. The secret is in this response only.
#[utoipa::path(
    post,
    path = "/keypair",
    context_path = crate::BASE_PATH,
    tag = "keypairs",
    operation_id = "create_key_pair",
    request_body = CreateKeyPairRequest,
    responses(
        (status = 202, description = "The key pair was created, unverified", body = KeyPairCreated),
        (status = 400, description = "`name` or `days` is missing or invalid"),
        (status = 401, description = "The bearer token is missing, malformed, wrong, expired, closed or unverified"),
        (status = 429, description = "Too many codes were requested"),
    ),
    security(("bearer" = [])),
)]
async fn create(
    state: web::Data<ApiState>,
    SessionCaller(caller): SessionCaller,
    Client(client): Client,
    body: web::Json<CreateKeyPairRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = KeyName::parse(&body.name)?;
    let days = body.days;

    let auth = state.auth.clone();
    let issued = blocking(move || auth.create_key_pair(&caller, name, days, &client)).await?;

    (state.mail_queued)();
    let key = issued.key_pair;
    Ok(HttpResponse::Accepted().json(KeyPairCreated {
        api_key: key.api_key,
        api_secret: issued.secret.expose().to_owned(),
        key_id: key.id.to_string(),
        key_name: key.name.as_str().to_owned(),
        expire_at: key.expires_at.unix_timestamp(),
        verified: false,
        verification_code_id: issued.code_id.to_string(),
    }))
}

/// Verifies a key pair
#[utoipa::path(
    put,
    path = "/keypair/verification",
    context_path = crate::BASE_PATH,
    tag = "keypairs",
    operation_id = "verify_key_pair",
    request_body = VerifyRequest,
    responses(
        (status = 202, description = "The key pair is verified", body = Acknowledged),
        (status = 400, description = "The code is not 6 digits, or `verificationCodeID` is not a UUID"),
        (status = 401, description = "The bearer token is not valid, or the code is wrong, expired, used, dead or another user's"),
        (status = 429, description = "Too many wrong codes for this account or client address"),
    ),
    security(("bearer" = [])),
)]
async fn verify(
    state: web::Data<ApiState>,
    SessionCaller(caller): SessionCaller,
    body: web::Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let code_id = CodeId(parse_uuid(
        &body.verification_code_id,
        Field::VerificationCodeId,
    )?);
    let code = body.code.parse()?;

    let auth = state.auth.clone();
    blocking(move || auth.verify_key_pair(&caller, code_id, &code)).await?;

    Ok(HttpResponse::Accepted().json(ACKNOWLEDGED))
}

/// Checks a key pair
///
/// Returns the key pair and its owner, for a gateway deciding whether a
/// request may pass.
#[utoipa::path(
    get,
    path = "/keypair",
    context_path = crate::BASE_PATH,
    tag = "keypairs",
    operation_id = "check_key_pair",
    responses(
        (status = 200, description = "The key pair is verified and valid", body = KeyPairCheck),
        (status = 401, description = "A header is missing, the secret is wrong, or the key is unknown, expired, deleted or unverified"),
    ),
    security(("apiKey" = [], "apiSecret" = [])),
)]
async fn check(KeyPairCaller(caller): KeyPairCaller) -> HttpResponse {
    let key = caller.key_pair;
    let user = caller.user;
    HttpResponse::Ok().json(KeyPairCheck {
        api_key: key.api_key,
        key_id: key.id.to_string(),
        key_name: key.name.as_str().to_owned(),
        expire_at: key.expires_at.unix_timestamp(),
        verified: true,
        user_id: user.id.to_string(),
        user_name: user.full_name.as_str().to_owned(),
        user_alias: user.alias.as_str().to_owned(),
        roles: user.roles,
        groups: user.groups,
    })
}

/// Lists the caller's key pairs
#[utoipa::path(
    get,
    path = "/keypairs",
    context_path = crate::BASE_PATH,
    tag = "keypairs",
    operation_id = "list_key_pairs",
    responses(
        (status = 200, description = "The caller's key pairs, without secrets", body = KeyPairList),
        (status = 401, description = "The bearer token is missing, malformed, wrong, expired, closed or unverified"),
    ),
    security(("bearer" = [])),
)]
async fn list(
    state: web::Data<ApiState>,
    SessionCaller(caller): SessionCaller,
) -> Result<HttpResponse, ApiError> {
    let auth = state.auth.clone();
    let keys = blocking(move || auth.list_key_pairs(&caller)).await?;

    let keys = keys
        .into_iter()
        .map(|k| KeyPairItem {
            api_key: k.api_key,
            key_id: k.id.to_string(),
            key_name: k.name.as_str().to_owned(),
            expire_at: k.expires_at.unix_timestamp(),
            verified: k.verified_at.is_some(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(KeyPairList { keys }))
}

/// Deletes a key pair
#[utoipa::path(
    delete,
    path = "/keypair/{id}",
    context_path = crate::BASE_PATH,
    tag = "keypairs",
    operation_id = "delete_key_pair",
    params(("id" = Uuid, Path, description = "The key pair's ID")),
    responses(
        (status = 200, description = "The key pair was deleted", body = Acknowledged),
        (status = 400, description = "The ID is not a UUID"),
        (status = 401, description = "The bearer token is missing, malformed, wrong, expired, closed or unverified"),
        (status = 404, description = "The caller has no key pair with this ID"),
    ),
    security(("bearer" = [])),
)]
async fn delete(
    state: web::Data<ApiState>,
    SessionCaller(caller): SessionCaller,
    Client(client): Client,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = KeyPairId(parse_uuid(&path, Field::Id)?);

    let auth = state.auth.clone();
    blocking(move || auth.delete_key_pair(&caller, id, &client)).await?;

    (state.mail_queued)();
    Ok(HttpResponse::Ok().json(ACKNOWLEDGED))
}
