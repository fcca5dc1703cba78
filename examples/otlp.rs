//! Run: `cargo run --example otlp` (Redis at `REDIS_URL`, default `redis://127.0.0.1:6379`), or `-- --store memory` without Redis; spans go to the OTLP/gRPC collector at `OTEL_EXPORTER_OTLP_ENDPOINT` (default `http://localhost:4317`).
//!
//! One trace per order, across the client and the worker: the spans are
//! exported through `tracing-opentelemetry` and `opentelemetry-otlp`, the
//! client stores each run's W3C trace context and the worker continues it
//! (`OpenTelemetryPropagator` on both). Without a collector the example
//! still runs and says the spans could not be delivered.
//!
//! To see the traces: `docker run -p 4317:4317 -p 16686:16686
//! jaegertracing/all-in-one` and open <http://localhost:16686>.

#[path = "order_saga.rs"]
#[allow(dead_code, unreachable_pub, missing_docs)]
mod order_saga;

mod common;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use steadfast::telemetry::OpenTelemetryPropagator;
use steadfast::{Client, Worker};
use tracing::Instrument;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use common::{Outcome, StoreArgs, finish};

#[derive(Debug, Parser)]
#[command(about = "The order saga, its spans exported over OTLP")]
struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// The collector (OTLP over gRPC).
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        default_value = "http://localhost:4317"
    )]
    endpoint: String,
    /// How many orders to run.
    #[arg(long, default_value_t = 3)]
    orders: u32,
    /// Make this activity fail on every attempt (repeat for several).
    #[arg(long, value_parser = ["charge_card", "reserve_inventory", "ship", "refund", "release_inventory"])]
    fail_at: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    finish(run(Args::parse()).await)
}

async fn run(args: Args) -> Outcome {
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(&args.endpoint)
        // An absent collector costs at most this, once, at the end.
        .with_timeout(Duration::from_secs(2))
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name("steadfast-order-saga")
                .build(),
        )
        .build();
    let logs = tracing_subscriber::EnvFilter::try_from_env("STEADFAST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("steadfast")))
        .with(tracing_subscriber::fmt::layer().with_filter(logs))
        .init();

    let opened = match args.store.open("otlp").await {
        Ok(o) => o,
        Err(code) => return Ok(code),
    };
    let worker = order_saga::configure(Worker::builder_shared(opened.store.clone()), args.fail_at)
        .trace_propagator(OpenTelemetryPropagator)
        .build()?
        .spawn();
    let client = Client::new_shared(opened.store).with_trace_propagator(OpenTelemetryPropagator);
    let batch = steadfast::wall_clock_ms();
    for i in 0..args.orders {
        let id = format!("traced-{batch}-{i}");
        // The caller's own span: the root of the order's trace.
        let checkout = tracing::info_span!("checkout", order_id = %id);
        let handle = client
            .start::<order_saga::order>(id.clone(), id.clone())
            .instrument(checkout)
            .await?;
        let trace = client
            .describe(&id)
            .await?
            .and_then(|r| r.trace)
            .map(|t| t.trace_id().to_owned())
            .unwrap_or_default();
        match handle.result().await {
            Ok(out) => println!("{id}: completed ({out}); trace {trace}"),
            Err(e) => println!("{id}: {e}; trace {trace}"),
        }
    }
    worker.shutdown().await?;
    // Spans are exported in batches: the last ones leave at shutdown.
    let flushed =
        tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(Duration::from_secs(5)))
            .await?;
    match (flushed, collector_answers(&args.endpoint)) {
        (Ok(()), true) => println!("spans exported to {}", args.endpoint),
        (Ok(()), false) => println!(
            "no collector answers at {}: the spans were dropped (start one, or set OTEL_EXPORTER_OTLP_ENDPOINT)",
            args.endpoint
        ),
        (Err(e), _) => println!("spans not delivered to {}: {e}", args.endpoint),
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether something accepts connections at the endpoint's address (the
/// batch exporter drops what it cannot deliver without saying so).
fn collector_answers(endpoint: &str) -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    let authority = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    authority
        .to_socket_addrs()
        .ok()
        .into_iter()
        .flatten()
        .any(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok())
}
