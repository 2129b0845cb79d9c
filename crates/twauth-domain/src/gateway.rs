//! The gateway route table: which requests a reverse proxy may forward, and
//! which callers may make them.
//!
//! A gateway (nginx `auth_request`, Traefik `ForwardAuth`, Envoy
//! `ext_authz`) sends twauth a check for each request it receives. The API layer
//! reads the original method and path, [`RequestPath::parse`] normalizes the
//! path, [`RouteTable::requirement`] finds the first enabled entry that
//! matches, and [`Requirement::admit`] decides with the caller's roles.
//!
//! Entries are tried in table order and the first match wins, so put
//! narrow entries before broad ones. [`RouteTable::new`] rejects an entry
//! that an earlier entry matches completely, because it could never apply.
//!
//! Path patterns:
//! - `/orders` matches exactly that path (a trailing slash in the request is
//!   ignored, so `/orders/` matches too);
//! - `/orders/{id}` matches one segment of any content in place of `{id}`;
//! - `/orders/*` matches exactly one more segment after `/orders`;
//! - `/orders/**` matches `/orders` itself and everything below it.
//!
//! A `method` of `*` matches every method, and `GET` matches `HEAD` too.

use std::fmt;

use serde::Deserialize;

use crate::error::{AuthError, BAD_CREDENTIAL};

/// Methods a route entry may name: those of RFC 9110 plus `PATCH`.
pub const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Maximum length of a request path, in bytes.
pub const MAX_PATH_LEN: usize = 8192;

/// The 403 message for a request that no entry matches.
pub const NO_ROUTE: &str = "no gateway route matches this request";

/// The 403 message for a caller without any of the accepted roles.
pub const MISSING_ROLE: &str = "the caller has none of the roles this route accepts";

/// One route entry as written in the configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// An HTTP method from [`METHODS`], in any case, or `*` for every method.
    #[serde(default = "any_method")]
    pub method: String,
    /// The path pattern, as the module documentation describes.
    pub path: String,
    /// Anyone may pass, and no identity is passed on.
    #[serde(default)]
    pub public: bool,
    /// Roles of which the caller needs at least one; empty means any
    /// authenticated caller.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Anyone may pass, and a valid credential's identity is passed on.
    #[serde(default)]
    pub optional: bool,
    /// A disabled entry is validated but never matches.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn any_method() -> String {
    "*".to_owned()
}

fn enabled_by_default() -> bool {
    true
}

/// What happens to a request that no entry matches.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Unmatched {
    /// Answer 403.
    #[default]
    Deny,
    /// Let any authenticated caller through, as if an entry with no roles
    /// had matched.
    AllowAuthenticated,
}

/// A request path as a list of decoded segments, without dot segments,
/// empty segments or query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestPath {
    segments: Vec<String>,
}

/// Why a request path cannot be used for a decision.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPath {
    #[error("the path must start with /")]
    NotAbsolute,
    #[error("the path is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    #[error("the path contains a malformed percent escape")]
    BadEscape,
    #[error("the path decodes to invalid UTF-8")]
    NotUtf8,
    #[error("the path contains an encoded slash, backslash or control character")]
    AmbiguousSegment,
}

impl RequestPath {
    /// Parses a request target as a gateway forwards it: an origin-form path
    /// such as `/a/b?q=1`, or an absolute URI whose scheme and authority are
    /// dropped. Each segment is percent-decoded, then `.` and `..` segments
    /// are resolved, so `/public/../admin` is `/admin`.
    ///
    /// # Errors
    /// Rejects a path that decodes to something an upstream server could read
    /// differently: an encoded `/`, a backslash, a control character,
    /// invalid UTF-8 or a malformed escape.
    pub fn parse(raw: &str) -> Result<RequestPath, InvalidPath> {
        if raw.len() > MAX_PATH_LEN {
            return Err(InvalidPath::TooLong);
        }
        let path = strip_scheme_and_authority(raw);
        let path = path.split(['?', '#']).next().unwrap_or("");
        if !path.starts_with('/') {
            return Err(InvalidPath::NotAbsolute);
        }

        let mut segments: Vec<String> = Vec::new();
        for raw_segment in path.split('/') {
            let segment = percent_decode(raw_segment)?;
            if segment
                .chars()
                .any(|c| c == '/' || c == '\\' || c.is_control())
            {
                return Err(InvalidPath::AmbiguousSegment);
            }
            match segment.as_str() {
                "" | "." => {}
                ".." => {
                    segments.pop();
                }
                _ => segments.push(segment),
            }
        }
        Ok(RequestPath { segments })
    }

