//! The request middleware: one log event and one set of metric samples per
//! request.
//!
//! The event carries the method, the route template, the status and the
//! duration. It never carries the raw path, so no id, token or query string
//! reaches the log. When the response has an `x-error-id`, the event carries
//! it too, as does the error's own log line.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;

use crate::metrics::{Metrics, UNMATCHED_ROUTE, method_label};

/// Routes that probes and scrapers call every few seconds; their events are
/// logged at debug level so they do not drown the others.
const QUIET_ROUTES: [&str; 3] = ["/health/alive", "/health/ready", "/metrics"];

/// Logs and measures one request. Wrap an app with it through
/// `actix_web::middleware::from_fn`.
///
/// # Errors
/// Passes on the inner service's error unchanged.
pub async fn observe_requests(
    metrics: Arc<Metrics>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();

    let result = next.call(req).await;

    let elapsed = started.elapsed();
    let (route, status, error_id) = match &result {
        Ok(response) => {
            let route = response
                .request()
                .match_pattern()
                .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
            let error_id = response
                .headers()
                .get("x-error-id")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            (route, response.status(), error_id)
        }
        // Handlers turn their errors into responses, so only a failing
        // middleware ends here, before the route is known.
        Err(err) => (
            UNMATCHED_ROUTE.to_owned(),
            err.as_response_error().status_code(),
            None,
        ),
    };

    metrics.observe_request(&route, &method, status, elapsed.as_secs_f64());
    log_request(
        &method,
        &route,
        status,
        elapsed.as_millis(),
        error_id.as_deref(),
    );
    result
}

fn log_request(
    method: &Method,
    route: &str,
    status: StatusCode,
    duration_ms: u128,
    error_id: Option<&str>,
) {
    let method = method_label(method);
    let quiet = QUIET_ROUTES.contains(&route) && status.is_success();
    let duration_ms = u64::try_from(duration_ms).unwrap_or(u64::MAX);
    macro_rules! emit {
        ($level:ident) => {
            match error_id {
                Some(id) => tracing::$level!(
                    http.method = method,
                    http.route = route,
                    http.status = status.as_u16(),
                    duration_ms,
                    error.id = id,
                    "request finished"
                ),
                None => tracing::$level!(
                    http.method = method,
                    http.route = route,
                    http.status = status.as_u16(),
                    duration_ms,
                    "request finished"
                ),
            }
        };
    }
    if quiet {
        emit!(debug);
    } else {
        emit!(info);
    }
}
