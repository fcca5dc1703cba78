//! Run: `cargo run --example prometheus` (Redis at `REDIS_URL`, default `redis://127.0.0.1:6379`), or `-- --store memory` without Redis; then `curl http://127.0.0.1:9464/metrics`.
//!
//! The order saga's worker with its metrics served for Prometheus: the
//! `metrics-exporter-prometheus` recorder is installed with an HTTP
//! listener, the worker runs a batch of orders (add `--fail-at ship` to see
//! compensations counted), and the endpoint keeps serving until Ctrl-C (or
//! `--exit-after` seconds). `docs/observability.md` lists the metrics.

#[path = "order_saga.rs"]
#[allow(dead_code, unreachable_pub, missing_docs)]
mod order_saga;

mod common;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use metrics_exporter_prometheus::PrometheusBuilder;
use steadfast::{Client, Worker};

use common::{Outcome, StoreArgs, finish};

/// Buckets for the latency histograms, in seconds: a commit takes
/// about a millisecond, an activity up to its timeout.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Parser)]
#[command(about = "The order saga's worker, its metrics served for Prometheus")]
struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// Where `/metrics` is served.
    #[arg(long, default_value = "127.0.0.1:9464")]
    listen: SocketAddr,
    /// How many orders to run.
    #[arg(long, default_value_t = 10)]
    orders: u32,
    /// Make this activity fail on every attempt (repeat for several).
    #[arg(long, value_parser = ["charge_card", "reserve_inventory", "ship", "refund", "release_inventory"])]
    fail_at: Vec<String>,
    /// Stop serving this many seconds after the orders end (default: at Ctrl-C).
    #[arg(long)]
    exit_after: Option<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    common::init_logging();
    finish(run(Args::parse()).await)
}

async fn run(args: Args) -> Outcome {
    PrometheusBuilder::new()
        .with_http_listener(args.listen)
        .set_buckets(BUCKETS)?
        .install()?;
    steadfast::telemetry::metrics::describe();
    println!("serving metrics on http://{}/metrics", args.listen);
    let opened = match args.store.open("prometheus").await {
        Ok(o) => o,
        Err(code) => return Ok(code),
    };
    let worker = order_saga::configure(Worker::builder_shared(opened.store.clone()), args.fail_at)
        .store_gauges_every(Some(Duration::from_secs(1)))
        .build()?
        .spawn();
    let client = Client::new_shared(opened.store);
    let batch = steadfast::wall_clock_ms();
    let mut handles = Vec::new();
    for i in 0..args.orders {
        let id = format!("metrics-{batch}-{i}");
        handles.push(client.start::<order_saga::order>(id.clone(), id).await?);
    }
    let (mut completed, mut failed) = (0, 0);
    for h in handles {
        match h.result().await {
            Ok(_) => completed += 1,
            Err(_) => failed += 1,
        }
    }
    println!(
        "{completed} orders completed, {failed} failed; metrics at http://{}/metrics",
        args.listen
    );
    match args.exit_after {
        Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
        None => {
            println!("serving until Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    worker.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}
