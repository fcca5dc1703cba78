//! One trace across processes: a client starts a run inside its own span,
//! a worker process drives the run and starts a child run, a second worker
//! process drives the child. Each process exports its spans (OpenTelemetry
//! SDK, in-memory exporter, written out as JSON lines); the spans of all
//! three must form one trace whose root is the client's span.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use steadfast::prelude::*;
use steadfast::telemetry::OpenTelemetryPropagator;
use steadfast::{RedisStore, Status};
use support::redis_server::RedisServer;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// The error of this test's workflows.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum TraceError {
    /// A step failed.
    #[error("{0}")]
    Failed(String),
}

impl From<ActivityError<TraceError>> for TraceError {
    fn from(e: ActivityError<TraceError>) -> Self {
        TraceError::Failed(e.to_string())
    }
}

/// Charges, in the parent's worker.
#[activity(retry(max_attempts = 1))]
pub async fn charge(n: u64) -> Result<u64, TraceError> {
    Ok(n * 2)
}

/// Fails its first attempt (an error recorded on its span), then succeeds.
#[activity(retry(max_attempts = 2, initial_interval = "5ms"))]
pub async fn wobble(ctx: &ActivityContext, n: u64) -> Result<u64, TraceError> {
    if ctx.attempt() == 1 {
        return Err(TraceError::Failed("the first attempt fails".into()));
    }
    Ok(n + 1)
}

/// The child run, served by the second worker process.
#[workflow(queue = "trace-child")]
pub async fn shipment(n: u64) -> Result<u64, TraceError> {
    let shipped = wobble(n).await?;
    Ok(shipped)
}

/// The parent run, served by the first worker process.
#[workflow(queue = "trace-parent")]
pub async fn order(ctx: &mut WorkflowContext, n: u64) -> Result<u64, TraceError> {
    let charged = charge(n).await?;
    let id = format!("{}/ship", ctx.workflow_id());
    match ctx.child::<shipment>(id, charged).await {
        Ok(v) => Ok(v),
        Err(e) => Err(TraceError::Failed(e.to_string())),
    }
}

const URL_ENV: &str = "STEADFAST_TRACE_WORKER_URL";
const ROLE_ENV: &str = "STEADFAST_TRACE_WORKER_ROLE";
const SPANS_ENV: &str = "STEADFAST_TRACE_WORKER_SPANS";

/// Exports this process's spans to memory until [`Spans::write`].
struct Spans {
    provider: SdkTracerProvider,
    exporter: InMemorySpanExporter,
}

impl Spans {
    /// Installs a global subscriber whose OpenTelemetry layer exports here.
    fn install(service: &'static str) -> Self {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer(service));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("the only subscriber of this process");
        Spans { provider, exporter }
    }

    /// Every span finished so far, as JSON.
    fn finished(&self) -> Vec<Value> {
        let _ = self.provider.force_flush();
        self.exporter
            .get_finished_spans()
            .expect("the exporter reads")
            .iter()
            .map(span_json)
            .collect()
    }

    fn write(&self, path: &Path) {
        let mut out = std::fs::File::create(path).expect("the span file opens");
        for span in self.finished() {
            writeln!(out, "{span}").expect("the span file writes");
        }
    }
}

fn span_json(s: &SpanData) -> Value {
    let attrs: serde_json::Map<String, Value> = s
        .attributes
        .iter()
        .map(|kv| (kv.key.to_string(), Value::String(kv.value.to_string())))
        .collect();
    json!({
        "name": s.name,
        "trace_id": s.span_context.trace_id().to_string(),
        "span_id": s.span_context.span_id().to_string(),
        "parent_id": if s.parent_span_id == SpanId::INVALID { String::new() } else { s.parent_span_id.to_string() },
        "status": format!("{:?}", s.status),
        "attrs": attrs,
    })
}

