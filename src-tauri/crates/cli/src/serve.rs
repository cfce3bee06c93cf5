//! `serve`: the Local API, an OpenAI- and Anthropic-compatible endpoint on
//! this machine (`http://127.0.0.1:4141/v1` by default) through which any
//! tool uses Switchboard's keys, routes, budgets and ledger. It runs the
//! same code as the app's Settings → Local API switch, over the same data
//! directory. Every request needs a client token (`tokens create`).
//!
//! Ctrl-C or SIGTERM stops it: no new connections, every running request
//! stopped and settled (ledger row, hold released), then exit 0.

use std::net::IpAddr;
use std::time::Duration;

use clap::Args;
use switchboard_engine::{Config, DataDir, KeyStore};
use switchboard_gateway::{DEFAULT_MAX_BODY, Gateway, GatewayOptions, LocalApiSettings};

use crate::UsageError;
use crate::output::{error_line, out, warning};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The port (default: `[local_api] port` of config.toml, else 4141).
    #[arg(long)]
    port: Option<u16>,
    /// The address to listen on. Anything but loopback needs a client token.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// The largest request body accepted, in bytes.
    #[arg(long = "max-body", default_value_t = DEFAULT_MAX_BODY)]
    max_body: usize,
}

/// How long a stop waits for running requests to settle.
const SETTLE_ON_STOP: Duration = Duration::from_secs(10);

pub async fn run(args: ServeArgs) -> Result<bool, UsageError> {
    let dir = DataDir::resolve().map_err(|e| UsageError(e.to_string()))?;
    // File IO and parsing stay off the async threads, as in the server.
    let path = dir.config_file();
    let config = tokio::task::spawn_blocking(move || Config::load(&path))
        .await
        .map_err(|e| UsageError(e.to_string()))?
        .map_err(|e| UsageError(e.to_string()))?;
    for w in &config.warnings {
        warning(&format!("{}: {w}", config.path.display()));
    }
    let settings = LocalApiSettings::from_config(&config).map_err(|e| UsageError(e.to_string()))?;
    let options = GatewayOptions {
        bind: args.bind,
        port: args.port.unwrap_or(settings.port),
        max_body_bytes: args.max_body,
    };
    let gateway = Gateway::start(dir, KeyStore::new(), options)
        .await
        .map_err(|e| UsageError(e.to_string()))?;
    let stats = gateway.stats();
    out(&format!(
        "Switchboard Local API on {} ({} client token{}); Ctrl-C stops it\n",
        gateway.base_url(),
        stats.tokens,
        if stats.tokens == 1 { "" } else { "s" }
    ));
    if stats.tokens == 0 {
        warning(
            "no client token yet: every request is refused (401) until one is made with `switchboard-cli tokens create NAME`",
        );
    }
    wait_for_signal().await;
    error_line("stopping: running requests are stopped and settled");
    gateway.stop(SETTLE_ON_STOP).await;
    Ok(true)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
