//! POST /user (register) and GET /user/id/{id} (public alias).

use actix_web::{HttpResponse, web};
use twauth_domain::Field;
use twauth_domain::model::UserId;
use twauth_domain::values::{Alias, EmailAddress, FullName};

use crate::dto::{RegisterRequest, SessionCreated, UserAlias};
use crate::error::ApiError;
use crate::extract::{Client, blocking, parse_uuid};
use crate::routes::{Endpoint, Verb, sessions::session_created};
use crate::state::ApiState;

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint::new(Verb::Post, "/user", |route| route.to(register)),
    Endpoint::new(Verb::Get, "/user/id/{id}", |route| route.to(public_alias)),
];

/// Registers a user
///
/// Creates the user with the address as its first, preferred email, starts
/// an unverified session and mails a code. Verifying that session with
/// `PUT /session/verification` also verifies the email.
#[utoipa::path(
    post,
    path = "/user",
    context_path = crate::BASE_PATH,
    tag = "users",
    operation_id = "register",
    request_body = RegisterRequest,
    responses(
        (status = 202, description = "The user and an unverified session were created", body = SessionCreated),
        (status = 400, description = "A field is missing, or the email, full name or alias is invalid"),
        (status = 409, description = "The email address or the alias is already taken"),
        (status = 429, description = "Too many codes were requested"),
    ),
)]
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

/// Returns a user's public alias
#[utoipa::path(
    get,
    path = "/user/id/{id}",
    context_path = crate::BASE_PATH,
    tag = "users",
    operation_id = "get_user_alias",
    params(("id" = Uuid, Path, description = "The user's ID")),
    responses(
        (status = 200, description = "The user's alias", body = UserAlias),
        (status = 400, description = "The ID is not a UUID"),
        (status = 404, description = "No user has this ID"),
    ),
)]
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
