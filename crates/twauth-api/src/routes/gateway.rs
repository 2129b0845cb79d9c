//! The decision endpoint for reverse proxies: `/authorize` decides whether
//! the original request may pass, and returns who made it.
//!
//! The endpoint accepts every method, because some gateways (nginx's
//! `auth_request`, Envoy's `ext_authz`) send the check with the method of the
//! original request. The original method and path come from, in this order:
//! 1. `X-Original-Method` and `X-Original-URI` (nginx);
//! 2. `X-Forwarded-Method` and `X-Forwarded-Uri` (Traefik `ForwardAuth`);
//! 3. the check request's own method and path, less the configured prefix
//!    (Envoy `ext_authz` with `path_prefix`, which appends the original path).
//!
//! A request that passes gets 200 with `user-id`, `groups` and `roles`
//! headers (the last two comma-separated) unless the route is public or no
//! caller was identified. A denied one gets 401 or 403 with the usual
//! `x-error` and `x-error-id`.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use twauth_domain::AuthError;
use twauth_domain::gateway::{Admission, RequestPath};
use twauth_domain::model::User;

use crate::error::ApiError;
use crate::extract::{bearer_token, check_key_pair, check_session, key_pair_headers};
use crate::metrics::CredentialKind;
use crate::routes::{Endpoint, Verb};
use crate::state::ApiState;

/// The response header with the caller's user id.
pub const USER_ID_HEADER: &str = "user-id";
/// The response header with the caller's groups, comma-separated.
pub const GROUPS_HEADER: &str = "groups";
/// The response header with the caller's roles, comma-separated.
pub const ROLES_HEADER: &str = "roles";

/// Maximum length of the original method, in bytes.
const MAX_METHOD_LEN: usize = 32;

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint::new(Verb::Any, "/authorize", |route| route.to(authorize)),
    Endpoint::new(Verb::Any, "/authorize/{original:.*}", |route| {
        route.to(authorize_appended)
    }),
];

/// Decides whether a proxied request may pass
///
/// Accepts every method; the document lists the standard ones. The original
/// method and URI come from `X-Original-Method` and `X-Original-URI`
/// (nginx), else `X-Forwarded-Method` and `X-Forwarded-Uri` (Traefik).
#[utoipa::path(
    method(get, post, put, delete, patch, head, options, trace),
    path = "/authorize",
    context_path = crate::BASE_PATH,
    tag = "gateway",
    operation_id = "authorize",
    params(
        ("x-original-method" = Option<String>, Header, description = "The original request's method (nginx)"),
        ("x-original-uri" = Option<String>, Header, description = "The original request's path and query (nginx)"),
        ("x-forwarded-method" = Option<String>, Header, description = "The original request's method (Traefik)"),
        ("x-forwarded-uri" = Option<String>, Header, description = "The original request's path and query (Traefik)"),
    ),
    responses(
        (status = 200, description = "The request may pass",
            headers(
                ("user-id" = String, description = "The caller's user ID, absent when the route is public or no caller was identified"),
                ("groups" = String, description = "The caller's groups, comma-separated"),
                ("roles" = String, description = "The caller's roles, comma-separated"),
            )),
        (status = 400, description = "The original method or URI is missing or invalid"),
        (status = 401, description = "The route needs a caller and the credential is missing or not valid"),
        (status = 403, description = "The caller lacks a role that the route needs"),
    ),
    security((), ("bearer" = []), ("apiKey" = [], "apiSecret" = [])),
)]
async fn authorize(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    decide(req, state).await
}

