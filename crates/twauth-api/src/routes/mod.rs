//! Handlers, one module per resource, mounted under `/api/auth/v2`.

use actix_web::web;

use crate::error::ApiError;

pub mod emails;
pub mod gateway;
pub mod keypairs;
pub mod sessions;
pub mod users;

/// Answers 405 for a known path with a method it does not serve.
async fn method_not_allowed() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// A resource whose unknown methods answer 405 with the usual error headers.
pub(crate) fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// Mounts every route of the API on `cfg`, relative to the base path.
pub fn configure(cfg: &mut web::ServiceConfig) {
    users::configure(cfg);
    sessions::configure(cfg);
    emails::configure(cfg);
    keypairs::configure(cfg);
    gateway::configure(cfg);
}