    /// The decoded segments, in order.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }
}

impl fmt::Display for RequestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for segment in &self.segments {
            write!(f, "/{segment}")?;
        }
        Ok(())
    }
}

/// Drops `scheme://authority` from an absolute URI; returns other input
/// unchanged.
fn strip_scheme_and_authority(raw: &str) -> &str {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw;
    };
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme {
        return raw;
    }
    match rest.find(['/', '?', '#']) {
        Some(start) if rest[start..].starts_with('/') => &rest[start..],
        _ => "/",
    }
}

fn percent_decode(segment: &str) -> Result<String, InvalidPath> {
    if !segment.contains('%') {
        return Ok(segment.to_owned());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3).ok_or(InvalidPath::BadEscape)?;
            let byte = u8::from_str_radix(hex, 16).map_err(|_| InvalidPath::BadEscape)?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| InvalidPath::NotUtf8)
}

/// One segment of a path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: any one segment.
    Param,
    /// A final `*`: any one segment.
    AnyOne,
    /// A final `**`: zero or more segments.
    AnyRest,
}

impl Segment {
    fn matches(&self, segment: &str) -> bool {
        match self {
            Segment::Literal(literal) => literal == segment,
            Segment::Param | Segment::AnyOne | Segment::AnyRest => true,
        }
    }
}

fn parse_pattern(path: &str) -> Result<Vec<Segment>, String> {
    if !path.starts_with('/') {
        return Err(format!("path {path:?} must start with /"));
    }
    if path == "/" {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = path[1..].split('/').collect();
    let last = parts.len() - 1;
    let mut segments = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let segment = match *part {
            "" => return Err(format!("path {path:?} has an empty segment")),
            "." | ".." => return Err(format!("path {path:?} has a dot segment")),
            "*" | "**" if i != last => {
                return Err(format!(
                    "path {path:?}: a wildcard is allowed only as the last segment"
                ));
            }
            "*" => Segment::AnyOne,
            "**" => Segment::AnyRest,
            _ if part.starts_with('{') && part.ends_with('}') => {
                let name = &part[1..part.len() - 1];
                let valid =
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(format!(
                        "path {path:?}: parameter {part:?} needs a name of letters, digits or _"
                    ));
                }
                Segment::Param
            }
            _ => {
                if let Some(c) = part.chars().find(|c| {
                    matches!(c, '*' | '{' | '}' | '%' | '?' | '#' | '\\') || c.is_control()
                }) {
                    return Err(format!(
                        "path {path:?}: segment {part:?} contains {c:?}; a wildcard or \
                         parameter must be a whole segment, and literals are written decoded"
                    ));
                }
                Segment::Literal((*part).to_owned())
            }
        };
        segments.push(segment);
    }
    Ok(segments)
}

fn pattern_matches(pattern: &[Segment], path: &[String]) -> bool {
    match (pattern.first(), path.first()) {
        (Some(Segment::AnyRest), _) => true,
        (None, None) => true,
        (Some(segment), Some(first)) => {
            segment.matches(first) && pattern_matches(&pattern[1..], &path[1..])
        }
        _ => false,
    }
}

/// Whether every path that `later` matches is matched by `earlier` too.
fn pattern_covers(earlier: &[Segment], later: &[Segment]) -> bool {
    use Segment::{AnyOne, AnyRest, Literal, Param};
    match (earlier.first(), later.first()) {
        (Some(AnyRest), _) => true,
        (None, None) => true,
        (None, Some(_)) | (Some(_), None) | (Some(Literal(_) | Param | AnyOne), Some(AnyRest)) => {
            false
        }
        (Some(Literal(a)), Some(Literal(b))) => {
            a == b && pattern_covers(&earlier[1..], &later[1..])
        }
        (Some(Literal(_)), Some(Param | AnyOne)) => false,
        (Some(Param | AnyOne), Some(Literal(_) | Param | AnyOne)) => {
            pattern_covers(&earlier[1..], &later[1..])
        }
    }
}