/// Decides whether a proxied request may pass, given its path after the prefix
///
/// Accepts every method; the document lists the standard ones. Envoy's
/// `ext_authz` with `path_prefix` sends the original method and appends the
/// original path and query. The nginx and Traefik headers take precedence
/// when present.
#[utoipa::path(
    method(get, post, put, delete, patch, head, options, trace),
    path = "/authorize/{original}",
    context_path = crate::BASE_PATH,
    tag = "gateway",
    operation_id = "authorize_appended",
    params(
        ("original" = String, Path, description = "The original request's path, slashes included", example = "orders/7"),
    ),
    responses(
        (status = 200, description = "The request may pass",
            headers(
                ("user-id" = String, description = "The caller's user ID, absent when the route is public or no caller was identified"),
                ("groups" = String, description = "The caller's groups, comma-separated"),
                ("roles" = String, description = "The caller's roles, comma-separated"),
            )),
        (status = 400, description = "The original path is invalid"),
        (status = 401, description = "The route needs a caller and the credential is missing or not valid"),
        (status = 403, description = "The caller lacks a role that the route needs"),
    ),
    security((), ("bearer" = []), ("apiKey" = [], "apiSecret" = [])),
)]
async fn authorize_appended(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    decide(req, state).await
}

async fn decide(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let (method, path) = original_request(&req, &state.gateway.path_prefix)?;

    let table = state.gateway.table();
    let requirement = table.requirement(&method, &path);

    let caller = if requirement.reads_credential() {
        identify(&req, &state).await?
    } else {
        None
    };
    let roles = caller.as_ref().map(|user| user.roles.as_slice());
    let admission = requirement.admit(roles)?;

    let mut response = HttpResponse::Ok();
    match (admission, caller) {
        (Admission::Identified, Some(user)) => {
            tracing::debug!(
                gateway.method = %method,
                gateway.path = %path,
                user.id = %user.id,
                "gateway request allowed"
            );
            response
                .insert_header((USER_ID_HEADER, user.id.to_string()))
                .insert_header((GROUPS_HEADER, user.groups.join(",")))
                .insert_header((ROLES_HEADER, user.roles.join(",")));
        }
        _ => {
            tracing::debug!(
                gateway.method = %method,
                gateway.path = %path,
                "gateway request allowed without identity"
            );
        }
    }
    Ok(response.finish())
}

/// Reads the original method (upper-cased) and the normalized original path.
fn original_request(req: &HttpRequest, prefix: &str) -> Result<(String, RequestPath), ApiError> {
    let header = |name: &str| req.headers().get(name).map(|value| value.to_str());
    let forwarded = [
        ("x-original-uri", "x-original-method"),
        ("x-forwarded-uri", "x-forwarded-method"),
    ]
    .into_iter()
    .find_map(|(uri, method)| Some((uri, header(uri)?, header(method))));

    let (raw_path, raw_method) = match forwarded {
        Some((name, uri, method)) => {
            let uri = uri.map_err(|_| bad_request(format!("{name} is not visible ASCII")))?;
            let method = match method {
                Some(value) => value
                    .map_err(|_| bad_request("the original method is not visible ASCII"))?
                    .to_owned(),
                None => req.method().to_string(),
            };
            (uri.to_owned(), method)
        }
        None => (
            own_path_without_prefix(req, prefix)?,
            req.method().to_string(),
        ),
    };

    let method = parse_method(&raw_method)?;
    let path = RequestPath::parse(&raw_path)
        .map_err(|err| bad_request(format!("invalid original URI: {err}")))?;
    Ok((method, path))
}

/// Returns the original path of an Envoy check: the request path after
/// `prefix`, with its query.
fn own_path_without_prefix(req: &HttpRequest, prefix: &str) -> Result<String, ApiError> {
    let missing = || {
        bad_request(format!(
            "no original request: send X-Original-URI (nginx) or X-Forwarded-Uri (Traefik), \
             or append the original path to {prefix} (Envoy path_prefix)"
        ))
    };
    let rest = req.path().strip_prefix(prefix).ok_or_else(missing)?;
    if !rest.starts_with('/') {
        return Err(missing());
    }
    let query = req.query_string();
    Ok(if query.is_empty() {
        rest.to_owned()
    } else {
        format!("{rest}?{query}")
    })
}

fn parse_method(raw: &str) -> Result<String, ApiError> {
    // RFC 9110 `token` characters.
    let valid = !raw.is_empty()
        && raw.len() <= MAX_METHOD_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(bad_request("invalid original method"));
    }
    Ok(Method::from_bytes(raw.to_ascii_uppercase().as_bytes())
        .map_err(|_| bad_request("invalid original method"))?
        .to_string())
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

