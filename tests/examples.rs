//! The examples, run as the README says (`cargo run --example ..`
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
        out.contains("-> cancelled (changed my mind); the compensation stack refunded the payment"),
        "{out}"
    );
    // Refunded by the compensation stack only: once, for the cancelled order.
    assert_eq!(out.matches(": refunded").count(), 1, "{out}");
    assert!(out.contains("-a: refunded"), "{out}");
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

/// Runs an example without Redis; returns its exit code, stdout, stderr.
fn run_plain(name: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(example(name));
    cmd.args(args).env_remove("REDIS_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the example starts");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The README's main command: the happy path, no Redis needed.
#[test]
fn order_saga_completes_in_memory() {
    let (code, out, err) = run_plain("order_saga", &["--store", "memory"], &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    for step in [
        "charge_card: charged",
        "reserve_inventory: reserved",
        "ship:",
    ] {
        assert!(out.contains(step), "{step} in {out}");
    }
    assert!(out.contains("final status: completed"), "{out}");
    assert!(!out.contains("refund:"), "{out}");
}

/// `--fail-at ship`: three bounded attempts, then release, then refund, in
/// that order, and the saga handled it (exit 0).
#[test]
fn order_saga_compensates_in_reverse_order() {
    let (code, out, err) = run_plain(
        "order_saga",
        &["--fail-at", "ship", "--store", "memory"],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out.matches("ship: attempt").count(), 3, "{out}");
    let release = out.find("release_inventory: released").expect("a release");
    let refund = out.find("refund: refunded").expect("a refund");
    assert!(release < refund, "release must run before refund:\n{out}");
    assert!(out.contains("(key order-42/charge_card#0/1/undo)"), "{out}");
    assert!(out.contains("final status: failed"), "{out}");
}

/// Redis by default, at `REDIS_URL`; the same id starts nothing new.
#[test]
fn order_saga_checkpoints_to_redis() {
    let out = run("order_saga", &["--order-id", "order-42"]);
    assert!(out.contains("final status: completed"), "{out}");
    assert!(
        out.contains("HGETALL 'steadfast:{s0}:wf:order-42'"),
        "{out}"
    );
}

/// `REDIS_URL` takes every arrangement of Redis: the example runs on a
/// Redis Cluster and over TLS, and says what a crash of each can lose.
#[test]
fn order_saga_runs_on_a_cluster_and_over_tls() {
    let cluster = support::redis_cluster::RedisCluster::start();
    let (code, out, err) = run_plain(
        "order_saga",
        &["--order-id", "order-c"],
        &[("REDIS_URL", &cluster.url())],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("final status: completed"), "{out}");
    assert!(
        out.contains("warning: Redis can lose checkpoints")
            && out.contains("replication is asynchronous"),
        "{out}"
    );
    let tls = support::redis_tls::RedisTls::start(false);
    let (code, out, err) = run_plain(
        "order_saga",
        &["--order-id", "order-t"],
        &[("REDIS_URL", &tls.url_with_ca(&tls.certs.ca))],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("final status: completed"), "{out}");
}

/// Without a Redis, the example says what to do and exits 2.
#[test]
fn order_saga_explains_an_unreachable_redis() {
    let (code, out, err) = run_plain("order_saga", &[], &[("REDIS_URL", "redis://127.0.0.1:1")]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("cannot reach Redis at redis://127.0.0.1:1"),
        "{err}"
    );
    assert!(err.contains("--store memory"), "{err}");
}

/// The crash demo: a worker process is SIGKILLed mid-saga and a new one
/// finishes the run from its last checkpoint.
#[test]
fn crash_demo_resumes_after_sigkill() {
    let out = run("crash_demo", &[]);
    assert!(
        out.contains("with SIGKILL while reserve_inventory was running"),
        "{out}"
    );
    assert!(out.contains("result: Ok(\"pay-crash-demo-"), "{out}");
    assert!(
        out.contains(
            "charge_card ran once; reserve_inventory ran twice with the same idempotency key"
        ),
        "{out}"
    );
}

/// `--check`, the pre-deploy check, from the example's own build: a run
/// whose compensation failed would resume; a run of a workflow type this
/// build does not have would park, so the check fails with exit code 1.
#[test]
fn order_saga_checks_the_runs_in_flight_before_a_rollout() {
    let server = RedisServer::start();
    let example_with = |args: &[&str]| {
        Command::new(example("order_saga"))
            .args(args)
            .env("REDIS_URL", server.url())
            .output()
            .expect("the example starts")
    };
    let stuck = example_with(&[
        "--order-id",
        "o-7",
        "--fail-at",
        "ship",
        "--fail-at",
        "refund",
    ]);
    assert!(
        String::from_utf8_lossy(&stuck.stdout).contains("compensation_failed"),
        "{}",
        String::from_utf8_lossy(&stuck.stdout)
    );
    let passed = example_with(&["--check"]);
    let out = String::from_utf8_lossy(&passed.stdout);
    assert!(passed.status.success(), "{out}");
    assert!(
        out.contains("1 resume as they are") && out.contains("(parked now)"),
        "{out}"
    );

    // A run left by a build that had another workflow type.
    server.cli(&[
        "HSET",
        "steadfast:{s0}:wf:legacy-1",
        "id",
        "legacy-1",
        "workflow",
        "invoice",
        "queue",
        "billing",
        "status",
        "running",
        "seq",
        "1",
        "step",
        "start",
        "state_fp",
        "x",
        "state",
        "{\"start\":{}}",
        "pending",
        "{\"kind\":\"start\"}",
        "input",
        "null",
        "created_at",
        "1",
        "updated_at",
        "1",
    ]);
    server.cli(&["ZADD", "steadfast:{s0}:active", "1", "legacy-1"]);
    let failed = example_with(&["--check"]);
    let out = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(failed.status.code(), Some(1), "{out}");
    assert!(
        out.contains("1 would park") && out.contains("`invoice` is not registered in this build"),
        "{out}"
    );
}