/// The method an entry matches.
#[derive(Clone, Debug, PartialEq, Eq)]
enum MethodMatch {
    Any,
    Exact(&'static str),
}

impl MethodMatch {
    fn parse(method: &str) -> Result<MethodMatch, String> {
        if method == "*" {
            return Ok(MethodMatch::Any);
        }
        METHODS
            .iter()
            .find(|known| known.eq_ignore_ascii_case(method))
            .map(|known| MethodMatch::Exact(known))
            .ok_or_else(|| format!("method {method:?} is not one of *, {}", METHODS.join(", ")))
    }

    /// Matches a request method; `method` is upper case.
    fn matches(&self, method: &str) -> bool {
        match self {
            MethodMatch::Any => true,
            MethodMatch::Exact(exact) => *exact == method || (*exact == "GET" && method == "HEAD"),
        }
    }

    fn covers(&self, later: &MethodMatch) -> bool {
        match (self, later) {
            (MethodMatch::Any, _) => true,
            (MethodMatch::Exact(_), MethodMatch::Any) => false,
            (MethodMatch::Exact(a), MethodMatch::Exact(b)) => {
                a == b || (*a == "GET" && *b == "HEAD")
            }
        }
    }
}

/// Who may pass through an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Access {
    Public,
    Optional,
    /// Any of these roles; empty means any authenticated caller.
    Roles(Vec<String>),
}

#[derive(Clone, Debug)]
struct Route {
    index: usize,
    method: MethodMatch,
    pattern: Vec<Segment>,
    access: Access,
}

impl Route {
    fn parse(index: usize, spec: &RouteSpec) -> Result<Route, String> {
        let method = MethodMatch::parse(spec.method.trim())?;
        let pattern = parse_pattern(&spec.path)?;
        for role in &spec.roles {
            let valid = !role.is_empty() && role.bytes().all(|b| b.is_ascii_graphic() && b != b',');
            if !valid {
                return Err(format!(
                    "role {role:?} must be non-empty printable ASCII without spaces or commas"
                ));
            }
        }
        let access = match (spec.public, spec.optional, spec.roles.is_empty()) {
            (true, true, _) => return Err("public and optional exclude each other".to_owned()),
            (true, false, false) => return Err("a public entry cannot require roles".to_owned()),
            (false, true, false) => {
                return Err("an optional entry cannot require roles".to_owned());
            }
            (true, false, true) => Access::Public,
            (false, true, true) => Access::Optional,
            (false, false, _) => Access::Roles(spec.roles.clone()),
        };
        Ok(Route {
            index,
            method,
            pattern,
            access,
        })
    }
}

/// A route table that failed validation: one line per problem, each naming
/// the entry by its index in `routes`, counted from 0.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid gateway route table: {}", .problems.join("; "))]
pub struct RouteTableError {
    pub problems: Vec<String>,
}

/// A validated route table and the rule for requests it does not match.
#[derive(Clone, Debug)]
pub struct RouteTable {
    /// Enabled entries, in table order.
    routes: Vec<Route>,
    unmatched: Unmatched,
}

/// What a matched entry, or the unmatched rule, asks of the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement<'a> {
    /// No credential is read and no identity is passed on.
    Public,
    /// A valid credential's identity is passed on; none is needed.
    Optional,
    /// A verified caller with one of these roles; empty means any role.
    Roles(&'a [String]),
    /// No entry matched and unmatched requests are denied.
    NoRoute,
}

/// A request let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Pass the request on without identity headers.
    Anonymous,
    /// Pass the request on with the caller's identity.
    Identified,
}