/// Finds the verified caller from a bearer token or, without one, a key
/// pair. Returns `None` for a request with neither, and `None` for a
/// rejected credential too, because [`Requirement::admit`] turns a missing
/// caller into 401 wherever one is needed, and optional routes let a
/// request with a stale credential through anonymously.
///
/// [`Requirement::admit`]: twauth_domain::gateway::Requirement::admit
async fn identify(req: &HttpRequest, state: &ApiState) -> Result<Option<User>, ApiError> {
    let auth = state.auth.clone();
    let found = if let Some(token) = bearer_token(req) {
        let found = check_session(auth, token).await.map(|found| found.user);
        state
            .metrics
            .credential_checked(CredentialKind::Session, &found);
        found
    } else if let Some((key, secret)) = key_pair_headers(req) {
        let found = check_key_pair(auth, key, secret)
            .await
            .map(|found| found.user);
        state
            .metrics
            .credential_checked(CredentialKind::KeyPair, &found);
        found
    } else {
        return Ok(None);
    };
    match found {
        Ok(user) => Ok(Some(user)),
        Err(ApiError::Auth(AuthError::Unauthorized(_))) => Ok(None),
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    const PREFIX: &str = "/api/auth/v2/authorize";

    fn resolve(req: TestRequest) -> Result<(String, String), String> {
        original_request(&req.to_http_request(), PREFIX)
            .map(|(method, path)| (method, path.to_string()))
            .map_err(|err| err.to_string())
    }

    #[test]
    fn original_request_prefers_nginx_then_traefik_headers() {
        let nginx = TestRequest::get()
            .uri(PREFIX)
            .insert_header(("x-original-method", "POST"))
            .insert_header(("x-original-uri", "/orders?x=1"))
            .insert_header(("x-forwarded-method", "GET"))
            .insert_header(("x-forwarded-uri", "/public"));
        assert_eq!(
            resolve(nginx),
            Ok(("POST".to_owned(), "/orders".to_owned()))
        );

        let traefik = TestRequest::get()
            .uri(PREFIX)
            .insert_header(("x-forwarded-method", "delete"))
            .insert_header(("x-forwarded-uri", "/orders/7"));
        assert_eq!(
            resolve(traefik),
            Ok(("DELETE".to_owned(), "/orders/7".to_owned()))
        );

        let without_method = TestRequest::put()
            .uri(PREFIX)
            .insert_header(("x-original-uri", "/a"));
        assert_eq!(
            resolve(without_method),
            Ok(("PUT".to_owned(), "/a".to_owned()))
        );
    }

    #[test]
    fn original_request_strips_prefix_for_envoy() {
        let envoy = TestRequest::patch().uri(&format!("{PREFIX}/orders/7?page=2"));
        assert_eq!(
            resolve(envoy),
            Ok(("PATCH".to_owned(), "/orders/7".to_owned()))
        );

        let root = TestRequest::get().uri(&format!("{PREFIX}/"));
        assert_eq!(resolve(root), Ok(("GET".to_owned(), "/".to_owned())));
    }

    #[test]
    fn original_request_rejects_missing_or_bad_input() {
        let bare = TestRequest::get().uri(PREFIX);
        assert!(
            resolve(bare)
                .unwrap_err()
                .starts_with("no original request")
        );

        let glued = TestRequest::get().uri(&format!("{PREFIX}x/orders"));
        assert!(
            resolve(glued)
                .unwrap_err()
                .starts_with("no original request")
        );

        let bad_method = TestRequest::get()
            .uri(PREFIX)
            .insert_header(("x-original-method", "GE T"))
            .insert_header(("x-original-uri", "/a"));
        assert_eq!(resolve(bad_method).unwrap_err(), "invalid original method");

        let encoded_slash = TestRequest::get()
            .uri(PREFIX)
            .insert_header(("x-original-uri", "/a%2fb"));
        assert!(
            resolve(encoded_slash)
                .unwrap_err()
                .starts_with("invalid original URI")
        );
    }
}
