//! POST /user (register) and GET /user/id/{id} (public alias).

use actix_web::{HttpResponse, web};
use twauth_domain::Field;
use twauth_domain::model::UserId;
use twauth_domain::values::{Alias, EmailAddress, FullName};

use crate::dto::{RegisterRequest, UserAlias};
use crate::error::ApiError;
use crate::extract::{Client, blocking, parse_uuid};
use crate::routes::{resource, sessions::session_created};
use crate::state::ApiState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/user").route(web::post().to(register)))
        .service(resource("/user/id/{id}").route(web::get().to(public_alias)));
}

async fn register(
    state: web::Data<ApiState>,
    Client(client): Client,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let address = EmailAddress::parse(&body.email, Field::Email)?;
    let full_name = FullName::parse(&body.full_name)?;
    let alias = Alias::parse(&body.alias)?;

    let auth = state.auth.clone();
    let issued = blocking(move || auth.register(address, full_name, alias, &client)).await?;

    (state.mail_queued)();
    Ok(session_created(issued))
}

async fn public_alias(
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = UserId(parse_uuid(&path, Field::Id)?);

    let auth = state.auth.clone();
    let user = blocking(move || auth.find_user(id)).await?;

    Ok(HttpResponse::Ok().json(UserAlias {
        alias: user.alias.as_str().to_owned(),
    }))
}
