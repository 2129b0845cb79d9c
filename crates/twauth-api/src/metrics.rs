//! Prometheus metrics of one process, served as text at `/metrics`.
//!
//! Every label takes its values from a fixed set: route templates (never raw
//! paths), standard method names, status codes, and the words listed on each
//! series. No label contains an address, a token or an id.

use std::sync::{Arc, OnceLock};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, web};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::error::ApiError;

/// Open and idle connections of the database pool, read at scrape time.
pub type PoolSampler = dyn Fn() -> (u32, u32) + Send + Sync;

/// The label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The kind of credential a check read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// A bearer token of a session.
    Session,
    /// An `api-key` and `api-secret` pair.
    KeyPair,
}

impl CredentialKind {
    fn label(self) -> &'static str {
        match self {
            CredentialKind::Session => "session",
            CredentialKind::KeyPair => "key_pair",
        }
    }
}

/// The series of one process. Clones share them.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    credential_checks: IntCounterVec,
    codes: IntCounterVec,
    rate_limited: IntCounterVec,
    outbox_pending: IntGauge,
    mail_deliveries: IntCounterVec,
    mail_worker_errors: IntCounter,
    mail_worker_last_run: IntGauge,
    db_pool_connections: IntGaugeVec,
    db_pool_max: IntGauge,
    pool_sampler: OnceLock<Box<PoolSampler>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates the series in a registry of their own, all named `twauth_*`.
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("twauth".to_owned()), None)
            .expect("the prefix `twauth` is a valid metric name");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
            registry
                .register(Box::new(vec.clone()))
                .expect("each metric name is registered once");
            vec
        };
        let gauge = |name: &str, help: &str| {
            let gauge = IntGauge::new(name, help).expect("valid gauge");
            registry
                .register(Box::new(gauge.clone()))
                .expect("each metric name is registered once");
            gauge
        };

        let http_requests = counter(
            "http_requests_total",
            "HTTP requests by route template, method and status code.",
            &["route", "method", "status"],
        );
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from receiving a request to sending its response head.",
            ),
            &["route", "method"],
        )
        .expect("valid histogram");
        registry
            .register(Box::new(http_duration.clone()))
            .expect("each metric name is registered once");
        let credential_checks = counter(
            "credential_checks_total",
            "Credential checks by kind (session, key_pair) and result \
             (valid, rejected, unavailable, error).",
            &["kind", "result"],
        );
        let codes = counter(
            "codes_total",
            "One-time codes by purpose and outcome: issued for registration, login, \
             email or key_pair; verified or rejected for session, email or key_pair.",
            &["purpose", "outcome"],
        );
        let rate_limited = counter(
            "rate_limited_total",
            "Requests answered 429 by an abuse limit, by route template.",
            &["route"],
        );
        let outbox_pending = gauge(
            "outbox_pending",
            "Messages waiting in the outbox, as the mail worker last counted them.",
        );
        let mail_deliveries = counter(
            "mail_deliveries_total",
            "Delivery attempts by result (sent, retried, failed).",
            &["result"],
        );
        let mail_worker_errors = IntCounter::new(
            "mail_worker_errors_total",
            "Mail worker loops that could not read the outbox.",
        )
        .expect("valid counter");
        registry
            .register(Box::new(mail_worker_errors.clone()))
            .expect("each metric name is registered once");
        let mail_worker_last_run = gauge(
            "mail_worker_last_run_timestamp_seconds",
            "Unix time at which the mail worker last finished a loop.",
        );
        let db_pool_connections = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Connections of the database pool by state (idle, in_use).",
            ),
            &["state"],
        )
        .expect("valid gauge");
        registry
            .register(Box::new(db_pool_connections.clone()))
            .expect("each metric name is registered once");
        let db_pool_max = gauge(
            "db_pool_max_connections",
            "Maximum size of the database pool.",
        );

        Metrics {
            registry,
            http_requests,
            http_duration,
            credential_checks,
            codes,
            rate_limited,
            outbox_pending,
            mail_deliveries,
            mail_worker_errors,
            mail_worker_last_run,
            db_pool_connections,
            db_pool_max,
            pool_sampler: OnceLock::new(),
        }
    }

    /// Sets the function that reads the pool's open and idle connections at
    /// each scrape, and the pool's maximum size. Only the first call counts.
    pub fn set_pool_sampler(
        &self,
        max_connections: u32,
        sampler: impl Fn() -> (u32, u32) + Send + Sync + 'static,
    ) {
        self.db_pool_max.set(i64::from(max_connections));
        let _ = self.pool_sampler.set(Box::new(sampler));
    }

    /// Records a finished request. `route` is the route template or
    /// [`UNMATCHED_ROUTE`]; the same call counts codes and 429s that the
    /// route and status imply.
    pub fn observe_request(&self, route: &str, method: &Method, status: StatusCode, seconds: f64) {
        let method = method_label(method);
        let status_label = status.as_u16().to_string();
        self.http_requests
            .with_label_values(&[route, method, &status_label])
            .inc();
        self.http_duration
            .with_label_values(&[route, method])
            .observe(seconds);

        if status == StatusCode::TOO_MANY_REQUESTS {
            self.rate_limited.with_label_values(&[route]).inc();
            return;
        }
        if let Some((purpose, outcome)) = code_event(route, method, status) {
            self.codes.with_label_values(&[purpose, outcome]).inc();
        }
    }

    /// Records one credential check and its result.
    pub fn credential_checked<T>(&self, kind: CredentialKind, result: &Result<T, ApiError>) {
        let label = match result {
            Ok(_) => "valid",
            Err(err) => {
                use actix_web::ResponseError;
                let status = err.status_code();
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    "unavailable"
                } else if status.is_client_error() {
                    "rejected"
                } else {
                    "error"
                }
            }
        };
        self.credential_checks
            .with_label_values(&[kind.label(), label])
            .inc();
    }

    /// Records the results of one delivery batch.
    pub fn mail_delivered(&self, sent: u32, retried: u32, failed: u32) {
        for (label, count) in [("sent", sent), ("retried", retried), ("failed", failed)] {
            self.mail_deliveries
                .with_label_values(&[label])
                .inc_by(u64::from(count));
        }
    }

    /// Records the outbox depth the worker counted.
    pub fn set_outbox_pending(&self, pending: u64) {
        self.outbox_pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// Records a worker loop that could not read the outbox.
    pub fn mail_worker_failed(&self) {
        self.mail_worker_errors.inc();
    }

    /// Records that the worker finished a loop at `unix_seconds`.
    pub fn mail_worker_ran(&self, unix_seconds: i64) {
        self.mail_worker_last_run.set(unix_seconds);
    }

    /// Samples the pool and encodes every series in the Prometheus text
    /// format.
    pub fn render(&self) -> String {
        if let Some(sampler) = self.pool_sampler.get() {
            let (open, idle) = sampler();
            let in_use = open.saturating_sub(idle);
            self.db_pool_connections
                .with_label_values(&["idle"])
                .set(i64::from(idle));
            self.db_pool_connections
                .with_label_values(&["in_use"])
                .set(i64::from(in_use));
        }
        let mut out = Vec::new();
        // Encoding into a Vec fails only on a malformed family, which the
        // constructors above rule out.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// A bounded label for a method: the standard ones by name, any other as
/// `other`.
pub(crate) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Returns the code event of a finished request as `(purpose, outcome)`.
/// A 2xx response from a route that mails a code issued one. From a
/// verification route, a 2xx response verified one and a 4xx response
/// rejected one. 429s are counted as rate-limit denials instead.
fn code_event(
    route: &str,
    method: &str,
    status: StatusCode,
) -> Option<(&'static str, &'static str)> {
    let path = route.strip_prefix(crate::BASE_PATH)?;
    let (purpose, verifies) = match (method, path) {
        ("POST", "/user") => ("registration", false),
        ("POST", "/session") => ("login", false),
        ("POST", "/email") => ("email", false),
        ("POST", "/keypair") => ("key_pair", false),
        // One route verifies both registration and login codes.
        ("PUT", "/session/verification") => ("session", true),
        ("PUT", "/email/verification") => ("email", true),
        ("PUT", "/keypair/verification") => ("key_pair", true),
        _ => return None,
    };
    if status.is_success() {
        Some((purpose, if verifies { "verified" } else { "issued" }))
    } else if verifies && status.is_client_error() {
        Some((purpose, "rejected"))
    } else {
        None
    }
}

/// Serves the metrics in the Prometheus text format.
pub async fn serve_metrics(metrics: web::Data<Arc<Metrics>>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(metrics.render())
}

/// Mounts `GET /metrics` on an app, the main one or a separate admin
/// listener.
pub fn configure(metrics: Arc<Metrics>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(metrics))
            .service(web::resource("/metrics").route(web::get().to(serve_metrics)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_events_follow_route_and_status() {
        let route = |p: &str| format!("{}{p}", crate::BASE_PATH);
        assert_eq!(
            code_event(&route("/user"), "POST", StatusCode::ACCEPTED),
            Some(("registration", "issued"))
        );
        assert_eq!(
            code_event(&route("/session/verification"), "PUT", StatusCode::ACCEPTED),
            Some(("session", "verified"))
        );
        assert_eq!(
            code_event(
                &route("/keypair/verification"),
                "PUT",
                StatusCode::UNAUTHORIZED
            ),
            Some(("key_pair", "rejected"))
        );
        assert_eq!(
            code_event(&route("/session"), "GET", StatusCode::OK),
            None,
            "a session check mails nothing"
        );
        assert_eq!(
            code_event(&route("/user"), "POST", StatusCode::SERVICE_UNAVAILABLE),
            None
        );
    }

    #[test]
    fn render_lists_series_with_bounded_labels() {
        let metrics = Metrics::new();
        metrics.set_pool_sampler(10, || (4, 1));
        metrics.observe_request(
            &format!("{}/session/{{id}}", crate::BASE_PATH),
            &Method::DELETE,
            StatusCode::NO_CONTENT,
            0.01,
        );
        metrics.observe_request(
            UNMATCHED_ROUTE,
            &Method::from_bytes(b"BREW").unwrap(),
            StatusCode::NOT_FOUND,
            0.001,
        );
        metrics.mail_delivered(2, 1, 0);

        let text = metrics.render();
        assert!(text.contains(
            "twauth_http_requests_total{method=\"DELETE\",route=\"/api/auth/v2/session/{id}\",status=\"204\"} 1"
        ));
        assert!(text.contains(
            "twauth_http_requests_total{method=\"other\",route=\"unmatched\",status=\"404\"} 1"
        ));
        assert!(text.contains("twauth_db_pool_connections{state=\"in_use\"} 3"));
        assert!(text.contains("twauth_db_pool_max_connections 10"));
        assert!(text.contains("twauth_mail_deliveries_total{result=\"sent\"} 2"));
        assert!(text.contains("twauth_http_request_duration_seconds_bucket"));
    }
}
