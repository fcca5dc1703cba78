//! The lifecycle examples, run as the README says (`cargo run --example ..`
//! with `REDIS_URL`): each against a fresh private redis-server, each must
//! exit 0 and print what it promises. `cargo test` builds the examples
//! before it runs this.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::redis_server::RedisServer;

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary is in target/<profile>/deps")
        .join("examples");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test`, which builds the examples",
        path.display()
    );
    path
}

/// Runs an example against a fresh Redis; returns its output.
fn run(name: &str, args: &[&str]) -> String {
    let server = RedisServer::start();
    let started = Instant::now();
    let out = Command::new(example(name))
        .args(args)
        .env("REDIS_URL", server.url())
        .output()
        .expect("the example starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{name} took {:?}",
        started.elapsed()
    );
    stdout
}

#[test]
fn reminder_sleeps_a_week_on_a_skipped_clock() {
    let out = run("reminder", &[]);
    assert!(out.contains("\"Welcome!\""), "{out}");
    assert!(out.contains("its worker has stopped"), "{out}");
    assert!(out.contains("Some(\"waiting a week\")"), "{out}");
    assert!(out.contains("Have you tried the new dashboard?"), "{out}");
    assert!(out.contains("final status: completed"), "{out}");
}

#[test]
fn cancel_order_shows_both_outcomes() {
    let out = run("cancel_order", &[]);
    assert!(
        out.contains("-> cancelled (changed my mind), payment refunded"),
        "{out}"
    );
    assert!(out.contains("-> shipped, tracking trk-order-"), "{out}");
    assert!(
        out.contains("Some(\"cancelled\")") && out.contains("Some(\"done\")"),
        "{out}"
    );
    assert!(out.contains("a cancel sent now is refused"), "{out}");
}

#[test]
fn weekly_report_fires_three_mondays_once_each() {
    let out = run("weekly_report", &[]);
    // Mondays 09:00 in Berlin: 08:00 UTC in winter, 07:00 UTC in summer.
    let mondays = out
        .lines()
        .filter(|l| l.starts_with("firing at Mon "))
        .count();
    assert_eq!(mondays, 3, "{out}");
    assert_eq!(out.matches("report for platform sent").count(), 3, "{out}");
    assert_eq!(out.matches(" completed").count(), 3, "{out}");
    assert!(out.contains("the schedule started 3 runs"), "{out}");
    assert!(out.contains("weekly-report@"), "{out}");
}
