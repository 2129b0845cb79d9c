//! Health endpoints for load balancers and orchestrators, outside the API
//! base path and without credentials.
//!
//! `/health/alive` returns 200 while the process serves HTTP. `/health/ready`
//! returns 200 only when the database replies to a ping, no migration is
//! pending, and the mail worker finished a loop recently; otherwise 503 with
//! the usual error headers. Readiness runs on the blocking pool, because the
//! store blocks, and takes at most the pool's connection timeout when the
//! database is down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use twauth_domain::Auth;

use crate::error::ApiError;
use crate::state::ApiState;

/// Checks whether migrations remain to be applied. `Err` contains the reason
/// the check failed.
pub type MigrationCheck = dyn Fn() -> Result<bool, String> + Send + Sync;

/// The last time the mail worker finished a loop, shared between the worker
/// and the readiness check.
#[derive(Debug)]
pub struct Heartbeat {
    origin: Instant,
    /// Milliseconds from `origin` to the last beat, plus one; 0 means never.
    last: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            origin: Instant::now(),
            last: AtomicU64::new(0),
        }
    }
}

impl Heartbeat {
    /// Records a finished loop now.
    pub fn beat(&self) {
        let millis = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last.store(millis + 1, Ordering::Relaxed);
    }

    /// Time since the last beat, or `None` before the first one.
    pub fn age(&self) -> Option<Duration> {
        let last = self.last.load(Ordering::Relaxed).checked_sub(1)?;
        let now = self.origin.elapsed();
        Some(now.saturating_sub(Duration::from_millis(last)))
    }
}

/// What readiness depends on besides the store.
pub struct Readiness {
    /// Beaten by the mail worker after each loop.
    pub worker: Arc<Heartbeat>,
    /// Age of the last beat beyond which the process is not ready.
    pub worker_max_age: Duration,
    migrations: Box<MigrationCheck>,
    /// Set once no migration is pending. A running binary's migrations do
    /// not become unapplied, so the check is not repeated after that.
    migrated: AtomicBool,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("worker", &self.worker)
            .field("worker_max_age", &self.worker_max_age)
            .finish_non_exhaustive()
    }
}

impl Default for Readiness {
    /// Readiness with no migration check and a worker that must beat once a
    /// minute.
    fn default() -> Self {
        Readiness::new(Duration::from_secs(60), || Ok(false))
    }
}

impl Readiness {
    pub fn new(
        worker_max_age: Duration,
        migrations: impl Fn() -> Result<bool, String> + Send + Sync + 'static,
    ) -> Readiness {
        Readiness {
            worker: Arc::new(Heartbeat::default()),
            worker_max_age,
            migrations: Box::new(migrations),
            migrated: AtomicBool::new(false),
        }
    }

    /// Runs every check in order and returns the first failure. Blocks.
    ///
    /// # Errors
    /// [`ApiError::NotReady`] naming the failed check.
    pub fn check(&self, auth: &Auth) -> Result<(), ApiError> {
        auth.store().ping().map_err(|err| ApiError::NotReady {
            reason: "the database does not answer",
            cause: err.to_string(),
        })?;

        if !self.migrated.load(Ordering::Relaxed) {
            match (self.migrations)() {
                Ok(false) => self.migrated.store(true, Ordering::Relaxed),
                Ok(true) => {
                    return Err(ApiError::NotReady {
                        reason: "database migrations are pending; run `twauth migrate`",
                        cause: String::new(),
                    });
                }
                Err(cause) => {
                    return Err(ApiError::NotReady {
                        reason: "the database migrations could not be read",
                        cause,
                    });
                }
            }
        }

        match self.worker.age() {
            None => Err(ApiError::NotReady {
                reason: "the mail worker has not finished a loop yet",
                cause: String::new(),
            }),
            Some(age) if age > self.worker_max_age => Err(ApiError::NotReady {
                reason: "the mail worker has not finished a loop recently",
                cause: format!("last loop finished {} s ago", age.as_secs()),
            }),
            Some(_) => Ok(()),
        }
    }
}

async fn alive() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("alive")
}

async fn ready(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let state = state.get_ref().clone();
    web::block(move || state.readiness.check(&state.auth))
        .await
        .map_err(|err| ApiError::Internal(format!("blocking task failed: {err}")))??;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ready"))
}

/// Mounts `/health/alive` and `/health/ready`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health/alive").to(alive))
        .service(web::resource("/health/ready").to(ready));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_has_no_age_before_first_beat() {
        let heartbeat = Heartbeat::default();
        assert!(heartbeat.age().is_none());
        heartbeat.beat();
        assert!(heartbeat.age().unwrap() < Duration::from_secs(1));
    }
}
