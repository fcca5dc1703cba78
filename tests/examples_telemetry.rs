//! The telemetry examples, run as their first line says: `prometheus`
//! serves `/metrics` while its orders run (scraped here over HTTP), and
//! `otlp` finishes promptly, saying so, when no collector runs. Both on the
//! memory store. `cargo test` builds the examples before it runs this.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

#[test]
fn otlp_without_a_collector_ends_promptly_and_says_so() {
    let port = free_port();
    let started = Instant::now();
    let out = Command::new(example("otlp"))
        .args(["--store", "memory", "--orders", "2"])
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        )
        .output()
        .expect("the example starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "otlp failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
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