impl Requirement<'_> {
    /// Whether the decision needs the caller's credential read at all.
    pub fn reads_credential(&self) -> bool {
        matches!(self, Requirement::Optional | Requirement::Roles(_))
    }

    /// Decides with the roles of the verified caller, or `None` when the
    /// request carries no valid credential.
    ///
    /// # Errors
    /// [`AuthError::Unauthorized`] when a caller is needed and there is
    /// none; [`AuthError::Forbidden`] when no entry matched under
    /// [`Unmatched::Deny`], or the caller has none of the accepted roles.
    pub fn admit(&self, caller_roles: Option<&[String]>) -> Result<Admission, AuthError> {
        match (self, caller_roles) {
            (Requirement::Public, _) | (Requirement::Optional, None) => Ok(Admission::Anonymous),
            (Requirement::Optional, Some(_)) => Ok(Admission::Identified),
            (Requirement::NoRoute, _) => Err(AuthError::Forbidden(NO_ROUTE)),
            (Requirement::Roles(_), None) => Err(AuthError::Unauthorized(BAD_CREDENTIAL)),
            (Requirement::Roles(accepted), Some(held)) => {
                if accepted.is_empty() || accepted.iter().any(|role| held.contains(role)) {
                    Ok(Admission::Identified)
                } else {
                    Err(AuthError::Forbidden(MISSING_ROLE))
                }
            }
        }
    }
}

