//! The HTTP edge of twauth: the Auth API v2 routes under `/api/auth/v2`,
//! the extractors that read credentials and bodies, and the one mapping from
//! errors to responses.
//!
//! Handlers parse input into domain values, run the use case on the
//! blocking pool (stores and bcrypt block), and shape the response.

use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpResponse, web};

pub mod dto;
pub mod error;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod routes;
pub mod state;

pub use error::ApiError;
pub use state::{ApiSettings, ApiState};

/// The path every API route is mounted under.
pub const BASE_PATH: &str = "/api/auth/v2";

/// Answers 404 with the usual error headers for a path no route has.
pub async fn route_not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}

/// Returns a function that mounts the API, its body limits and its 404
/// answer on an actix `App`, for use with `App::configure`.
pub fn configure(state: ApiState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let json = web::JsonConfig::default()
            .limit(state.settings.body_limit)
            .error_handler(extract::json_error);
        let path = web::PathConfig::default()
            .error_handler(|err, _| ApiError::BadRequest(format!("invalid path: {err}")).into());

        cfg.app_data(web::Data::new(state))
            .app_data(json)
            .app_data(path)
            .service(
                web::scope(BASE_PATH)
                    .wrap(
                        DefaultHeaders::new()
                            .add((header::CACHE_CONTROL, HeaderValue::from_static("no-store"))),
                    )
                    .configure(routes::configure)
                    .default_service(web::to(route_not_found)),
            )
            .configure(health::configure)
            .default_service(web::to(route_not_found));
    }
}
