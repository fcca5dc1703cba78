//! The cost of telemetry, A/B in one run on one server: the same load
//! with telemetry off (no metrics recorder, spans filtered out) and on (a
//! Prometheus recorder with histograms, and every span recorded by
//! `tracing-opentelemetry` into an SDK tracer whose batch exporter discards
//! them, trace context stored with each run and continued by the worker),
//! alternating the two phases so that drift in the machine's load falls on
//! both.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use steadfast::prelude::*;
use steadfast::telemetry::OpenTelemetryPropagator;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer as _, reload};

use crate::flows::{TRANSITIONS_PER_RUN, order};
use crate::measure::{cpu_seconds, load, percentile};
use crate::redis_server::Durability;
use crate::targets::Target;

/// A metrics recorder that records only while switched on.
#[derive(Debug)]
struct Switched {
    on: Arc<AtomicBool>,
    inner: PrometheusRecorder,
}

impl Recorder for Switched {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        if self.on.load(Ordering::Relaxed) {
            self.inner.register_counter(key, metadata)
        } else {
            Counter::noop()
        }
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        if self.on.load(Ordering::Relaxed) {
            self.inner.register_gauge(key, metadata)
        } else {
            Gauge::noop()
        }
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        if self.on.load(Ordering::Relaxed) {
            self.inner.register_histogram(key, metadata)
        } else {
            Histogram::noop()
        }
    }
}

/// Counts the spans it is given, and drops them.
#[derive(Debug, Clone, Default)]
struct Discard(Arc<AtomicU64>);

impl SpanExporter for Discard {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        async { Ok(()) }
    }
}

/// Telemetry installed for the process, off until switched on.
struct Telemetry {
    metrics_on: Arc<AtomicBool>,
    spans: reload::Handle<LevelFilter, tracing_subscriber::Registry>,
    exported: Arc<AtomicU64>,
    provider: SdkTracerProvider,
}

impl Telemetry {
    fn install() -> Self {
        let metrics_on = Arc::new(AtomicBool::new(false));
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0])
            .expect("buckets")
            .build_recorder();
        metrics::set_global_recorder(Switched {
            on: Arc::clone(&metrics_on),
            inner: recorder,
        })
        .expect("the benchmark's only metrics recorder");
        steadfast::telemetry::metrics::describe();
        let discard = Discard::default();
        let exported = Arc::clone(&discard.0);
        let mut provider = SdkTracerProvider::builder().with_batch_exporter(discard);
        if let Some(ratio) = sampled() {
            provider = provider.with_sampler(Sampler::ParentBased(Box::new(
                Sampler::TraceIdRatioBased(ratio),
            )));
        }
        let provider = provider.build();
        let (filter, spans) = reload::Layer::new(LevelFilter::OFF);
        let mut otel =
            tracing_opentelemetry::layer().with_tracer(provider.tracer("steadfast-bench"));
        if lean() {
            otel = otel
                .with_tracked_inactivity(false)
                .with_location(false)
                .with_threads(false);
        }
        let otel = otel.with_filter(filter);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(otel))
            .expect("the benchmark's only subscriber");
        Telemetry {
            metrics_on,
            spans,
            exported,
            provider,
        }
    }

    fn switch(&self, on: bool) {
        let parts = parts();
        self.metrics_on
            .store(on && parts != "spans", Ordering::Relaxed);
        let level = if on && parts != "metrics" {
            LevelFilter::INFO
        } else {
            LevelFilter::OFF
        };
        self.spans.reload(level).expect("the filter reloads");
    }
}

/// What "on" turns on: `both` (default), `metrics` or `spans`
/// (`STEADFAST_BENCH_TELEMETRY`), to see where the cost is.
fn parts() -> String {
    std::env::var("STEADFAST_BENCH_TELEMETRY").unwrap_or_else(|_| "both".to_owned())
}

/// Whether the OpenTelemetry layer leaves out what a span costs most
/// beyond its fields (`STEADFAST_BENCH_OTEL_LEAN=1`): busy/idle time
/// (two clock reads per poll of an instrumented future), source location
/// and thread attributes.
fn lean() -> bool {
    std::env::var("STEADFAST_BENCH_OTEL_LEAN").is_ok_and(|v| v == "1")
}

/// The share of traces sampled (`STEADFAST_BENCH_SAMPLE=0.1`; default:
/// every trace).
fn sampled() -> Option<f64> {
    std::env::var("STEADFAST_BENCH_SAMPLE")
        .ok()
        .and_then(|v| v.parse().ok())
}

/// One phase's throughput and latency.
pub(crate) struct Phase {
    pub(crate) on: bool,
    pub(crate) workflows_per_s: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    /// CPU of this process (client, worker, telemetry) per workflow.
    pub(crate) cpu_ms_per_workflow: f64,
}