/// The body of a worker process (`ROLE_ENV`: `parent` or `child`): runs
/// until its standard input closes, then writes its spans. Ignored when
/// run as a test.
#[test]
#[ignore = "started as a child process by `one_trace_spans_the_client_and_two_worker_processes`"]
fn trace_worker_process() {
    let (Ok(url), Ok(role), Ok(out)) = (
        std::env::var(URL_ENV),
        std::env::var(ROLE_ENV),
        std::env::var(SPANS_ENV),
    ) else {
        return;
    };
    let spans = Spans::install(if role == "parent" {
        "worker-a"
    } else {
        "worker-b"
    });
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {}
        let _ = closed_tx.send(());
    });
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async {
        let store = RedisStore::builder(url).connect().await.expect("connects");
        let builder = Worker::builder(store)
            .poll_wait(Duration::from_millis(100))
            .trace_propagator(OpenTelemetryPropagator);
        let builder = if role == "parent" {
            builder.register::<order>()
        } else {
            builder.register::<shipment>()
        };
        builder
            .build()
            .expect("builds")
            .run_until(async {
                let _ = closed_rx.await;
            })
            .await
            .expect("runs");
    });
    spans.write(Path::new(&out));
}

fn spawn_worker(url: &str, role: &str, spans: &Path, log: &Path) -> Child {
    Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "trace_worker_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(URL_ENV, url)
        .env(ROLE_ENV, role)
        .env(SPANS_ENV, spans)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("the log opens"))
        .spawn()
        .expect("starts a worker process")
}

/// Closes the worker's standard input and waits for it to exit.
fn stop(mut child: Child, log: &Path) {
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("waits") {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            assert!(
                status.success(),
                "a worker process failed ({status}):\n{log}"
            );
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a worker process did not stop");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_spans(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("the worker wrote its spans")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a span line reads"))
        .collect()
}

fn attr<'a>(span: &'a Value, name: &str) -> &'a str {
    span["attrs"][name].as_str().unwrap_or_default()
}

fn text<'a>(span: &'a Value, field: &str) -> &'a str {
    span[field].as_str().unwrap_or_default()
}

