//! What every handler shares: the use cases and the API settings.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use twauth_domain::Auth;

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
}

impl ApiState {
    pub fn new(auth: Arc<Auth>, settings: ApiSettings) -> Self {
        ApiState {
            auth,
            settings: Arc::new(settings),
            mail_queued: Arc::new(|| {}),
        }
    }

    pub fn with_mail_hook(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.mail_queued = Arc::new(hook);
        self
    }
}
