//! The OpenAPI document against the routes the server mounts under the
//! base path: every mounted route is documented, every documented
//! operation is mounted, and the document describes the bodies, headers
//! and credentials that the handlers use.

use std::collections::BTreeSet;
use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::{App, dev::ServiceResponse};
use serde_json::{Value, json};
use twauth_api::dto;
use twauth_api::routes::mounted_routes;
use twauth_api::{ApiSettings, ApiState, BASE_PATH};
use twauth_domain::Policy;
use twauth_domain::memory::{MemoryStore, SystemClock, SystemRandom};
use twauth_domain::service::Auth;
use uuid::Uuid;

/// The `x-error` message of a 404 for a path that no route has.
const NO_ROUTE: &str = "no route for this path";

/// Methods an OpenAPI path item can hold, as they appear in the document.
const DOCUMENT_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace", "query",
];

fn state() -> ApiState {
    let auth = Auth::new(
        Arc::new(MemoryStore::new()),
        Arc::new(SystemClock),
        Arc::new(SystemRandom::default()),
        Policy::default(),
    );
    ApiState::new(Arc::new(auth), ApiSettings::default())
}

macro_rules! app {
    () => {
        init_service(App::new().configure(twauth_api::configure(state()))).await
    };
}

/// Fetches the document the way a client does.
async fn served_document() -> Value {
    let app = app!();
    let request = TestRequest::get()
        .uri(&format!("{BASE_PATH}/openapi.json"))
        .to_request();
    let response = call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    serde_json::from_slice(&read_body(response).await).expect("the document is JSON")
}

/// Collects the (method, path) of every operation in the document.
fn document_operations(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"]
        .as_object()
        .expect("the document has paths");
    let mut operations = BTreeSet::new();
    for (path, item) in paths {
        for method in DOCUMENT_METHODS {
            if item.get(*method).is_some() {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

/// Replaces each `{parameter}` of a path template with a value the route
/// accepts.
fn concrete_path(template: &str) -> String {
    let mut path = String::new();
    for segment in template.split('/').skip(1) {
        let value = match segment {
            "{id}" => Uuid::new_v4().to_string(),
            "{file}" => "swagger-ui.css".to_owned(),
            "{original}" => "orders/7".to_owned(),
            other if other.starts_with('{') => {
                panic!("{template}: no test value for the parameter {other}")
            }
            other => other.to_owned(),
        };
        path.push('/');
        path.push_str(&value);
    }
    path
}

fn header(response: &ServiceResponse, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap().to_owned())
}

#[actix_web::test]
async fn mounted_routes_equal_document_operations() {
    let document = served_document().await;
    let documented = document_operations(&document);
    let mounted: BTreeSet<(String, String)> = mounted_routes()
        .into_iter()
        .flat_map(|route| {
            route
                .verb
                .documented_methods()
                .into_iter()
                .map(move |method| (method.as_str().to_owned(), route.path.clone()))
        })
        .collect();

    let undocumented: Vec<_> = mounted.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "mounted but not in the OpenAPI document: {undocumented:?}"
    );
    let unmounted: Vec<_> = documented.difference(&mounted).collect();
    assert!(
        unmounted.is_empty(),
        "in the OpenAPI document but not mounted: {unmounted:?}"
    );
}

#[actix_web::test]
async fn documented_operations_reach_a_handler() {
    let document = served_document().await;
    let operations = document_operations(&document);
    assert!(
        operations.len() >= 20,
        "only {} operations in the document",
        operations.len()
    );
    let app = app!();

    for (method, template) in &operations {
        let path = concrete_path(template);
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let request = TestRequest::default()
            .method(method.clone())
            .uri(&path)
            .to_request();
        let response = call_service(&app, request).await;

        let status = response.status();
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: the path is mounted without this method"
        );
        if status == StatusCode::NOT_FOUND {
            assert_ne!(
                header(&response, "x-error").as_deref(),
                Some(NO_ROUTE),
                "{method} {path}: no route"
            );
        }
    }
}

#[actix_web::test]
async fn documented_paths_reject_other_methods_with_405() {
    let document = served_document().await;
    let app = app!();

    let operations = document_operations(&document);
    let templates: BTreeSet<&String> = operations.iter().map(|(_, path)| path).collect();

    for template in templates {
        // The gateway routes serve every method, PATCH included.
        if operations.contains(&("PATCH".to_owned(), template.clone())) {
            continue;
        }
        let path = concrete_path(template);
        let request = TestRequest::default()
            .method(Method::PATCH)
            .uri(&path)
            .to_request();
        let response = call_service(&app, request).await;

        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "PATCH {path}"
        );
        assert!(
            header(&response, "x-error").is_some(),
            "PATCH {path}: x-error"
        );
        assert!(
            header(&response, "x-error-id").is_some(),
            "PATCH {path}: x-error-id"
        );
    }
}

