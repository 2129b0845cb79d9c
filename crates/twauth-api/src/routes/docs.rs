//! The API's own description: the OpenAPI document and a Swagger UI page
//! that renders it. Swagger UI is compiled into the binary, so the page
//! loads nothing from another host.

use std::sync::{Arc, LazyLock};

use actix_web::{HttpResponse, web};
use twauth_domain::AuthError;
use utoipa::OpenApi;
use utoipa_swagger_ui::Config;

use crate::error::ApiError;
use crate::openapi::ApiDoc;
use crate::routes::{Endpoint, Verb};

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint::new(Verb::Get, "/openapi.json", |route| route.to(openapi_json)),
    Endpoint::new(Verb::Get, "/docs", |route| route.to(docs_page)),
    Endpoint::new(Verb::Get, "/docs/{file}", |route| route.to(docs_file)),
];

/// The document, serialized once.
static OPENAPI_JSON: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes to JSON")
});

/// Swagger UI settings, sent in `swagger-initializer.js`.
///
/// The document URL is relative to the page at `{base}/docs`. A
/// `validatorUrl` of `none` stops Swagger UI from sending the document to
/// its public validator.
static SWAGGER_CONFIG: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        Config::new(["openapi.json"])
            .validator_url("none")
            .display_operation_id(true),
    )
});

/// The page at `{base}/docs`. Its links are relative to that URL, so they
/// point into `{base}/docs/`. The stock Swagger UI `index.html` is not used
/// because it links to `./file`, which works only from a URL ending in `/`.
const DOCS_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>twauth Auth API v2</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
  <link rel="stylesheet" href="docs/index.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script src="docs/swagger-ui-standalone-preset.js"></script>
  <script src="docs/swagger-initializer.js"></script>
</body>
</html>
"#;

/// Returns the OpenAPI document
#[utoipa::path(
    get,
    path = "/openapi.json",
    context_path = crate::BASE_PATH,
    tag = "documentation",
    operation_id = "get_openapi_document",
    responses(
        (status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json"),
    ),
)]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI_JSON.as_str())
}

/// Shows the API documentation in Swagger UI
#[utoipa::path(
    get,
    path = "/docs",
    context_path = crate::BASE_PATH,
    tag = "documentation",
    operation_id = "get_docs_page",
    responses(
        (status = 200, description = "An HTML page that renders this document", content_type = "text/html"),
    ),
)]
async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(DOCS_PAGE)
}

/// Returns a file of Swagger UI, such as `swagger-ui-bundle.js`
#[utoipa::path(
    get,
    path = "/docs/{file}",
    context_path = crate::BASE_PATH,
    tag = "documentation",
    operation_id = "get_docs_file",
    params(("file" = String, Path, description = "The file's name", example = "swagger-ui.css")),
    responses(
        (status = 200, description = "The file, with a content type guessed from its name"),
        (status = 404, description = "Swagger UI has no file of this name"),
    ),
)]
async fn docs_file(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let found = utoipa_swagger_ui::serve(&file, SWAGGER_CONFIG.clone())
        .map_err(|err| ApiError::Internal(format!("failed to read a Swagger UI file: {err}")))?;
    let found = found.ok_or(ApiError::Auth(AuthError::NotFound("Swagger UI file")))?;

    Ok(HttpResponse::Ok()
        .content_type(found.content_type)
        .body(found.bytes.into_owned()))
}
