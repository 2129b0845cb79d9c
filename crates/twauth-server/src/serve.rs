//! Wiring: builds the adapters from settings, hands them to the domain, and
//! runs the HTTP server and the delivery worker until a signal stops them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::net::SocketAddr;

use actix_web::dev::ServerHandle;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tokio::sync::{Notify, watch};
use twauth_api::health::Readiness;
use twauth_api::metrics::Metrics;
use twauth_api::{ApiSettings, ApiState};
use twauth_domain::delivery::DeliveryPolicy;
use twauth_domain::memory::{SystemClock, SystemRandom};
use twauth_domain::ports::{AccountLimit, Clock, MailTransport, RateRule};
use twauth_domain::{Auth, Policy};
use twauth_persistence::{Backend, Database, PoolSettings};

use crate::config::Settings;

fn connect(settings: &Settings) -> anyhow::Result<Database> {
    let pool = PoolSettings {
        max_size: settings.database.max_connections,
        connect_timeout: Duration::from_secs(settings.database.connect_timeout),
        ..PoolSettings::default()
    };
    Database::connect(&settings.database.url, &pool).context("failed to open the database")
}

/// Runs `twauth migrate`.
pub fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let database = connect(settings)?;
    database.migrate().context("failed to run migrations")?;
    tracing::info!("migrations applied");
    Ok(())
}

/// Builds the domain policy from the `[auth]` settings.
pub fn policy(settings: &Settings) -> anyhow::Result<Policy> {
    let auth = &settings.auth;
    let limits = &settings.limits;
    let seconds = time::Duration::seconds;
    let per_client = |max, window| RateRule {
        max,
        window: seconds(window),
        min_gap: time::Duration::ZERO,
    };
    let policy = Policy {
        code_lifetime: seconds(auth.code_lifetime),
        code_max_attempts: auth.code_max_attempts,
        code_hash_cost: auth.code_hash_cost,
        session_lifetime: seconds(auth.session_lifetime),
        session_max_lifetime: seconds(auth.session_max_lifetime),
        session_idle_timeout: (auth.session_idle_timeout > 0)
            .then(|| seconds(auth.session_idle_timeout)),
        key_pair_max_days: auth.key_pair_max_days,
        default_roles: auth.default_roles.clone(),
        default_groups: auth.default_groups.clone(),
        unverified_account_ttl: seconds(auth.unverified_account_ttl),
        account_failures: AccountLimit {
            max_failures: limits.account_failures,
            window: seconds(limits.account_failure_window),
        },
        codes_per_address: RateRule {
            max: limits.codes_per_address,
            window: seconds(limits.codes_per_address_window),
            min_gap: seconds(limits.codes_per_address_gap),
        },
        logins_per_client: per_client(limits.logins_per_client, limits.logins_per_client_window),
        registrations_per_client: per_client(
            limits.registrations_per_client,
            limits.registrations_per_client_window,
        ),
        emails_per_client: per_client(limits.emails_per_client, limits.emails_per_client_window),
        verifications_per_client: per_client(
            limits.verifications_per_client,
            limits.verifications_per_client_window,
        ),
        ..Policy::default()
    };
    policy.validate()?;
    Ok(policy)
}

fn api_settings(settings: &Settings) -> anyhow::Result<ApiSettings> {
    let mut trusted_proxies = Vec::new();
    for entry in &settings.server.trusted_proxies {
        let net = entry
            .parse::<ipnet::IpNet>()
            .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .with_context(|| format!("invalid server.trusted_proxies entry {entry:?}"))?;
        trusted_proxies.push(net);
    }
    Ok(ApiSettings {
        trusted_proxies,
        body_limit: settings.server.body_limit,
    })
}