#[actix_web::test]
async fn operation_ids_are_unique() {
    let document = served_document().await;
    let mut seen = BTreeSet::new();

    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_else(|| {
                panic!("{method} {path}: no operationId");
            });
            assert!(seen.insert(id.to_owned()), "{method} {path}: {id} repeats");
        }
    }
}

#[actix_web::test]
async fn unknown_path_is_no_route_404() {
    let app = app!();
    let request = TestRequest::get()
        .uri(&format!("{BASE_PATH}/no-such-route"))
        .to_request();
    let response = call_service(&app, request).await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&response, "x-error").as_deref(), Some(NO_ROUTE));
}

#[actix_web::test]
async fn docs_page_loads_only_its_own_files() {
    let app = app!();
    let request = TestRequest::get()
        .uri(&format!("{BASE_PATH}/docs"))
        .to_request();
    let response = call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        header(&response, "content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let page = String::from_utf8(read_body(response).await.to_vec()).unwrap();
    assert!(
        !page.contains("://"),
        "the page links to another host: {page}"
    );

    let files: Vec<&str> = page
        .split('"')
        .filter(|part| part.starts_with("docs/"))
        .collect();
    assert!(files.contains(&"docs/swagger-ui-bundle.js"), "{files:?}");
    for file in files {
        let request = TestRequest::get()
            .uri(&format!("{BASE_PATH}/{file}"))
            .to_request();
        let response = call_service(&app, request).await;
        assert_eq!(response.status(), StatusCode::OK, "{file}");
    }

    let request = TestRequest::get()
        .uri(&format!("{BASE_PATH}/docs/swagger-initializer.js"))
        .to_request();
    let response = call_service(&app, request).await;
    let initializer = String::from_utf8(read_body(response).await.to_vec()).unwrap();
    assert!(
        initializer.contains(r#""url": "openapi.json""#),
        "{initializer}"
    );
    assert!(
        initializer.contains(r#""validatorUrl": "none""#),
        "{initializer}"
    );
}

#[actix_web::test]
async fn docs_file_unknown_name_is_404() {
    let app = app!();
    let request = TestRequest::get()
        .uri(&format!("{BASE_PATH}/docs/no-such-file.js"))
        .to_request();
    let response = call_service(&app, request).await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_ne!(header(&response, "x-error").as_deref(), Some(NO_ROUTE));
}

#[actix_web::test]
async fn error_responses_carry_error_body_and_headers() {
    let document = served_document().await;
    let mut checked = 0;

    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }
                let at = format!("{method} {path} {status}");
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{at}"
                );
                let mut names = vec!["x-error", "x-error-id"];
                if status == "429" {
                    names.push("retry-after");
                }
                for name in names {
                    assert_eq!(
                        response["headers"][name]["$ref"],
                        format!("#/components/headers/{name}"),
                        "{at}"
                    );
                }
                checked += 1;
            }
        }
    }

    assert!(checked > 0);
    let headers = &document["components"]["headers"];
    assert_eq!(headers["x-error"]["schema"]["type"], "string");
    assert_eq!(headers["x-error-id"]["schema"]["format"], "uuid");
    assert_eq!(headers["retry-after"]["schema"]["type"], "integer");
    let error_body = &document["components"]["schemas"]["ErrorBody"];
    assert_eq!(error_body["required"], json!(["error", "errorID"]));
}

#[actix_web::test]
async fn security_schemes_match_credential_headers() {
    let document = served_document().await;
    let schemes = &document["components"]["securitySchemes"];

    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["apiKey"]["type"], "apiKey");
    assert_eq!(schemes["apiKey"]["in"], "header");
    assert_eq!(schemes["apiKey"]["name"], "api-key");
    assert_eq!(schemes["apiSecret"]["type"], "apiKey");
    assert_eq!(schemes["apiSecret"]["in"], "header");
    assert_eq!(schemes["apiSecret"]["name"], "api-secret");

    let paths = &document["paths"];
    let key_pair_check = &paths[format!("{BASE_PATH}/keypair")]["get"]["security"];
    assert_eq!(key_pair_check, &json!([{"apiKey": [], "apiSecret": []}]));
    let session_check = &paths[format!("{BASE_PATH}/session")]["get"]["security"];
    assert_eq!(session_check, &json!([{"bearer": []}]));
    let login = &paths[format!("{BASE_PATH}/session")]["post"];
    assert!(login.get("security").is_none(), "login needs no credential");
}

