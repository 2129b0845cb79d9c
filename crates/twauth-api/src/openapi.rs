//! The OpenAPI 3.1 description of the server, generated from the
//! `#[utoipa::path]` attributes on the handlers and the `ToSchema` types in
//! [`crate::dto`].
//!
//! It covers the routes under `/api/auth/v2`. Paths in the document are
//! full paths, `/api/auth/v2` included. The
//! modifiers add what every operation shares, so the handlers list only
//! their own statuses.

use std::collections::HashMap;

use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use crate::dto;
use crate::error::ErrorBody;
use crate::routes;

/// The OpenAPI document of every route under the base path.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "twauth Auth API v2",
        description = "Passwordless authentication: one-time codes by email, bearer sessions and API key pairs.",
    ),
    paths(
        routes::users::register,
        routes::users::public_alias,
        routes::sessions::start,
        routes::sessions::verify,
        routes::sessions::check,
        routes::sessions::extend,
        routes::sessions::list,
        routes::sessions::close,
        routes::emails::add,
        routes::emails::verify,
        routes::emails::list,
        routes::emails::prefer,
        routes::emails::delete,
        routes::keypairs::create,
        routes::keypairs::verify,
        routes::keypairs::check,
        routes::keypairs::list,
        routes::keypairs::delete,
        routes::gateway::authorize,
        routes::gateway::authorize_appended,
        routes::docs::openapi_json,
        routes::docs::docs_page,
        routes::docs::docs_file,
    ),
    components(schemas(ErrorBody, dto::Acknowledged)),
    modifiers(&SecuritySchemes, &SharedResponses, &ErrorResponses, &UniqueOperationIds),
    tags(
        (name = "users", description = "Registration and public user data"),
        (name = "sessions", description = "Log in with a mailed code and manage bearer sessions"),
        (name = "emails", description = "The caller's email addresses"),
        (name = "keypairs", description = "API key pairs for programs"),
        (name = "gateway", description = "The decision endpoint for reverse proxies"),
        (name = "documentation", description = "This document and the page that renders it"),
    ),
)]
pub struct ApiDoc;

/// Names of the security schemes, as the handlers' `security` requirements
/// spell them. A key pair sends both `API_KEY` and `API_SECRET`.
const BEARER: &str = "bearer";
const API_KEY: &str = "apiKey";
const API_SECRET: &str = "apiSecret";

/// Tags of operations that touch no database and carry no request body.
const STATIC_TAGS: &[&str] = &["documentation"];

/// Adds the bearer scheme and the `api-key` and `api-secret` header schemes.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer <token>` with the token of a verified session",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "api-key",
                "The key of a verified key pair, sent together with `api-secret`",
            ))),
        );
        components.add_security_scheme(
            API_SECRET,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "api-secret",
                "The secret of the key pair named in `api-key`",
            ))),
        );
    }
}

/// Adds the statuses that every API operation can return: 500 and 503, and
/// 413 and 415 where the operation reads a JSON body.
struct SharedResponses;

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (_, operation) in operations_mut(openapi) {
            let is_static = operation
                .tags
                .iter()
                .flatten()
                .any(|tag| STATIC_TAGS.contains(&tag.as_str()));
            if is_static {
                continue;
            }

            let mut shared = vec![
                (
                    "500",
                    "A fault of the server; the error ID finds the log line",
                ),
                ("503", "The database is unreachable; try again"),
            ];
            if operation.request_body.is_some() {
                shared.push(("413", "The body is larger than the configured limit"));
                shared.push(("415", "The body is not `application/json`"));
            }
            for (status, description) in shared {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::T(Response::new(description)));
            }
        }
    }
}

/// Gives every 4xx and 5xx response the error body and the `x-error` and
/// `x-error-id` headers, and 429 its `Retry-After` header, because
/// [`crate::ApiError`] sends them on every error.
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let text = ObjectBuilder::new().schema_type(Type::String);
        let uuid = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)));
        let seconds = ObjectBuilder::new().schema_type(Type::Integer);
        let headers = &mut openapi
            .components
            .get_or_insert_with(Default::default)
            .headers;
        headers.insert(
            "x-error".to_owned(),
            header(text, "The message of the body's `error` field"),
        );
        headers.insert(
            "x-error-id".to_owned(),
            header(uuid, "The ID of the body's `errorID` field"),
        );
        headers.insert(
            "retry-after".to_owned(),
            header(seconds, "Seconds to wait before trying again"),
        );

        for (_, operation) in operations_mut(openapi) {
            for (status, response) in operation.responses.responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }

                response.content.insert(
                    "application/json".to_owned(),
                    RefOr::T(
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    ),
                );
                for name in ["x-error", "x-error-id"] {
                    response.headers.insert(name.to_owned(), header_ref(name));
                }
                if status == "429" {
                    response
                        .headers
                        .insert("retry-after".to_owned(), header_ref("retry-after"));
                }
            }
        }
    }
}

fn header_ref(name: &str) -> RefOr<Header> {
    RefOr::Ref(Ref::new(format!("#/components/headers/{name}")))
}

fn header(schema: ObjectBuilder, description: &str) -> RefOr<Header> {
    RefOr::T(
        HeaderBuilder::new()
            .schema(Some(schema))
            .description(Some(description))
            .build(),
    )
}

/// Appends the method to an operation ID that a handler serving several
/// methods gives to each of them, such as `authorize` to `authorize_get`,
/// because OpenAPI requires each operation ID to be unique.
struct UniqueOperationIds;

impl Modify for UniqueOperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for (_, operation) in operations_mut(openapi) {
            if let Some(id) = &operation.operation_id {
                *counts.entry(id.clone()).or_default() += 1;
            }
        }

        for (method, operation) in operations_mut(openapi) {
            if let Some(id) = &mut operation.operation_id
                && counts[id.as_str()] > 1
            {
                *id = format!("{id}_{method}");
            }
        }
    }
}

/// Iterates over every operation of the document with its method, for
/// modifiers that edit them all.
fn operations_mut(
    openapi: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    openapi.paths.paths.values_mut().flat_map(|item| {
        [
            ("get", item.get.as_mut()),
            ("put", item.put.as_mut()),
            ("post", item.post.as_mut()),
            ("delete", item.delete.as_mut()),
            ("options", item.options.as_mut()),
            ("head", item.head.as_mut()),
            ("patch", item.patch.as_mut()),
            ("trace", item.trace.as_mut()),
            ("query", item.query.as_mut()),
        ]
        .into_iter()
        .filter_map(|(method, operation)| Some((method, operation?)))
    })
}
