//! One error type for every failed request, mapped once to a response with
//! `x-error`, `x-error-id` and a JSON body.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use twauth_domain::AuthError;
use uuid::Uuid;

/// Longest message sent in `x-error`, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// A failed request: a use case error or a problem with the request itself.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),

    /// The body or a parameter could not be read (400).
    #[error("{0}")]
    BadRequest(String),

    /// The body is not JSON (415).
    #[error("the request body must be application/json")]
    UnsupportedMediaType,

    /// The body is larger than the configured limit (413).
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },

    /// No route has this path (404).
    #[error("no route for this path")]
    RouteNotFound,

    /// The route exists but not with this method (405).
    #[error("method not allowed on this route")]
    MethodNotAllowed,

    /// A readiness check failed (503). `cause` goes to the log only.
    #[error("not ready: {reason}")]
    NotReady { reason: &'static str, cause: String },

    /// A blocking task failed or was cancelled (500).
    #[error("internal error")]
    Internal(String),
}

/// The body of every error response; the same message and id are in the
/// `x-error` and `x-error-id` headers.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody<'a> {
    /// A message naming what failed and on which field or value.
    error: &'a str,
    /// A fresh ID for this occurrence, also in the server's log line about it.
    #[serde(rename = "errorID")]
    #[schema(format = Uuid)]
    error_id: String,
}

/// Makes a message safe for a header and a log: printable ASCII only, no
/// CR or LF, and bounded in length.
pub fn sanitize_message(message: &str) -> String {
    let mut out: String = message
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(MAX_MESSAGE_CHARS)
        .collect();
    if message.chars().count() > MAX_MESSAGE_CHARS {
        out.push_str("...");
    }
    out
}

impl ApiError {
    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Auth(AuthError::TooManyRequests { retry_after, .. }) => {
                Some(retry_after.as_secs().max(1))
            }
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Auth(err) => match err {
                AuthError::Invalid { .. } => StatusCode::BAD_REQUEST,
                AuthError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
                AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
                AuthError::NotFound(_) => StatusCode::NOT_FOUND,
                AuthError::Conflict(_) => StatusCode::CONFLICT,
                AuthError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
                AuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                AuthError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotReady { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let id = Uuid::new_v4();
        let message = sanitize_message(&self.to_string());

        if status.is_server_error() {
            // The cause chain goes to the log only; the client gets the id.
            let cause = match self {
                ApiError::Auth(AuthError::Internal(source) | AuthError::Unavailable(source)) => {
                    source.to_string()
                }
                ApiError::Internal(cause) | ApiError::NotReady { cause, .. } => cause.clone(),
                _ => String::new(),
            };
            tracing::error!(error.id = %id, http.status = status.as_u16(), error.cause = %cause, "{message}");
        } else {
            tracing::info!(error.id = %id, http.status = status.as_u16(), "{message}");
        }

        let mut response = HttpResponse::build(status);
        response
            .insert_header(("x-error", message.as_str()))
            .insert_header(("x-error-id", id.to_string()))
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if let Some(seconds) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(ErrorBody {
            error: &message,
            error_id: id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    #[test]
    fn sanitize_removes_line_breaks_and_non_ascii() {
        assert_eq!(sanitize_message("a\r\nb\u{0}é"), "a??b??");
    }

    #[test]
    fn sanitize_bounds_length() {
        let long = "x".repeat(1000);
        assert_eq!(sanitize_message(&long).len(), MAX_MESSAGE_CHARS + 3);
    }

    #[actix_web::test]
    async fn error_response_carries_headers_and_body() {
        let response = ApiError::BadRequest("invalid email".to_owned()).error_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let message = response
            .headers()
            .get("x-error")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let id = response
            .headers()
            .get("x-error-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(message, "invalid email");
        assert!(Uuid::parse_str(&id).is_ok());

        let body = to_bytes(response.into_body()).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "invalid email");
        assert_eq!(json["errorID"], id);
    }

    #[test]
    fn too_many_requests_sets_retry_after() {
        let err = ApiError::Auth(AuthError::TooManyRequests {
            message: "too many codes",
            retry_after: std::time::Duration::from_secs(42),
        });
        let response = err.error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get("retry-after").unwrap(), "42");
    }
}