impl RouteTable {
    /// Validates every entry and builds the table.
    ///
    /// # Errors
    /// Lists every entry with a bad method, path, role or flag combination,
    /// and every enabled entry that an earlier enabled entry matches
    /// completely (a duplicate included), since it could never apply.
    pub fn new(specs: &[RouteSpec], unmatched: Unmatched) -> Result<RouteTable, RouteTableError> {
        let mut problems = Vec::new();
        let mut routes: Vec<Route> = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            let route = match Route::parse(index, spec) {
                Ok(route) => route,
                Err(problem) => {
                    problems.push(format!("routes[{index}]: {problem}"));
                    continue;
                }
            };
            if !spec.enabled {
                continue;
            }
            let shadow = routes.iter().find(|earlier| {
                earlier.method.covers(&route.method)
                    && pattern_covers(&earlier.pattern, &route.pattern)
            });
            if let Some(earlier) = shadow {
                problems.push(format!(
                    "routes[{index}] ({} {}) can never match: routes[{}] ({} {}) comes first \
                     and matches every request it would",
                    spec.method,
                    spec.path,
                    earlier.index,
                    specs[earlier.index].method,
                    specs[earlier.index].path,
                ));
                continue;
            }
            routes.push(route);
        }
        if problems.is_empty() {
            Ok(RouteTable { routes, unmatched })
        } else {
            Err(RouteTableError { problems })
        }
    }

    /// A table with no entries, where every request follows `unmatched`.
    pub fn empty(unmatched: Unmatched) -> RouteTable {
        RouteTable {
            routes: Vec::new(),
            unmatched,
        }
    }

    /// The number of enabled entries.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table has no enabled entries.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Finds what the first matching entry asks of the caller. `method` is
    /// compared case-sensitively, as HTTP methods are, so callers pass it
    /// upper case.
    pub fn requirement(&self, method: &str, path: &RequestPath) -> Requirement<'_> {
        let found = self.routes.iter().find(|route| {
            route.method.matches(method) && pattern_matches(&route.pattern, path.segments())
        });
        match found.map(|route| &route.access) {
            Some(Access::Public) => Requirement::Public,
            Some(Access::Optional) => Requirement::Optional,
            Some(Access::Roles(roles)) => Requirement::Roles(roles),
            None => match self.unmatched {
                Unmatched::Deny => Requirement::NoRoute,
                Unmatched::AllowAuthenticated => Requirement::Roles(&[]),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(method: &str, path: &str) -> RouteSpec {
        RouteSpec {
            method: method.to_owned(),
            path: path.to_owned(),
            public: false,
            roles: Vec::new(),
            optional: false,
            enabled: true,
        }
    }

    fn public(method: &str, path: &str) -> RouteSpec {
        RouteSpec {
            public: true,
            ..spec(method, path)
        }
    }

    fn roles(method: &str, path: &str, roles: &[&str]) -> RouteSpec {
        RouteSpec {
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            ..spec(method, path)
        }
    }

    fn path(raw: &str) -> RequestPath {
        RequestPath::parse(raw).unwrap()
    }

    fn lookup<'a>(table: &'a RouteTable, method: &str, raw: &str) -> Requirement<'a> {
        table.requirement(method, &path(raw))
    }

    #[test]
    fn request_path_normalizes() {
        let cases = [
            ("/", "/"),
            ("", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b"),
            ("//a///b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/public/../admin", "/admin"),
            ("/../../admin", "/admin"),
            ("/a/%2e%2e/admin", "/admin"),
            ("/a%20b", "/a b"),
            ("/caf%C3%A9", "/café"),
            ("/a?x=/../b", "/a"),
            ("/a#frag", "/a"),
            ("http://example.test/a/b?q", "/a/b"),
            ("https://example.test", "/"),
        ];
        for (raw, expected) in cases {
            let parsed = RequestPath::parse(if raw.is_empty() { "/" } else { raw });
            assert_eq!(parsed.unwrap().to_string(), expected, "{raw:?}");
        }
    }

    #[test]
    fn request_path_rejects_ambiguous_input() {
        let cases = [
            ("a/b", InvalidPath::NotAbsolute),
            ("?q", InvalidPath::NotAbsolute),
            ("/a%2Fb", InvalidPath::AmbiguousSegment),
            ("/a%5cb", InvalidPath::AmbiguousSegment),
            ("/a\\b", InvalidPath::AmbiguousSegment),
            ("/a%00", InvalidPath::AmbiguousSegment),
            ("/a%zz", InvalidPath::BadEscape),
            ("/a%2", InvalidPath::BadEscape),
            ("/a%ff", InvalidPath::NotUtf8),
        ];
        for (raw, expected) in cases {
            assert_eq!(RequestPath::parse(raw), Err(expected), "{raw:?}");
        }
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
        assert_eq!(RequestPath::parse(&long), Err(InvalidPath::TooLong));
    }

    #[test]
    fn requirement_follows_first_match() {
        let table = RouteTable::new(
            &[
                public("GET", "/health"),
                roles("*", "/admin/**", &["admin"]),
                roles("GET", "/orders/{id}", &["user", "auditor"]),
                roles("POST", "/orders", &["user"]),
                spec("*", "/files/*"),
                RouteSpec {
                    optional: true,
                    ..spec("GET", "/feed")
                },
                public("*", "/static/**"),
                RouteSpec {
                    enabled: false,
                    ..public("*", "/disabled")
                },
            ],
            Unmatched::Deny,
        )
        .unwrap();
        let user_or_auditor = ["user".to_owned(), "auditor".to_owned()];
        let user = ["user".to_owned()];
        let admin = ["admin".to_owned()];
        let cases: [(&str, &str, Requirement); 20] = [
            ("GET", "/health", Requirement::Public),
            ("HEAD", "/health", Requirement::Public),
            ("POST", "/health", Requirement::NoRoute),
            ("GET", "/health/", Requirement::Public),
            ("GET", "/healthz", Requirement::NoRoute),
            ("GET", "/admin", Requirement::Roles(&admin)),
            ("DELETE", "/admin/users/1", Requirement::Roles(&admin)),
            ("GET", "/public/../admin", Requirement::Roles(&admin)),
            ("GET", "/orders/7", Requirement::Roles(&user_or_auditor)),
            ("GET", "/orders/7/items", Requirement::NoRoute),
            ("GET", "/orders", Requirement::NoRoute),
            ("POST", "/orders", Requirement::Roles(&user)),
            ("GET", "/files/a.txt", Requirement::Roles(&[])),
            ("GET", "/files", Requirement::NoRoute),
            ("GET", "/files/a/b", Requirement::NoRoute),
            ("GET", "/feed?page=2", Requirement::Optional),
            ("GET", "/static", Requirement::Public),
            ("PUT", "/static/css/site.css", Requirement::Public),
            ("GET", "/disabled", Requirement::NoRoute),
            ("GET", "/Admin", Requirement::NoRoute),
        ];
        for (method, raw, expected) in cases {
            assert_eq!(lookup(&table, method, raw), expected, "{method} {raw}");
        }
    }

    #[test]
    fn unmatched_allow_authenticated_needs_any_caller() {
        let table = RouteTable::new(&[public("GET", "/")], Unmatched::AllowAuthenticated).unwrap();
        assert_eq!(lookup(&table, "GET", "/"), Requirement::Public);
        assert_eq!(lookup(&table, "GET", "/x"), Requirement::Roles(&[]));
        let empty = RouteTable::empty(Unmatched::Deny);
        assert_eq!(lookup(&empty, "GET", "/"), Requirement::NoRoute);
    }

    #[test]
    fn admit_decides_by_roles() {
        let user = vec!["user".to_owned()];
        let none: Vec<String> = Vec::new();
        let accepted = ["admin".to_owned(), "user".to_owned()];
        let admin_only = ["admin".to_owned()];

        let admitted = |req: Requirement, roles: Option<&[String]>| req.admit(roles).ok();
        assert_eq!(
            admitted(Requirement::Public, None),
            Some(Admission::Anonymous)
        );
        assert_eq!(
            admitted(Requirement::Public, Some(&user)),
            Some(Admission::Anonymous)
        );
        assert_eq!(
            admitted(Requirement::Optional, None),
            Some(Admission::Anonymous)
        );
        assert_eq!(
            admitted(Requirement::Optional, Some(&none)),
            Some(Admission::Identified)
        );
        assert_eq!(
            admitted(Requirement::Roles(&[]), Some(&none)),
            Some(Admission::Identified)
        );
        assert_eq!(
            admitted(Requirement::Roles(&accepted), Some(&user)),
            Some(Admission::Identified)
        );

        assert!(matches!(
            Requirement::Roles(&[]).admit(None),
            Err(AuthError::Unauthorized(_))
        ));
        assert!(matches!(
            Requirement::Roles(&admin_only).admit(Some(&user)),
            Err(AuthError::Forbidden(MISSING_ROLE))
        ));
        assert!(matches!(
            Requirement::NoRoute.admit(Some(&user)),
            Err(AuthError::Forbidden(NO_ROUTE))
        ));
    }

    #[test]
    fn reads_credential_only_when_identity_matters() {
        assert!(!Requirement::Public.reads_credential());
        assert!(!Requirement::NoRoute.reads_credential());
        assert!(Requirement::Optional.reads_credential());
        assert!(Requirement::Roles(&[]).reads_credential());
    }

    #[test]
    fn table_rejects_invalid_entries_by_index() {
        let cases: Vec<(RouteSpec, &str)> = vec![
            (spec("GTE", "/a"), "routes[1]: method \"GTE\" is not one of"),
            (spec("GET", "a"), "routes[1]: path \"a\" must start with /"),
            (spec("GET", "/a//b"), "has an empty segment"),
            (spec("GET", "/a/"), "has an empty segment"),
            (spec("GET", "/a/../b"), "has a dot segment"),
            (spec("GET", "/**/a"), "only as the last segment"),
            (spec("GET", "/a*"), "contains '*'"),
            (spec("GET", "/{}"), "needs a name"),
            (spec("GET", "/a%20b"), "contains '%'"),
            (roles("GET", "/a", &["a b"]), "role \"a b\""),
            (roles("GET", "/a", &["a,b"]), "role \"a,b\""),
            (roles("GET", "/a", &[""]), "role \"\""),
            (
                RouteSpec {
                    roles: vec!["user".to_owned()],
                    ..public("GET", "/a")
                },
                "public entry cannot require roles",
            ),
            (
                RouteSpec {
                    optional: true,
                    ..public("GET", "/a")
                },
                "public and optional exclude each other",
            ),
            (
                RouteSpec {
                    optional: true,
                    ..roles("GET", "/a", &["user"])
                },
                "optional entry cannot require roles",
            ),
            (
                spec("GET", "/ok"),
                "routes[1] (GET /ok) can never match: routes[0]",
            ),
            (spec("HEAD", "/ok"), "routes[1] (HEAD /ok) can never match"),
        ];
        for (entry, expected) in cases {
            let err =
                RouteTable::new(&[spec("GET", "/ok"), entry.clone()], Unmatched::Deny).unwrap_err();
            assert_eq!(err.problems.len(), 1, "{entry:?}: {err}");
            assert!(
                err.problems[0].contains(expected),
                "{entry:?}: {:?} lacks {expected:?}",
                err.problems[0]
            );
        }
    }

    #[test]
    fn table_rejects_shadowed_entries() {
        let shadowed = [
            (spec("*", "/**"), spec("GET", "/a")),
            (spec("*", "/a/**"), spec("POST", "/a")),
            (spec("GET", "/a/{id}"), spec("GET", "/a/b")),
            (spec("GET", "/a/*"), spec("GET", "/a/{id}")),
            (spec("GET", "/a/{x}/c"), spec("GET", "/a/{y}/c")),
            (spec("GET", "/a/**"), spec("GET", "/a/b/**")),
        ];
        for (earlier, later) in shadowed {
            let result = RouteTable::new(&[earlier.clone(), later.clone()], Unmatched::Deny);
            assert!(result.is_err(), "{earlier:?} then {later:?}");
        }

        let allowed = [
            (spec("GET", "/a/b"), spec("GET", "/a/{id}")),
            (spec("GET", "/a"), spec("*", "/a")),
            (spec("HEAD", "/a"), spec("GET", "/a")),
            (spec("GET", "/a/*"), spec("GET", "/a/**")),
            (spec("GET", "/a/b/**"), spec("GET", "/a/**")),
            (spec("GET", "/a"), spec("GET", "/a/*")),
            (
                RouteSpec {
                    enabled: false,
                    ..spec("*", "/**")
                },
                spec("GET", "/a"),
            ),
        ];
        for (earlier, later) in allowed {
            let result = RouteTable::new(&[earlier.clone(), later.clone()], Unmatched::Deny);
            assert!(result.is_ok(), "{earlier:?} then {later:?}: {result:?}");
        }
    }

    #[test]
    fn table_reports_every_problem() {
        let err = RouteTable::new(
            &[spec("GET", "/a"), spec("BAD", "/b"), spec("GET", "c")],
            Unmatched::Deny,
        )
        .unwrap_err();
        assert_eq!(err.problems.len(), 2);
        assert!(err.problems[0].starts_with("routes[1]"));
        assert!(err.problems[1].starts_with("routes[2]"));
        assert!(
            err.to_string()
                .starts_with("invalid gateway route table: routes[1]")
        );
    }

    #[test]
    fn method_names_are_case_insensitive_in_entries() {
        let table = RouteTable::new(&[public("get", "/a")], Unmatched::Deny).unwrap();
        assert_eq!(lookup(&table, "GET", "/a"), Requirement::Public);
    }

    fn segment_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just("{p}".to_owned()),
        ]
    }

    fn pattern_strategy() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(segment_strategy(), 0..4),
            prop_oneof![Just(""), Just("/*"), Just("/**")],
        )
            .prop_map(|(segments, tail)| {
                let body: String = segments.iter().map(|s| format!("/{s}")).collect();
                let joined = format!("{body}{tail}");
                if joined.is_empty() {
                    "/".to_owned()
                } else {
                    joined
                }
            })
    }

    proptest! {
        #[test]
        fn parse_is_idempotent(raw in "/[a-z./%2eE]{0,24}") {
            if let Ok(once) = RequestPath::parse(&raw) {
                let twice = RequestPath::parse(&once.to_string()).unwrap();
                prop_assert_eq!(&once, &twice);
                prop_assert!(once.segments().iter().all(|s| !s.is_empty() && s != "." && s != ".."));
            }
        }

        #[test]
        fn covered_patterns_match_a_superset(
            earlier in pattern_strategy(),
            later in pattern_strategy(),
            request in prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 0..6),
        ) {
            let earlier = parse_pattern(&earlier).unwrap();
            let later = parse_pattern(&later).unwrap();
            let request: Vec<String> = request.into_iter().map(str::to_owned).collect();
            if pattern_covers(&earlier, &later) && pattern_matches(&later, &request) {
                prop_assert!(pattern_matches(&earlier, &request));
            }
        }
    }
}
