//! The console's options, the rules on where it may listen, and starting
//! the server.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use steadfast_runtime::{AccessCheck, RedisStore};

use super::Secret;
use super::routes::{App, router};
use crate::args::Connection;
use crate::ops::CliError;

/// Options of `steadfast ui`.
#[derive(Debug, Args)]
pub(crate) struct UiArgs {
    /// Where to listen. Loopback by default: to listen elsewhere, set a
    /// token (or pass --allow-remote-without-token behind your own proxy).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: SocketAddr,
    /// Show runs, schedules and the catalog, but offer no action and
    /// refuse every one (with the read-only Redis user, say).
    #[arg(long)]
    pub(crate) read_only: bool,
    /// Ask visitors for this token before showing anything (never logged
    /// or shown; prefer the environment variable, which `ps` does not show).
    #[arg(long, env = "STEADFAST_UI_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<Secret>,
    /// Listen on an address other than loopback without a token (when a
    /// proxy in front of the console authenticates its visitors).
    #[arg(long)]
    pub(crate) allow_remote_without_token: bool,
    /// How often an open run page asks for changes, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub(crate) live_interval_ms: u64,
}

/// Why the console cannot start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UiError {
    /// A non-loopback address without a token.
    #[error(
        "refusing to listen on {0} without a token: anyone who reaches it could act on runs. \
         Set STEADFAST_UI_TOKEN (or --token), listen on 127.0.0.1, or pass \
         --allow-remote-without-token if a proxy in front authenticates visitors"
    )]
    Exposed(SocketAddr),
    /// The address cannot be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another process using it? pick another with --listen)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("the console stopped: {0}")]
    Serve(std::io::Error),
}

/// Connects, then serves the console until Ctrl-C.
pub(crate) async fn serve(conn: &Connection, args: UiArgs) -> Result<String, CliError> {
    let token = args.token.filter(|t| !t.expose().is_empty());
    if !args.listen.ip().is_loopback() && token.is_none() && !args.allow_remote_without_token {
        return Err(UiError::Exposed(args.listen).into());
    }
    let access = if args.read_only {
        AccessCheck::ReadOnly
    } else {
        AccessCheck::Worker
    };
    let store = RedisStore::builder(conn.redis_url.as_str())
        .prefix(conn.prefix.as_str())
        .shards(conn.shards)
        .check_persistence(false)
        .access_check(access)
        .connect()
        .await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| UiError::Bind {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(UiError::Serve)?;
    let app = Arc::new(App::new(
        Arc::new(store),
        args.read_only,
        token,
        args.live_interval_ms.max(100),
    ));
    // Printed for people and for scripts that wait for the console (the
    // port, when 0 was asked for). Never the token.
    eprintln!(
        "steadfast console on http://{addr}/{}{}",
        if args.read_only { " (read-only)" } else { "" },
        if app.has_token() {
            " (token required)"
        } else {
            ""
        }
    );
    axum::serve(listener, router(app))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(UiError::Serve)?;
    Ok(String::new())
}