/// Runs `twauth serve`: until SIGINT or SIGTERM, then drains and exits.
/// `config_file` is read again when SIGHUP reloads the gateway routes.
pub fn serve(settings: Settings, config_file: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let started = Instant::now();
    let policy = policy(&settings)?;
    let api = api_settings(&settings)?;
    let gateway = crate::gateway::build(&settings.gateway)?;

    let database = connect(&settings)?;
    let migrate_on_start = settings
        .database
        .migrate_on_start
        .unwrap_or(database.backend() == Backend::Sqlite);
    if migrate_on_start {
        database.migrate().context("failed to run migrations")?;
    }

    let transport: Arc<dyn MailTransport> = Arc::new(
        twauth_mail::Transport::from_settings(
            &settings.mail.transport,
            twauth_mail::MailSettings {
                from: settings.mail.from.clone(),
                product_name: settings.mail.product_name.clone(),
            },
        )
        .context("failed to set up the mail transport")?,
    );

    let metrics_listen = metrics_listen(&settings)?;
    let metrics = Arc::new(Metrics::new());
    let sampled = database.clone();
    metrics.set_pool_sampler(settings.database.max_connections, move || {
        sampled.pool_state()
    });
    let checked = database.clone();
    let readiness = Arc::new(Readiness::new(
        Duration::from_secs(settings.health.worker_stale_after),
        move || checked.pending_migrations().map_err(|err| err.to_string()),
    ));

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let revocations = Arc::new(database.clone());
    let auth = Auth::new(
        Arc::new(database),
        clock.clone(),
        Arc::new(SystemRandom::default()),
        policy,
    );
    let auth = Arc::new(crate::cache::attach(auth, &settings.cache, revocations));
    let delivery = DeliveryPolicy {
        max_age: time::Duration::seconds(settings.mail.max_age as i64),
        keep_finished: time::Duration::seconds(settings.mail.keep_finished as i64),
        ..DeliveryPolicy::default()
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async move {
        let hangups = crate::gateway::hangup_signal()?;
        tokio::spawn(crate::gateway::reload_on_hangup(
            hangups,
            gateway.clone(),
            config_file,
        ));

        let wake = Arc::new(Notify::new());
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker = crate::worker::DeliveryWorker {
            auth: auth.clone(),
            transport,
            clock,
            policy: delivery,
            poll: Duration::from_millis(settings.mail.poll_interval_ms),
            metrics: metrics.clone(),
            heartbeat: readiness.worker.clone(),
        };
        let worker = tokio::spawn(crate::worker::run_delivery(worker, wake.clone(), stop_rx));

        let admin = match metrics_listen {
            Some(addr) => Some(serve_metrics_apart(addr, metrics.clone())?),
            None => None,
        };
        let metrics_on_main = admin.is_none();

        let state = ApiState::new(auth, api)
            .with_mail_hook(move || wake.notify_one())
            .with_gateway(gateway)
            .with_metrics(metrics.clone())
            .with_readiness(readiness);
        let mut server = HttpServer::new(move || {
            let observed = metrics.clone();
            let exposed = metrics.clone();
            App::new()
                .wrap(from_fn(move |req, next| {
                    twauth_api::observe::observe_requests(observed.clone(), req, next)
                }))
                .configure(move |cfg| {
                    if metrics_on_main {
                        twauth_api::metrics::configure(exposed)(cfg);
                    }
                })
                .configure(twauth_api::configure(state.clone()))
        })
        .shutdown_timeout(settings.server.shutdown_timeout)
        .bind(settings.server.listen)
        .with_context(|| format!("failed to listen on {}", settings.server.listen))?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        for addr in server.addrs() {
            // Tests and scripts read the bound port from this line.
            println!("twauth listening on http://{addr}");
            tracing::info!(
                address = %addr,
                startup_ms = started.elapsed().as_millis() as u64,
                "twauth listening"
            );
        }

        server.run().await.context("the HTTP server failed")?;

        tracing::info!("HTTP server stopped, stopping the mail worker");
        let _ = stop_tx.send(true);
        let _ = worker.await;
        if let Some(admin) = admin {
            admin.stop(true).await;
        }
        tracing::info!("twauth stopped");
        Ok(())
    })
}

/// Reads `metrics.listen`: `None` when `/metrics` goes on the main listener.
fn metrics_listen(settings: &Settings) -> anyhow::Result<Option<SocketAddr>> {
    let listen = settings.metrics.listen.trim();
    if listen.is_empty() {
        return Ok(None);
    }
    let addr = listen.parse().with_context(|| {
        format!("invalid metrics.listen {listen:?}: expected an address:port or \"\"")
    })?;
    Ok(Some(addr))
}

/// Starts a listener that serves only `/metrics`. It ignores signals and
/// runs until the returned handle stops it, so scrapes keep working while
/// the main server drains.
fn serve_metrics_apart(addr: SocketAddr, metrics: Arc<Metrics>) -> anyhow::Result<ServerHandle> {
    let server = HttpServer::new(move || {
        App::new()
            .configure(twauth_api::metrics::configure(metrics.clone()))
            .default_service(web::to(twauth_api::route_not_found))
    })
    .workers(1)
    .disable_signals()
    .bind(addr)
    .with_context(|| format!("failed to listen on {addr} for metrics"))?;
    for addr in server.addrs() {
        // Tests read the bound port from this line.
        println!("twauth metrics on http://{addr}");
        tracing::info!(address = %addr, "metrics listening");
    }
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(handle)
}
