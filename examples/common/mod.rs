//! What the examples share: choosing and opening the store, and logging.
// Each example uses part of this module.
#![allow(dead_code)]

use std::process::ExitCode;
use std::sync::Arc;

use clap::ValueEnum;
use steadfast::{MemoryStore, RedisStore, Store};

/// Where an example keeps its checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StoreKind {
    /// Checkpoint to Redis at `--redis-url`.
    Redis,
    /// Keep checkpoints in process memory (no setup; nothing survives the process).
    Memory,
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
                if let Ok(p) = store.persistence().await {
                    println!("Redis persistence: {}", p.describe());
                }
                Ok(Opened {
                    store: Arc::new(store.clone()),
                    redis: Some(store),
                })
            }
            Err(e) => {
                eprintln!(
                    "error: {e}\n\n  start a Redis:          redis-server --appendonly yes\n  \
                     or point to another:   REDIS_URL=redis://host:port cargo run --example {example}\n  \
                     or run without Redis:  cargo run --example {example} -- --store memory"
                );
                Err(ExitCode::from(2))
            }
        },
    }
}

/// The port in a Redis URL, for `redis-cli -p`.
pub(crate) fn redis_port(url: &str) -> &str {
    url.trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap_or("6379")
}

/// A suffix that makes ids fresh on each run of an example against a
/// persistent Redis.
pub(crate) fn fresh_suffix() -> u64 {
    steadfast::wall_clock_ms() / 1000
}
