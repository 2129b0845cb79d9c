//! Handlers, one module per resource, mounted under `/api/auth/v2`.
//!
//! Each module lists its routes in one `ENDPOINTS` table, and the server
//! mounts routes only from these tables. The OpenAPI test compares the
//! tables with the document, so a route added here without a
//! `#[utoipa::path]` in [`crate::openapi::ApiDoc`] fails that test.

use actix_web::http::Method;
use actix_web::{Route, web};

use crate::error::ApiError;

pub mod docs;
pub mod emails;
pub mod gateway;
pub mod keypairs;
pub mod sessions;
pub mod users;

/// The tables of every route under the base path, in mounting order.
const API_TABLES: &[&[Endpoint]] = &[
    users::ENDPOINTS,
    sessions::ENDPOINTS,
    emails::ENDPOINTS,
    keypairs::ENDPOINTS,
    gateway::ENDPOINTS,
    docs::ENDPOINTS,
];

/// The methods that the document lists for a route that serves any method.
pub const ANY_METHODS: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::HEAD,
    Method::OPTIONS,
    Method::TRACE,
];

/// The HTTP method that a route serves, or `Any` for a route that serves
/// every method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    Get,
    Post,
    Put,
    Delete,
    Any,
}

impl Verb {
    /// The method that the route's guard matches, or `None` for no guard.
    pub fn method(self) -> Option<Method> {
        match self {
            Verb::Get => Some(Method::GET),
            Verb::Post => Some(Method::POST),
            Verb::Put => Some(Method::PUT),
            Verb::Delete => Some(Method::DELETE),
            Verb::Any => None,
        }
    }

    /// The methods that the document lists for this verb.
    pub fn documented_methods(self) -> Vec<Method> {
        match self.method() {
            Some(method) => vec![method],
            None => ANY_METHODS.to_vec(),
        }
    }
}

/// One route: a method, a path relative to where its table is mounted, and
/// a function that attaches the handler to a route guarded by that method.
pub struct Endpoint {
    pub verb: Verb,
    pub path: &'static str,
    attach: fn(Route) -> Route,
}

impl Endpoint {
    pub(crate) const fn new(verb: Verb, path: &'static str, attach: fn(Route) -> Route) -> Self {
        Endpoint { verb, path, attach }
    }
}

/// A route as the server mounts it: the verb and the full path, in
/// OpenAPI form (`{original}` for the actix pattern `{original:.*}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MountedRoute {
    pub verb: Verb,
    pub path: String,
}

/// Lists every route mounted under the base path, from the same tables
/// that [`configure`] mounts.
///
/// NOTE: the health probes outside the base path are mounted by
/// [`crate::configure`] directly and are not in these tables or in the
/// OpenAPI document.
pub fn mounted_routes() -> Vec<MountedRoute> {
    API_TABLES
        .iter()
        .flat_map(|table| table.iter())
        .map(|endpoint| MountedRoute {
            verb: endpoint.verb,
            path: openapi_path(&format!("{}{}", crate::BASE_PATH, endpoint.path)),
        })
        .collect()
}

/// Drops the regular expression from each `{name:regex}` segment of an
/// actix path pattern, which OpenAPI writes as `{name}`.
fn openapi_path(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|segment| match segment.split_once(':') {
            Some((name, _)) if segment.starts_with('{') => format!("{name}}}"),
            _ => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Answers 405 for a known path with a method it does not serve.
async fn method_not_allowed() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// A resource whose unknown methods answer 405 with the usual error headers.
pub(crate) fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// Mounts `endpoints` on `cfg` as one resource per path, with one route per
/// method.
///
/// Resources are mounted in the order their paths first appear, and actix
/// tries them in that order, so a table lists a fixed path such as
/// `/session/verification` before a pattern such as `/session/{id}` that
/// also matches it.
pub(crate) fn mount<'a>(
    cfg: &mut web::ServiceConfig,
    endpoints: impl IntoIterator<Item = &'a Endpoint>,
) {
    let endpoints: Vec<&Endpoint> = endpoints.into_iter().collect();
    let mut paths: Vec<&'static str> = Vec::new();
    for endpoint in &endpoints {
        if !paths.contains(&endpoint.path) {
            paths.push(endpoint.path);
        }
    }

    for path in paths {
        let mut resource = resource(path);
        for endpoint in endpoints.iter().filter(|e| e.path == path) {
            let route = match endpoint.verb.method() {
                Some(method) => web::route().method(method),
                None => web::route(),
            };
            resource = resource.route((endpoint.attach)(route));
        }
        cfg.service(resource);
    }
}

/// Mounts every route of the API on `cfg`, relative to the base path.
pub fn configure(cfg: &mut web::ServiceConfig) {
    mount(cfg, API_TABLES.iter().flat_map(|table| table.iter()));
}
