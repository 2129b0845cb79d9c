//! Extractors: the caller's credential, the client's address, and request
//! bodies and ids read into checked values.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::error::JsonPayloadError;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use serde::Deserialize;
use twauth_domain::error::BAD_CREDENTIAL;
use twauth_domain::model::{ClientInfo, KeyPairWithUser, SessionWithUser};
use twauth_domain::secret::Secret;
use twauth_domain::values::OneTimeCode;
use twauth_domain::{Auth, AuthError, Field};
use uuid::Uuid;

use crate::error::ApiError;
use crate::metrics::CredentialKind;
use crate::state::ApiState;

/// Longest accepted credential header value, in bytes. Real tokens are 64.
const MAX_CREDENTIAL_LEN: usize = 256;

/// Longest user agent recorded on a session, in characters.
const MAX_USER_AGENT_CHARS: usize = 512;

fn state(req: &HttpRequest) -> Result<ApiState, ApiError> {
    req.app_data::<web::Data<ApiState>>()
        .map(|data| data.get_ref().clone())
        .ok_or_else(|| ApiError::Internal("API state is not configured".to_owned()))
}

/// Runs a blocking use case on actix's blocking thread pool.
pub async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, AuthError> + Send + 'static,
    T: Send + 'static,
{
    web::block(f)
        .await
        .map_err(|err| ApiError::Internal(format!("blocking task failed: {err}")))?
        .map_err(ApiError::from)
}

/// Checks a bearer token. A fresh entry of the credential cache costs a
/// digest and a lookup, so a hit skips the hop to the blocking pool.
pub async fn check_session(auth: Arc<Auth>, token: Secret) -> Result<SessionWithUser, ApiError> {
    if let Some(found) = auth.cached_session(&token) {
        return Ok(found);
    }
    blocking(move || auth.check_session(&token)).await
}

/// Checks a key pair, from the credential cache when it can, as
/// [`check_session`] does.
pub async fn check_key_pair(
    auth: Arc<Auth>,
    key: String,
    secret: Secret,
) -> Result<KeyPairWithUser, ApiError> {
    if let Some(checked) = auth.cached_key_pair(&key, &secret) {
        return checked.map_err(ApiError::from);
    }
    blocking(move || auth.check_key_pair(&key, &secret)).await
}

/// Reads the bearer token: `Authorization: Bearer <token>` with the scheme
/// word in any case, or a bare token with no scheme word.
pub fn bearer_token(req: &HttpRequest) -> Option<Secret> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    parse_bearer(value)
}

/// Parses the text of an `Authorization` header into a bearer token, as
/// [`bearer_token`] does once the header is known to be visible ASCII.
pub fn parse_bearer(value: &str) -> Option<Secret> {
    let value = value.trim();
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        Some(_) => return None,
        None if value.eq_ignore_ascii_case("bearer") => return None,
        None => value,
    };
    credential_value(token)
}

fn credential_value(value: &str) -> Option<Secret> {
    let valid = !value.is_empty()
        && value.len() <= MAX_CREDENTIAL_LEN
        && value.bytes().all(|b| b.is_ascii_graphic());
    valid.then(|| Secret::from_client(value))
}

/// Reads `api-key` and `api-secret`.
pub fn key_pair_headers(req: &HttpRequest) -> Option<(String, Secret)> {
    let read = |name: &str| req.headers().get(name)?.to_str().ok();
    parse_key_pair(read("api-key")?, read("api-secret")?)
}

/// Parses the texts of the `api-key` and `api-secret` headers, as
/// [`key_pair_headers`] does once both are known to be visible ASCII.
pub fn parse_key_pair(key: &str, secret: &str) -> Option<(String, Secret)> {
    let secret = credential_value(secret.trim())?;
    let key = credential_value(key.trim())?.expose().to_owned();
    Some((key, secret))
}

/// The caller, proven by a verified session's bearer token.
pub struct SessionCaller(pub SessionWithUser);

impl FromRequest for SessionCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = state(req);
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state?;
            let metrics = state.metrics.clone();
            let found = match token {
                Some(token) => check_session(state.auth.clone(), token).await,
                None => Err(ApiError::Auth(AuthError::Unauthorized(BAD_CREDENTIAL))),
            };
            metrics.credential_checked(CredentialKind::Session, &found);
            Ok(SessionCaller(found?))
        })
    }
}

/// The caller, proven by a verified key pair.
pub struct KeyPairCaller(pub KeyPairWithUser);

impl FromRequest for KeyPairCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = state(req);
        let headers = key_pair_headers(req);
        Box::pin(async move {
            let state = state?;
            let metrics = state.metrics.clone();
            let found = match headers {
                Some((key, secret)) => check_key_pair(state.auth.clone(), key, secret).await,
                None => Err(ApiError::Auth(AuthError::Unauthorized(BAD_CREDENTIAL))),
            };
            metrics.credential_checked(CredentialKind::KeyPair, &found);
            Ok(KeyPairCaller(found?))
        })
    }
}

/// The client's address and user agent. The address is the TCP peer, unless
/// the peer is a trusted proxy: then it is the last entry of
/// `X-Forwarded-For` that is not itself a trusted proxy.
pub struct Client(pub ClientInfo);

impl Client {
    pub fn from_request_parts(req: &HttpRequest, state: &ApiState) -> ClientInfo {
        let peer = req.peer_addr().map(|addr| addr.ip());
        let ip = match peer {
            Some(peer) if state.settings.is_trusted_proxy(peer) => {
                forwarded_client(req, state).unwrap_or(peer)
            }
            Some(peer) => peer,
            None => IpAddr::from([0, 0, 0, 0]),
        };
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_USER_AGENT_CHARS)
            .collect();
        ClientInfo {
            ip: canonical_ip(ip).to_string(),
            user_agent,
        }
    }
}

fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn forwarded_client(req: &HttpRequest, state: &ApiState) -> Option<IpAddr> {
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in req.headers().get_all("x-forwarded-for") {
        for entry in value.to_str().ok()?.split(',') {
            hops.push(entry.trim().parse().ok()?);
        }
    }
    hops.into_iter()
        .rev()
        .find(|ip| !state.settings.is_trusted_proxy(*ip))
}

impl FromRequest for Client {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(state(req).map(|state| Client(Self::from_request_parts(req, &state))))
    }
}

/// Maps a JSON body error to the contract's statuses: 413, 415 or 400.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match err {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => ApiError::PayloadTooLarge { limit },
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(err) => {
            ApiError::BadRequest(format!("invalid JSON body: {}", describe_json_error(&err)))
        }
        other => ApiError::BadRequest(format!("the request body could not be read: {other}")),
    };
    api.into()
}

/// Describes a serde error without echoing client data, which may be long
/// or hold secrets.
fn describe_json_error(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let text = err.to_string();
    match err.classify() {
        Category::Syntax | Category::Eof => {
            format!(
                "malformed JSON at line {} column {}",
                err.line(),
                err.column()
            )
        }
        Category::Io => "the body could not be read".to_owned(),
        Category::Data => {
            // serde's "missing field `x`" and "invalid type: ..., expected ..."
            // messages name the field or the expected type; cut the part that
            // quotes the client's value.
            if let Some(field) = text.strip_prefix("missing field ") {
                let field = field.split(" at line").next().unwrap_or(field);
                format!("missing field {field}")
            } else if let Some(rest) = text.strip_prefix("invalid type: ") {
                let expected = rest.split(", expected ").nth(1).unwrap_or("another type");
                let expected = expected.split(" at line").next().unwrap_or(expected);
                format!("a value has the wrong type, expected {expected}")
            } else {
                "a value has the wrong type or shape".to_owned()
            }
        }
    }
}

/// Parses a UUID from a path segment or body field, answering 400 for
/// anything else.
pub fn parse_uuid(value: &str, field: Field) -> Result<Uuid, ApiError> {
    Uuid::parse_str(value).map_err(|_| {
        ApiError::Auth(AuthError::Invalid {
            field,
            reason: "must be a UUID".to_owned(),
        })
    })
}

/// The `code` field: a JSON string of six digits, or a JSON number read as
/// its digits left-padded to six.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum CodeInput {
    Text(String),
    Number(u64),
    Other(serde_json::Value),
}

impl CodeInput {
    pub fn parse(&self) -> Result<OneTimeCode, ApiError> {
        let code = match self {
            CodeInput::Text(text) => OneTimeCode::parse(text)?,
            CodeInput::Number(number) => OneTimeCode::from_number(*number)?,
            CodeInput::Other(_) => {
                return Err(ApiError::Auth(AuthError::Invalid {
                    field: Field::Code,
                    reason: "must be 6 decimal digits as a string or a number".to_owned(),
                }));
            }
        };
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn bearer_accepts_scheme_in_any_case_and_bare_token() {
        for value in [
            "Bearer abc",
            "bearer abc",
            "BEARER abc",
            "abc",
            "  Bearer   abc ",
        ] {
            let req = TestRequest::default()
                .insert_header((header::AUTHORIZATION, value))
                .to_http_request();
            assert_eq!(bearer_token(&req).unwrap().expose(), "abc", "{value:?}");
        }
    }

    #[test]
    fn bearer_rejects_other_schemes_and_junk() {
        let long = "x".repeat(MAX_CREDENTIAL_LEN + 1);
        for value in ["Basic abc", "Bearer ", "", long.as_str(), "Bearer a b"] {
            let req = TestRequest::default()
                .insert_header((header::AUTHORIZATION, value))
                .to_http_request();
            assert!(bearer_token(&req).is_none(), "{value:?}");
        }
        assert!(bearer_token(&TestRequest::default().to_http_request()).is_none());
    }

    #[test]
    fn key_pair_headers_need_both() {
        let req = TestRequest::default()
            .insert_header(("api-key", "k"))
            .to_http_request();
        assert!(key_pair_headers(&req).is_none());
        let req = TestRequest::default()
            .insert_header(("api-key", "k"))
            .insert_header(("api-secret", "s"))
            .to_http_request();
        let (key, secret) = key_pair_headers(&req).unwrap();
        assert_eq!(key, "k");
        assert_eq!(secret.expose(), "s");
    }

    #[test]
    fn code_input_reads_string_and_number() {
        let parse = |json: &str| serde_json::from_str::<CodeInput>(json).unwrap().parse();
        assert_eq!(parse("\"012345\"").unwrap().expose(), "012345");
        assert_eq!(parse("12345").unwrap().expose(), "012345");
        assert!(parse("\"12345\"").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("1.5").is_err());
        assert!(parse("null").is_err());
        assert!(parse("[1]").is_err());
        assert!(parse("1000000").is_err());
    }

    #[test]
    fn json_errors_do_not_echo_values() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Body {
            email: String,
        }
        let err = serde_json::from_str::<Body>(r#"{"email": 5}"#).unwrap_err();
        assert_eq!(
            describe_json_error(&err),
            "a value has the wrong type, expected a string"
        );
        let err = serde_json::from_str::<Body>(r#"{}"#).unwrap_err();
        assert_eq!(describe_json_error(&err), "missing field `email`");
        let err = serde_json::from_str::<Body>(r#"{"email": "#).unwrap_err();
        assert!(describe_json_error(&err).starts_with("malformed JSON"));
    }
}