#[test]
fn one_trace_spans_the_client_and_two_worker_processes() {
    let server = RedisServer::start();
    let dir: PathBuf = std::env::temp_dir().join(format!("steadfast-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let file = |name: &str| dir.join(name);
    let spans = Spans::install("client");
    let a = spawn_worker(&server.url(), "parent", &file("a.jsonl"), &file("a.log"));
    let b = spawn_worker(&server.url(), "child", &file("b.jsonl"), &file("b.log"));

    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async {
        let store = RedisStore::builder(server.url())
            .connect()
            .await
            .expect("connects");
        let client = Client::new(store).with_trace_propagator(OpenTelemetryPropagator);
        let checkout = tracing::info_span!("checkout");
        client
            .start::<order>("trace-1", 20)
            .instrument(checkout)
            .await
            .expect("starts");
        let out = tokio::time::timeout(
            Duration::from_secs(30),
            client.handle::<order>("trace-1").result(),
        )
        .await
        .expect("the run ends in time")
        .expect("completes");
        assert_eq!(out, 41);
        let record = client
            .describe("trace-1")
            .await
            .expect("reads")
            .expect("exists");
        assert_eq!(record.status(), Status::Completed);
        assert!(record.trace.is_some(), "the run stores its trace context");
    });
    stop(a, &file("a.log"));
    stop(b, &file("b.log"));

    let ours = spans.finished();
    let in_a = read_spans(&file("a.jsonl"));
    let in_b = read_spans(&file("b.jsonl"));
    let _ = std::fs::remove_dir_all(&dir);

    let root = ours
        .iter()
        .find(|s| text(s, "name") == "checkout")
        .expect("the client's span");
    assert_eq!(text(root, "parent_id"), "", "the client's span is the root");
    let trace = text(root, "trace_id");
    let start = ours
        .iter()
        .find(|s| text(s, "name") == "steadfast.start")
        .expect("the start span");
    assert_eq!(text(start, "parent_id"), text(root, "span_id"));

    let all: Vec<&Value> = ours.iter().chain(&in_a).chain(&in_b).collect();
    let ids: HashSet<&str> = all.iter().map(|s| text(s, "span_id")).collect();
    for s in &all {
        assert_eq!(text(s, "trace_id"), trace, "one trace: {s}");
        if text(s, "span_id") != text(root, "span_id") {
            assert!(
                ids.contains(text(s, "parent_id")),
                "the parent of {s} is in the trace"
            );
        }
    }
    let by_id: HashMap<&str, &Value> = all.iter().map(|s| (text(s, "span_id"), *s)).collect();
    let runs = |spans: &'static str, of: &[Value]| -> Vec<Value> {
        of.iter()
            .filter(|s| {
                text(s, "name") == "steadfast.run" && attr(s, "steadfast.workflow.type") == spans
            })
            .cloned()
            .collect()
    };

    // Worker A drives the parent (before and after its child), each drive
    // under the client's start span.
    let parent_runs = runs("order", &in_a);
    assert!(
        !parent_runs.is_empty(),
        "worker A drove the parent: {in_a:?}"
    );
    for r in &parent_runs {
        assert_eq!(text(r, "parent_id"), text(start, "span_id"), "{r}");
        assert_eq!(attr(r, "steadfast.workflow.id"), "trace-1");
        assert_eq!(attr(r, "messaging.destination.name"), "trace-parent");
    }
    assert!(
        in_a.iter()
            .any(|s| text(s, "name") == "steadfast.transition"
                && attr(s, "steadfast.transition.from") == "start"
                && attr(s, "steadfast.transition.to") == "charge#0"
                && !attr(s, "steadfast.seq").is_empty()
                && !attr(s, "steadfast.fence").is_empty())
    );
    let charge_attempt = in_a
        .iter()
        .find(|s| {
            text(s, "name") == "steadfast.activity"
                && attr(s, "steadfast.activity.name") == "charge"
        })
        .expect("the charge attempt");
    assert_eq!(
        attr(charge_attempt, "steadfast.activity.outcome"),
        "succeeded"
    );
    assert_eq!(attr(charge_attempt, "steadfast.activity.attempt"), "1");
    assert!(attr(charge_attempt, "steadfast.activity.idempotency_key").starts_with("trace-1/"));

    // Worker B drives the child under the parent's drive in worker A.
    let child_runs = runs("shipment", &in_b);
    assert!(!child_runs.is_empty(), "worker B drove the child: {in_b:?}");
    let parent_run_ids: HashSet<&str> = parent_runs.iter().map(|r| text(r, "span_id")).collect();
    for r in &child_runs {
        assert_eq!(attr(r, "steadfast.workflow.id"), "trace-1/ship");
        assert!(
            parent_run_ids.contains(text(r, "parent_id")),
            "the child continues the parent's drive: {r}"
        );
    }
    let wobbles: Vec<&Value> = in_b
        .iter()
        .filter(|s| text(s, "name") == "steadfast.activity")
        .collect();
    let outcomes: Vec<&str> = wobbles
        .iter()
        .map(|s| attr(s, "steadfast.activity.outcome"))
        .collect();
    assert_eq!(outcomes.len(), 2, "{wobbles:?}");
    assert!(
        outcomes.contains(&"failed") && outcomes.contains(&"succeeded"),
        "{outcomes:?}"
    );
    let failed = wobbles
        .iter()
        .find(|s| attr(s, "steadfast.activity.outcome") == "failed")
        .expect("the failed attempt");
    assert!(
        text(failed, "status").contains("Error"),
        "the error is on the span: {failed}"
    );
    assert_eq!(attr(failed, "error.type"), "failed");
    // Each attempt sits under a drive of the child, in worker B.
    for w in &wobbles {
        let mut up = by_id[text(w, "parent_id")];
        while text(up, "name") != "steadfast.run" {
            up = by_id[text(up, "parent_id")];
        }
        assert_eq!(attr(up, "steadfast.workflow.type"), "shipment");
    }
}
