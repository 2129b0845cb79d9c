//! Key pairs: create, verify, check, list and delete.

use actix_web::{HttpResponse, web};
use twauth_domain::Field;
use twauth_domain::model::{CodeId, KeyPairId};
use twauth_domain::values::KeyName;

use crate::dto::{
    ACKNOWLEDGED, CreateKeyPairRequest, KeyPairCheck, KeyPairCreated, KeyPairItem, KeyPairList,
    VerifyRequest,
};
use crate::error::ApiError;
use crate::extract::{Client, KeyPairCaller, SessionCaller, blocking, parse_uuid};
use crate::routes::resource;
use crate::state::ApiState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/keypair")
            .route(web::post().to(create))
            .route(web::get().to(check)),
    )
    .service(resource("/keypair/verification").route(web::put().to(verify)))
    .service(resource("/keypairs").route(web::get().to(list)))
    .service(resource("/keypair/{id}").route(web::delete().to(delete)));
}

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

async fn verify(
    state: web::Data<ApiState>,
    SessionCaller(caller): SessionCaller,
    body: web::Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let code_id = CodeId(parse_uuid(&body.verification_code_id, Field::VerificationCodeId)?);
    let code = body.code.parse()?;

    let auth = state.auth.clone();
    blocking(move || auth.verify_key_pair(&caller, code_id, &code)).await?;

    Ok(HttpResponse::Accepted().json(ACKNOWLEDGED))
}

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
