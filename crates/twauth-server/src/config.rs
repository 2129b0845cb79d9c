//! Configuration: `config/default.toml` (compiled in), then an optional file
//! from `--config` or `TWAUTH_CONFIG`, then `TWAUTH_`-prefixed environment
//! variables with `__` between nested keys (`TWAUTH_DATABASE__URL`).

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

/// The defaults every other layer overrides.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/default.toml");

#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub mail: MailSettings,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    pub log: LogSettings,
    pub gateway: GatewaySettings,
    pub cache: CacheSettings,
    pub metrics: MetricsSettings,
    pub health: HealthSettings,
}

#[derive(Clone, Debug, Deserialize)]
pub struct MetricsSettings {
    /// Empty to serve `/metrics` on `server.listen`, or an address:port for
    /// a separate listener that serves only `/metrics`.
    pub listen: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct HealthSettings {
    /// Seconds since the mail worker last finished a loop after which
    /// `/health/ready` fails.
    pub worker_stale_after: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ServerSettings {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Seconds that in-flight requests get to finish after SIGTERM.
    pub shutdown_timeout: u64,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Peers (addresses or CIDR networks) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`.
    pub url: String,
    /// Run migrations at start-up. Unset means on for SQLite, off for
    /// PostgreSQL, where `twauth migrate` runs them as a deploy step.
    pub migrate_on_start: Option<bool>,
    /// Maximum number of connections in the pool.
    pub max_connections: u32,
    /// Seconds to wait for a pooled connection before the request fails
    /// with 503.
    pub connect_timeout: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct MailSettings {
    /// The `From` header of every message.
    pub from: String,
    /// Product name used in subjects and bodies.
    pub product_name: String,
    /// Milliseconds between outbox polls when no request wakes the worker.
    pub poll_interval_ms: u64,
    /// Seconds to keep sent and failed messages before purging them.
    pub keep_finished: u64,
    /// Seconds after which a message that still fails is given up.
    pub max_age: u64,
    /// The transport and its settings.
    pub transport: twauth_mail::TransportSettings,
}

#[derive(Clone, Debug, Deserialize)]
pub struct AuthSettings {
    /// Seconds a one-time code stays valid.
    pub code_lifetime: i64,
    /// Wrong attempts after which a code is dead.
    pub code_max_attempts: u32,
    /// bcrypt cost of code hashes, 4 to 31.
    pub code_hash_cost: u32,
    /// Seconds a session lives after verification or its last extend.
    pub session_lifetime: i64,
    /// Seconds after verification beyond which a session cannot be extended.
    pub session_max_lifetime: i64,
    /// Seconds of inactivity after which a session dies; 0 turns this off.
    pub session_idle_timeout: i64,
    /// Largest `days` of a new key pair.
    pub key_pair_max_days: u32,
    /// Roles of a new user.
    pub default_roles: Vec<String>,
    /// Groups of a new user.
    pub default_groups: Vec<String>,
    /// Seconds an account whose registration was never verified is kept.
    pub unverified_account_ttl: i64,
}

/// Abuse limits. Counts live in the database, so they hold across replicas.
#[derive(Clone, Debug, Deserialize)]
pub struct LimitSettings {
    /// Wrong codes per account per window before all its codes are refused
    /// (at most 100).
    pub account_failures: u32,
    /// Seconds in the wrong-code window of an account.
    pub account_failure_window: i64,
    /// Codes mailed to one address per window.
    pub codes_per_address: u32,
    /// Seconds in the per-address window.
    pub codes_per_address_window: i64,
    /// Minimum seconds between two codes to one address.
    pub codes_per_address_gap: i64,
    /// Logins started from one client address per window.
    pub logins_per_client: u32,
    pub logins_per_client_window: i64,
    /// Registrations from one client address per window.
    pub registrations_per_client: u32,
    pub registrations_per_client_window: i64,
    /// Emails added from one client address per window.
    pub emails_per_client: u32,
    pub emails_per_client_window: i64,
    /// Code verifications from one client address per window.
    pub verifications_per_client: u32,
    pub verifications_per_client_window: i64,
}

/// The route table of the gateway decision endpoint, `/authorize`.
#[derive(Clone, Debug, Deserialize)]
pub struct GatewaySettings {
    /// What happens to a request that no route entry matches.
    pub unmatched: twauth_domain::gateway::Unmatched,
    /// Route entries, tried in order; the first match wins.
    pub routes: Vec<twauth_domain::gateway::RouteSpec>,
    /// A TOML file of `[[routes]]` entries, used in place of `routes`.
    pub routes_file: Option<std::path::PathBuf>,
    /// The path Envoy's `path_prefix` sends checks to; the rest of the path
    /// is the original request's.
    pub path_prefix: String,
}

/// The in-process cache of verified credentials.
#[derive(Clone, Debug, Deserialize)]
pub struct CacheSettings {
    /// Keep usable sessions and key pairs in memory between checks.
    pub enabled: bool,
    /// Most entries in each of the session and key pair caches.
    pub capacity: usize,
    /// Milliseconds an entry is trusted at most before the database is read
    /// again; it bounds how stale an entry can be if a revocation is missed.
    pub ttl_ms: u64,
    /// Milliseconds between reads of the revocation feed, through which
    /// processes on one database learn of each other's revocations.
    pub revocation_poll_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct LogSettings {
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `twauth=debug,actix_web=info`.
    pub level: String,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Settings {
    /// Reads the layers in order; `file` is the optional middle layer.
    ///
    /// # Errors
    /// Fails on an unreadable file, a malformed value or a missing key.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_CONFIG,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("TWAUTH")
                .prefix_separator("_")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("server.trusted_proxies")
                .with_list_parse_key("auth.default_roles")
                .with_list_parse_key("auth.default_groups")
                .try_parsing(true),
        );
        let settings: Settings = builder
            .build()
            .context("failed to read the configuration")?
            .try_deserialize()
            .context("invalid configuration")?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses() {
        let settings = Settings::load(None).unwrap();
        assert_eq!(settings.server.listen.to_string(), "127.0.0.1:8080");
        assert!(settings.database.url.starts_with("sqlite://"));
        assert_eq!(settings.auth.code_max_attempts, 5);
        assert_eq!(settings.auth.default_roles, vec!["user"]);
    }

    #[test]
    fn file_layer_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("twauth-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("extra.toml");
        std::fs::write(&path, "[auth]\ncode_lifetime = 120\n").unwrap();
        let settings = Settings::load(Some(&path)).unwrap();
        assert_eq!(settings.auth.code_lifetime, 120);
        assert_eq!(settings.auth.session_lifetime, 86_400);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/example.toml");
        let settings = Settings::load(Some(&path)).unwrap();
        assert!(settings.database.url.starts_with("postgres://"));
        assert!(matches!(
            settings.mail.transport,
            twauth_mail::TransportSettings::Smtp(_)
        ));
    }

    #[test]
    fn gateway_routes_parse_from_a_file_layer() {
        let dir = tempfile_dir("gateway");
        let path = dir.join("gateway.toml");
        std::fs::write(
            &path,
            "[gateway]\nunmatched = \"allow_authenticated\"\n\
             [[gateway.routes]]\nmethod = \"GET\"\npath = \"/health\"\npublic = true\n\
             [[gateway.routes]]\npath = \"/admin/**\"\nroles = [\"admin\"]\n",
        )
        .unwrap();
        let settings = Settings::load(Some(&path)).unwrap();
        assert_eq!(
            settings.gateway.unmatched,
            twauth_domain::gateway::Unmatched::AllowAuthenticated
        );
        assert_eq!(settings.gateway.routes.len(), 2);
        assert_eq!(settings.gateway.routes[1].method, "*");
        assert_eq!(settings.gateway.routes[1].roles, vec!["admin"]);
        assert!(settings.gateway.routes[1].enabled);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn gateway_defaults_deny_unmatched() {
        let settings = Settings::load(None).unwrap();
        assert_eq!(
            settings.gateway.unmatched,
            twauth_domain::gateway::Unmatched::Deny
        );
        assert!(settings.gateway.routes.is_empty());
        assert!(settings.gateway.routes_file.is_none());
        assert_eq!(settings.gateway.path_prefix, "/api/auth/v2/authorize");
    }

    fn tempfile_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("twauth-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn missing_file_is_an_error() {
        assert!(Settings::load(Some(Path::new("/nonexistent/twauth.toml"))).is_err());
    }
}