#[actix_web::test]
async fn code_schema_is_string_or_integer() {
    let document = served_document().await;
    let code = &document["components"]["schemas"]["VerifyRequest"]["properties"]["code"];

    let types: Vec<&Value> = code["oneOf"]
        .as_array()
        .expect("code is oneOf")
        .iter()
        .map(|schema| &schema["type"])
        .collect();
    assert_eq!(types, [&json!("string"), &json!("integer")]);
}

/// Asserts that a schema's properties are exactly the keys that serde
/// writes for `value`, all of them required.
fn assert_schema_fields(document: &Value, name: &str, value: impl serde::Serialize) {
    let schema = &document["components"]["schemas"][name];
    let properties: BTreeSet<&str> = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema named {name}"))
        .keys()
        .map(String::as_str)
        .collect();
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| field.as_str().unwrap())
        .collect();
    let written = serde_json::to_value(value).unwrap();
    let written: BTreeSet<&str> = written
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();

    assert_eq!(properties, written, "{name}: properties");
    assert_eq!(required, written, "{name}: required");
}

#[actix_web::test]
async fn response_schemas_match_serialized_bodies() {
    let document = served_document().await;
    let text = String::new;

    assert_schema_fields(&document, "Acknowledged", dto::ACKNOWLEDGED);
    assert_schema_fields(
        &document,
        "SessionCreated",
        dto::SessionCreated {
            bearer: text(),
            session_id: text(),
            expire_at: 0,
            ip: text(),
            user_agent: text(),
            verification_code_id: text(),
        },
    );
    assert_schema_fields(
        &document,
        "SessionCheck",
        dto::SessionCheck {
            session_id: text(),
            user_id: text(),
            alias: text(),
            full_name: text(),
            expire_at: 0,
            ip: text(),
            user_agent: text(),
            verified: true,
            roles: vec![],
            groups: vec![],
        },
    );
    assert_schema_fields(
        &document,
        "SessionExtended",
        dto::SessionExtended {
            message: "acknowledged",
            expire_at: 0,
        },
    );
    assert_schema_fields(
        &document,
        "SessionItem",
        dto::SessionItem {
            session_id: text(),
            ip: text(),
            user_agent: text(),
            expire_at: 0,
            current: true,
        },
    );
    assert_schema_fields(
        &document,
        "SessionList",
        dto::SessionList { sessions: vec![] },
    );
    assert_schema_fields(
        &document,
        "EmailCreated",
        dto::EmailCreated {
            email_id: text(),
            verification_code_id: text(),
        },
    );
    assert_schema_fields(
        &document,
        "EmailItem",
        dto::EmailItem {
            id: text(),
            address: text(),
            verified: true,
            preferred: true,
        },
    );
    assert_schema_fields(&document, "EmailList", dto::EmailList { emails: vec![] });
    assert_schema_fields(
        &document,
        "KeyPairCreated",
        dto::KeyPairCreated {
            api_key: text(),
            api_secret: text(),
            key_id: text(),
            key_name: text(),
            expire_at: 0,
            verified: false,
            verification_code_id: text(),
        },
    );
    assert_schema_fields(
        &document,
        "KeyPairCheck",
        dto::KeyPairCheck {
            api_key: text(),
            key_id: text(),
            key_name: text(),
            expire_at: 0,
            verified: true,
            user_id: text(),
            user_name: text(),
            user_alias: text(),
            roles: vec![],
            groups: vec![],
        },
    );
    assert_schema_fields(
        &document,
        "KeyPairItem",
        dto::KeyPairItem {
            api_key: text(),
            key_id: text(),
            key_name: text(),
            expire_at: 0,
            verified: true,
        },
    );
    assert_schema_fields(&document, "KeyPairList", dto::KeyPairList { keys: vec![] });
    assert_schema_fields(&document, "UserAlias", dto::UserAlias { alias: text() });
}

#[actix_web::test]
async fn request_schemas_use_contract_field_names() {
    let document = served_document().await;
    let schemas = &document["components"]["schemas"];
    let cases: &[(&str, &[&str])] = &[
        ("RegisterRequest", &["alias", "email", "fullName"]),
        ("LoginRequest", &["email"]),
        ("VerifyRequest", &["code", "verificationCodeID"]),
        ("AddEmailRequest", &["address"]),
        ("PreferEmailRequest", &["emailID"]),
        ("CreateKeyPairRequest", &["days", "name"]),
    ];

    for (name, fields) in cases {
        let properties: Vec<&str> = schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema named {name}"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(&properties, fields, "{name}");
    }
}
