//! The telemetry examples, run as their first line says: `prometheus`
//! serves `/metrics` while its orders run (scraped here over HTTP); `otlp`
//! delivers one trace per order to an OTLP/gRPC receiver (the collector's
//! protocol, served here with tonic and decoded with the OpenTelemetry
//! protobuf types), and finishes promptly, saying so, when no collector
//! runs. All on the memory store. `cargo test` builds the examples before
//! it runs this.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary is in target/<profile>/deps")
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test`",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `GET /metrics` over plain HTTP/1.0; the body.
fn scrape(port: u16) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("the endpoint answers");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a timeout");
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("the request is sent");
    let mut response = String::new();
    conn.read_to_string(&mut response)
        .expect("the response reads");
    assert!(response.starts_with("HTTP/1."), "{response}");
    assert!(
        response.lines().next().is_some_and(|l| l.contains(" 200")),
        "{response}"
    );
    response
}

#[test]
fn prometheus_serves_the_workers_metrics() {
    let port = free_port();
    let started = Instant::now();
    let mut child = Command::new(example("prometheus"))
        .args([
            "--store",
            "memory",
            "--orders",
            "3",
            "--fail-at",
            "ship",
            "--exit-after",
            "2",
        ])
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the example starts");
    let stdout = child.stdout.take().expect("its output");
    let mut lines = BufReader::new(stdout).lines();
    // The orders have ended once it says so; it serves for 2 s more.
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        let done = line.contains("orders completed");
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains(&format!(
            "serving metrics on http://127.0.0.1:{port}/metrics"
        ))),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("0 orders completed, 3 failed")),
        "{seen:?}"
    );
    let body = scrape(port);
    for expected in [
        "steadfast_transitions_total{workflow=\"order\",status=\"failed\"} 3",
        "steadfast_activity_failures_total{workflow=\"order\",activity=\"ship\"} 3",
        "steadfast_compensations_total{workflow=\"order\",activity=\"refund\",outcome=\"succeeded\"} 3",
        "steadfast_commit_duration_seconds_bucket{workflow=\"order\",le=",
        "# HELP steadfast_activity_attempts_total",
    ] {
        assert!(body.contains(expected), "no `{expected}` in:\n{body}");
    }
    assert!(
        !body.contains("metrics-"),
        "a run id is a label value:\n{body}"
    );
    for line in lines {
        let _ = line;
    }
    let status = child.wait().expect("the example ends");
    assert!(status.success(), "prometheus failed: {status}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

/// Runs the `otlp` example with two orders against `endpoint`; its
/// standard output and error, once it has ended successfully.
fn run_otlp(endpoint: &str) -> (String, String) {
    let out = Command::new(example("otlp"))
        .args(["--store", "memory", "--orders", "2"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .output()
        .expect("the example starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "otlp failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

#[test]
fn otlp_without_a_collector_ends_promptly_and_says_so() {
    let port = free_port();
    let started = Instant::now();
    let (stdout, stderr) = run_otlp(&format!("http://127.0.0.1:{port}"));
    assert_eq!(stdout.matches(": completed (").count(), 2, "{stdout}");
    assert!(stdout.contains("; trace "), "{stdout}");
    assert!(stdout.contains("no collector answers at"), "{stdout}");
    assert!(
        stderr.trim().is_empty(),
        "no noise without a collector:\n{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

/// An OTLP/gRPC trace receiver: keeps every span it is sent, with the
/// `service.name` of its resource.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, Span)>>>);

impl Received {
    fn spans(&self) -> Vec<(String, Span)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                    AnyValue::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                kept.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text_attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

#[test]
fn otlp_delivers_one_trace_per_order_to_a_collector() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime for the receiver");
    let received = Received::default();
    let incoming = {
        let _entered = runtime.enter();
        tonic::transport::server::TcpIncoming::bind(([127, 0, 0, 1], 0).into())
            .expect("the receiver binds")
    };
    let addr = incoming.local_addr().expect("its address");
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(received.clone()))
            .serve_with_incoming(incoming),
    );

    let (stdout, _) = run_otlp(&format!("http://{addr}"));
    assert!(stdout.contains("spans exported to"), "{stdout}");
    // `traced-<batch>-<i>: completed (..); trace <trace id>`, per order.
    let orders: Vec<(String, String)> = stdout
        .lines()
        .filter(|l| l.contains(": completed ("))
        .filter_map(|l| {
            let (id, rest) = l.split_once(": ")?;
            Some((id.to_owned(), rest.split_once("; trace ")?.1.to_owned()))
        })
        .collect();
    assert_eq!(orders.len(), 2, "{stdout}");
    assert_ne!(orders[0].1, orders[1].1, "two orders, two traces");

    let spans = received.spans();
    for (id, trace) in &orders {
        let in_trace: Vec<&(String, Span)> = spans
            .iter()
            .filter(|(_, s)| hex(&s.trace_id) == *trace)
            .collect();
        let names: Vec<&str> = in_trace.iter().map(|(_, s)| s.name.as_str()).collect();
        // The caller's span is the one root; every other span's parent was
        // delivered in the same trace.
        let roots: Vec<&str> = in_trace
            .iter()
            .filter(|(_, s)| s.parent_span_id.is_empty())
            .map(|(_, s)| s.name.as_str())
            .collect();
        assert_eq!(roots, ["checkout"], "{id}: {names:?}");
        for (_, span) in &in_trace {
            assert!(
                span.parent_span_id.is_empty()
                    || in_trace
                        .iter()
                        .any(|(_, p)| p.span_id == span.parent_span_id),
                "{id}: the parent of `{}` was not delivered",
                span.name
            );
        }
        for name in ["steadfast.start", "steadfast.run", "steadfast.transition"] {
            assert!(names.contains(&name), "{id}: no {name} in {names:?}");
        }
        let mut activities: Vec<String> = in_trace
            .iter()
            .filter(|(_, s)| s.name == "steadfast.activity")
            .filter_map(|(_, s)| text_attribute(s, "steadfast.activity.name"))
            .collect();
        activities.sort();
        assert_eq!(
            activities,
            ["charge_card", "reserve_inventory", "ship"],
            "{id}"
        );
        assert!(
            in_trace
                .iter()
                .any(|(_, s)| text_attribute(s, "steadfast.workflow.id").as_deref() == Some(id)),
            "{id}: no span names the run"
        );
        assert!(
            in_trace
                .iter()
                .all(|(service, _)| service == "steadfast-order-saga"),
            "{id}: spans from another service"
        );
    }
}
