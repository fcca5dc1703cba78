//! What the examples share: choosing and opening the store, and logging.
// Each example uses part of this module.
#![allow(dead_code)]

use std::process::ExitCode;
use std::sync::Arc;

use clap::ValueEnum;
use steadfast::redis_connection::Topology;
use steadfast::{MemoryStore, RedisStore, Store};

/// Where an example keeps its checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StoreKind {
    /// Checkpoint to Redis at `--redis-url`.
    Redis,
    /// Keep checkpoints in process memory (no setup; nothing survives the process).
    Memory,
}

/// The store options every example takes.
#[derive(Debug, clap::Args)]
pub(crate) struct StoreArgs {
    /// Where checkpoints are kept.
    #[arg(long, value_enum, default_value = "redis")]
    pub(crate) store: StoreKind,
    /// The Redis server.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub(crate) redis_url: String,
}

impl StoreArgs {
    /// Opens the store (see [`open_store`]).
    pub(crate) async fn open(&self, example: &str) -> Result<Opened, ExitCode> {
        open_store(self.store, &self.redis_url, example).await
    }
}

/// What an example's `run` returns.
pub(crate) type Outcome = Result<ExitCode, Box<dyn std::error::Error>>;

/// The exit code of an example's run, printing its error if it failed.
pub(crate) fn finish(outcome: Outcome) -> ExitCode {
    outcome.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}

/// A time for people: `Mon 2026-11-30 08:00:00 UTC`.
pub(crate) fn show_time(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%a %Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// An opened store; `redis` is set on Redis, for printing key names.
pub(crate) struct Opened {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) redis: Option<RedisStore>,
}

/// Logs at `STEADFAST_LOG` (default: errors only).
pub(crate) fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STEADFAST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .init();
}

/// Opens the store, or explains on stderr how to get one and returns the
/// exit code to end with.
pub(crate) async fn open_store(
    kind: StoreKind,
    redis_url: &str,
    example: &str,
) -> Result<Opened, ExitCode> {
    match kind {
        StoreKind::Memory => Ok(Opened {
            store: Arc::new(MemoryStore::new()),
            redis: None,
        }),
        StoreKind::Redis => match RedisStore::connect(redis_url).await {
            Ok(store) => {
                print_persistence(&store);
                Ok(Opened {
                    store: Arc::new(store.clone()),
                    redis: Some(store),
                })
            }
            Err(e) => {
                eprintln!("error: {e}");
                if e.is_transient() {
                    eprintln!(
                        "\n  start a Redis:          redis-server --appendonly yes\n  \
                         or point to another:   REDIS_URL=redis://host:port cargo run --example {example}\n  \
                         or run without Redis:  cargo run --example {example} -- --store memory"
                    );
                }
                Err(ExitCode::from(2))
            }
        },
    }
}

/// Prints what a crash or failover of Redis can lose, as the store read it
/// when it connected: a warning when checkpoints can be lost.
pub(crate) fn print_persistence(store: &RedisStore) {
    match store.persistence_report() {
        Some(report) if report.can_lose_data() => {
            println!("warning: Redis can lose checkpoints: {report}");
        }
        Some(report) => println!("Redis persistence: {report}"),
        None => {}
    }
}

/// The `redis-cli` command line that reaches the store's data, for the
/// hints the examples print (`-c` on a cluster, the current master behind
/// Sentinels, TLS flags; never the password).
pub(crate) fn redis_cli(store: &RedisStore) -> String {
    let conn = store.connection();
    let target = conn.target();
    let mut cmd = String::from("redis-cli");
    let node = match target.topology() {
        Topology::Single { node, db } => {
            if *db != 0 {
                cmd.push_str(&format!(" -n {db}"));
            }
            Some(node.clone())
        }
        Topology::Cluster { seeds } => {
            cmd.push_str(" -c");
            seeds.first().cloned()
        }
        _ => conn.sentinel_master(),
    };
    if let Some(node) = node {
        cmd.push_str(&format!(" -h {} -p {}", node.host, node.port));
    }
    if let Some(tls) = target.tls() {
        cmd.push_str(" --tls");
        if let Some(ca) = &tls.ca_file {
            cmd.push_str(&format!(" --cacert {}", ca.display()));
        }
    }
    if let Some(user) = target.username() {
        cmd.push_str(&format!(" --user {user}"));
    }
    if target.password().is_some() {
        cmd.push_str(" --askpass");
    }
    cmd
}

/// A suffix that makes ids fresh on each run of an example against a
/// persistent Redis.
pub(crate) fn fresh_suffix() -> u64 {
    steadfast::wall_clock_ms() / 1000
}
