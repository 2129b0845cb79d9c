//! What every handler shares: the use cases and the API settings.

use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};

use ipnet::IpNet;
use twauth_domain::Auth;
use twauth_domain::gateway::{RouteTable, Unmatched};

use crate::health::Readiness;
use crate::metrics::Metrics;

/// Settings of the HTTP layer.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// Peers whose `X-Forwarded-For` header is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            trusted_proxies: Vec::new(),
            body_limit: 16 * 1024,
        }
    }
}

impl ApiSettings {
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}

/// Shared state of the API, cloned into each worker.
#[derive(Clone)]
pub struct ApiState {
    pub auth: Arc<Auth>,
    pub settings: Arc<ApiSettings>,
    /// Called after a request queued mail, so the delivery worker wakes up
    /// without waiting for its next poll.
    pub mail_queued: Arc<dyn Fn() + Send + Sync>,
    /// The route table behind `/authorize`, replaced on reload.
    pub gateway: Arc<Gateway>,
    /// The series served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// What `/health/ready` checks besides the store.
    pub readiness: Arc<Readiness>,
}

impl ApiState {
    pub fn new(auth: Arc<Auth>, settings: ApiSettings) -> Self {
        ApiState {
            auth,
            settings: Arc::new(settings),
            mail_queued: Arc::new(|| {}),
            gateway: Arc::new(Gateway::new(
                RouteTable::empty(Unmatched::Deny),
                DEFAULT_AUTHORIZE_PREFIX.to_owned(),
            )),
            metrics: Arc::new(Metrics::new()),
            readiness: Arc::new(Readiness::default()),
        }
    }

    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn with_readiness(mut self, readiness: Arc<Readiness>) -> Self {
        self.readiness = readiness;
        self
    }

    pub fn with_gateway(mut self, gateway: Arc<Gateway>) -> Self {
        self.gateway = gateway;
        self
    }

    pub fn with_mail_hook(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.mail_queued = Arc::new(hook);
        self
    }
}

/// The path of the decision endpoint, which Envoy's `path_prefix` names.
pub const DEFAULT_AUTHORIZE_PREFIX: &str = "/api/auth/v2/authorize";

/// The gateway settings of the decision endpoint. The route table can be
/// swapped while requests run: each request takes the table current when it
/// starts and keeps it to the end.
pub struct Gateway {
    table: RwLock<Arc<RouteTable>>,
    /// The prefix stripped from the request path to find the original path
    /// when no `X-Original-URI` or `X-Forwarded-Uri` header is sent.
    pub path_prefix: String,
}

impl Gateway {
    pub fn new(table: RouteTable, path_prefix: String) -> Self {
        Gateway {
            table: RwLock::new(Arc::new(table)),
            path_prefix,
        }
    }

    /// The current route table.
    pub fn table(&self) -> Arc<RouteTable> {
        // A writer only swaps an `Arc`, so a poisoned lock still holds a
        // whole table.
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the route table; requests already running keep the old one.
    pub fn replace(&self, table: RouteTable) {
        *self.table.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
    }
}
