//! The `twauth` binary: reads configuration, wires adapters to the domain's
//! ports, and serves the Auth API v2 or runs migrations.

mod cache;
mod config;
mod gateway;
mod serve;
mod worker;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

/// A self-hostable authentication server: passwordless logins by emailed
/// code, bearer sessions and API key pairs.
#[derive(Parser)]
#[command(name = "twauth", version)]
struct Cli {
    /// Configuration file layered over the defaults.
    #[arg(long, env = "TWAUTH_CONFIG", global = true)]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

fn init_logging(settings: &Settings) {
    let filter = EnvFilter::try_new(&settings.log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.log.format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    init_logging(&settings);

    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => serve::migrate(&settings),
        Command::Serve => serve::serve(settings, cli.config),
    }
}
