//! The gateway route table: built from the `[gateway]` settings at start-up,
//! and rebuilt from a fresh read of the configuration on SIGHUP.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::Deserialize;
use tokio::signal::unix::{Signal, SignalKind, signal};
use twauth_api::state::{DEFAULT_AUTHORIZE_PREFIX, Gateway};
use twauth_domain::gateway::{RouteSpec, RouteTable};

use crate::config::{GatewaySettings, Settings};

/// The content of `gateway.routes_file`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesFile {
    #[serde(default)]
    routes: Vec<RouteSpec>,
}

impl GatewaySettings {
    /// Reads and validates the route table from `routes` or `routes_file`.
    ///
    /// # Errors
    /// Fails when both are set, when the file cannot be read or parsed, and
    /// when an entry is invalid; the message names the entry's index.
    pub fn route_table(&self) -> anyhow::Result<RouteTable> {
        let (routes, source) = match &self.routes_file {
            Some(path) if !self.routes.is_empty() => {
                anyhow::bail!(
                    "gateway.routes and gateway.routes_file ({}) are both set; keep one",
                    path.display()
                );
            }
            Some(path) => (read_routes_file(path)?, path.display().to_string()),
            None => (self.routes.clone(), "gateway.routes".to_owned()),
        };
        RouteTable::new(&routes, self.unmatched).with_context(|| format!("in {source}"))
    }

    /// Checks `path_prefix`, which must lie under the decision endpoint.
    ///
    /// # Errors
    /// Fails for a prefix outside `/api/auth/v2/authorize` or one that ends
    /// with `/`.
    pub fn checked_path_prefix(&self) -> anyhow::Result<String> {
        let prefix = &self.path_prefix;
        let under_endpoint = prefix == DEFAULT_AUTHORIZE_PREFIX
            || prefix
                .strip_prefix(DEFAULT_AUTHORIZE_PREFIX)
                .is_some_and(|rest| rest.starts_with('/'));
        if !under_endpoint || prefix.ends_with('/') {
            anyhow::bail!(
                "invalid gateway.path_prefix {prefix:?}: it must be {DEFAULT_AUTHORIZE_PREFIX} \
                 or a path below it, without a trailing /"
            );
        }
        Ok(prefix.clone())
    }
}

fn read_routes_file(path: &Path) -> anyhow::Result<Vec<RouteSpec>> {
    let file: RoutesFile = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .build()
        .and_then(config::Config::try_deserialize)
        .with_context(|| format!("failed to read gateway.routes_file {}", path.display()))?;
    Ok(file.routes)
}

/// Builds the gateway state from the settings, at start-up.
pub fn build(settings: &GatewaySettings) -> anyhow::Result<Arc<Gateway>> {
    let table = settings.route_table()?;
    let prefix = settings.checked_path_prefix()?;
    tracing::info!(gateway.routes = table.len(), "gateway route table loaded");
    Ok(Arc::new(Gateway::new(table, prefix)))
}

/// Listens for SIGHUP. Call it before the server starts, because until a
/// handler is installed SIGHUP ends the process.
pub fn hangup_signal() -> anyhow::Result<Signal> {
    signal(SignalKind::hangup()).context("failed to install the SIGHUP handler")
}

/// Reloads the route table on each SIGHUP, from the same configuration
/// layers as at start-up. An invalid table is logged and the old one stays
/// in use. `path_prefix` is not reloaded.
pub async fn reload_on_hangup(
    mut hangups: Signal,
    gateway: Arc<Gateway>,
    config_file: Option<PathBuf>,
) {
    while hangups.recv().await.is_some() {
        let table = Settings::load(config_file.as_deref())
            .and_then(|settings| settings.gateway.route_table());
        match table {
            Ok(table) => {
                let routes = table.len();
                gateway.replace(table);
                tracing::info!(gateway.routes = routes, "gateway route table reloaded");
            }
            Err(err) => {
                tracing::error!(
                    error = format!("{err:#}"),
                    "gateway route table reload failed; the previous table stays in use"
                );
            }
        }
    }
}