/// The A/B: `rounds` × (off, on), alternating which goes first; returns
/// every phase and the spans exported.
pub(crate) async fn ab(
    workflows: usize,
    concurrency: usize,
    rounds: usize,
) -> (Vec<Phase>, u64, Duration) {
    let telemetry = Telemetry::install();
    let target = Target::private(Durability::EverySec);
    let worker = Worker::builder(target.store().await)
        .register::<order>()
        .worker_id("bench-telemetry")
        .concurrency(128)
        .poll_wait(Duration::from_millis(100))
        .trace_propagator(OpenTelemetryPropagator)
        .build()
        .expect("builds")
        .spawn();
    let client = Client::new(target.store().await).with_trace_propagator(OpenTelemetryPropagator);
    load(&client, "ab-warm", 500.min(workflows), concurrency).await;
    let mut phases = Vec::new();
    for round in 0..rounds {
        let order_of = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for on in order_of {
            telemetry.switch(on);
            let prefix = format!("ab-{round}-{}", if on { "on" } else { "off" });
            let cpu_before = cpu_seconds("self");
            let (elapsed, latencies) = load(&client, &prefix, workflows, concurrency).await;
            let cpu = cpu_seconds("self") - cpu_before;
            phases.push(Phase {
                on,
                workflows_per_s: workflows as f64 / elapsed.as_secs_f64(),
                p50: percentile(&latencies, 0.5),
                p99: percentile(&latencies, 0.99),
                cpu_ms_per_workflow: cpu * 1000.0 / workflows as f64,
            });
        }
    }
    telemetry.switch(false);
    worker.shutdown().await.expect("stops");
    let _ = telemetry.provider.force_flush();
    let exported = telemetry.exported.load(Ordering::Relaxed);
    let per_span = span_cost(&telemetry);
    (phases, exported, per_span)
}

/// The CPU one span costs with telemetry on, outside the runtime: a span
/// shaped like an attempt's (six fields, two recorded later), created,
/// entered, left and closed, 50,000 times on this thread.
fn span_cost(telemetry: &Telemetry) -> Duration {
    const SPANS: u32 = 50_000;
    telemetry.switch(true);
    let cpu_before = cpu_seconds("self");
    for i in 0..SPANS {
        let span = tracing::info_span!(
            "steadfast.activity",
            steadfast.activity.name = "charge_card",
            steadfast.activity.step = "charge_card#0",
            steadfast.activity.attempt = i,
            steadfast.activity.idempotency_key = "order-1/charge_card#0/1",
            steadfast.activity.outcome = tracing::field::Empty,
            steadfast.activity.duration_ms = tracing::field::Empty,
        );
        let entered = span.enter();
        drop(entered);
        span.record("steadfast.activity.outcome", "succeeded");
        span.record("steadfast.activity.duration_ms", 1u64);
    }
    let _ = telemetry.provider.force_flush();
    let cpu = cpu_seconds("self") - cpu_before;
    telemetry.switch(false);
    Duration::from_secs_f64(cpu / f64::from(SPANS))
}

/// Prints the phases and the on/off ratio of the median throughputs.
pub(crate) fn print(phases: &[Phase], exported: u64, per_span: Duration, workflows: usize) {
    println!(
        "\ntelemetry A/B (appendfsync everysec, same server and worker, phases alternated; \
         {workflows} runs of {TRANSITIONS_PER_RUN} transitions per phase; on = {}, {} OpenTelemetry layer, \
         {} sampled):",
        parts(),
        if lean() { "lean" } else { "default" },
        sampled().map_or("every trace".to_owned(), |r| format!(
            "{:.0} % of traces",
            r * 100.0
        ))
    );
    println!(
        "| phase | telemetry | workflows/s | start to result p50 (ms) | p99 (ms) | CPU per workflow, benchmark process (ms) |"
    );
    println!("|---|---|---|---|---|---|");
    for (i, p) in phases.iter().enumerate() {
        println!(
            "| {} | {} | {:.0} | {} | {} | {:.3} |",
            i + 1,
            if p.on { "on" } else { "off" },
            p.workflows_per_s,
            crate::measure::ms(p.p50),
            crate::measure::ms(p.p99),
            p.cpu_ms_per_workflow
        );
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let of = |on: bool, f: fn(&Phase) -> f64| {
        median(phases.iter().filter(|p| p.on == on).map(f).collect())
    };
    // Each round's on/off ratio: the two phases ran back to back, so a
    // drift in the machine's load mostly cancels out.
    let round_ratios: Vec<f64> = phases
        .chunks(2)
        .filter_map(|pair| match pair {
            [a, b] => {
                let (off, on) = if a.on { (b, a) } else { (a, b) };
                Some(on.workflows_per_s / off.workflows_per_s)
            }
            _ => None,
        })
        .collect();
    let shown: Vec<String> = round_ratios.iter().map(|r| format!("{r:.3}")).collect();
    let (off, on) = (
        of(false, |p| p.workflows_per_s),
        of(true, |p| p.workflows_per_s),
    );
    println!(
        "median throughput: off {off:.0}/s, on {on:.0}/s; on/off per round: {} (median {:.3}); \
         CPU per workflow (median): off {:.3} ms, on {:.3} ms; {exported} spans exported; one span alone: {:.1} µs of CPU",
        shown.join(", "),
        median(round_ratios.clone()),
        of(false, |p| p.cpu_ms_per_workflow),
        of(true, |p| p.cpu_ms_per_workflow),
        per_span.as_secs_f64() * 1e6,
    );
}
