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
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use steadfast::prelude::*;
use steadfast::telemetry::OpenTelemetryPropagator;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer as _, reload};

use crate::flows::{TRANSITIONS_PER_RUN, order};
use crate::measure::{load, percentile};
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
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(discard)
            .build();
        let (filter, spans) = reload::Layer::new(LevelFilter::OFF);
        let otel = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("steadfast-bench"))
            .with_filter(filter);
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
        self.metrics_on.store(on, Ordering::Relaxed);
        let level = if on {
            LevelFilter::INFO
        } else {
            LevelFilter::OFF
        };
        self.spans.reload(level).expect("the filter reloads");
    }
}

/// One phase's throughput and latency.
pub(crate) struct Phase {
    pub(crate) on: bool,
    pub(crate) workflows_per_s: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
}

/// The A/B: `rounds` × (off, on), alternating which goes first; returns
/// every phase and the spans exported.
pub(crate) async fn ab(workflows: usize, concurrency: usize, rounds: usize) -> (Vec<Phase>, u64) {
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
            let (elapsed, latencies) = load(&client, &prefix, workflows, concurrency).await;
            phases.push(Phase {
                on,
                workflows_per_s: workflows as f64 / elapsed.as_secs_f64(),
                p50: percentile(&latencies, 0.5),
                p99: percentile(&latencies, 0.99),
            });
        }
    }
    telemetry.switch(false);
    worker.shutdown().await.expect("stops");
    let _ = telemetry.provider.force_flush();
    let exported = telemetry.exported.load(Ordering::Relaxed);
    (phases, exported)
}

/// Prints the phases and the on/off ratio of the median throughputs.
pub(crate) fn print(phases: &[Phase], exported: u64, workflows: usize) {
    println!(
        "\ntelemetry A/B (appendfsync everysec, same server and worker, phases alternated; \
         {workflows} runs of {TRANSITIONS_PER_RUN} transitions per phase):"
    );
    println!("| phase | telemetry | workflows/s | start to result p50 (ms) | p99 (ms) |");
    println!("|---|---|---|---|---|");
    for (i, p) in phases.iter().enumerate() {
        println!(
            "| {} | {} | {:.0} | {} | {} |",
            i + 1,
            if p.on { "on" } else { "off" },
            p.workflows_per_s,
            crate::measure::ms(p.p50),
            crate::measure::ms(p.p99)
        );
    }
    let median = |on: bool| {
        let mut v: Vec<f64> = phases
            .iter()
            .filter(|p| p.on == on)
            .map(|p| p.workflows_per_s)
            .collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let (off, on) = (median(false), median(true));
    println!(
        "median throughput: off {off:.0}/s, on {on:.0}/s: on/off = {:.3} ({:+.1} %); {exported} spans exported",
        on / off,
        100.0 * (on / off - 1.0)
    );
}
