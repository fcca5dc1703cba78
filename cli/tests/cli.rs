//! The `steadfast` binary against a real, private redis-server, with a real
//! worker driving the runs it looks at: listing, showing, history,
//! signalling, cancelling, resuming a failed compensation, schedules, and
//! the errors an operator sees.
#![allow(missing_docs, unreachable_pub)]

#[allow(dead_code)]
mod desk_workflow;
#[allow(dead_code)]
#[path = "../../tests/support/redis_cluster.rs"]
mod redis_cluster;
#[allow(dead_code)]
#[path = "../../tests/support/redis_proc.rs"]
mod redis_proc;
#[allow(dead_code)]
#[path = "../../tests/support/redis_server.rs"]
mod redis_server;
#[allow(dead_code)]
#[path = "../../tests/support/redis_tls.rs"]
mod redis_tls;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redis_server::RedisServer;
use steadfast::prelude::*;
use steadfast::{RedisStore, RunRecord, ScheduleOptions, Status};

use desk_workflow::{Broken, desk};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the `steadfast` binary against `url` (blocking: call from a
/// multi-threaded runtime, the worker runs on the other threads).
fn steadfast(url: &str, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_steadfast"))
        .args(["--redis-url", url])
        .args(args)
        .env_remove("REDIS_URL")
        .output()
        .expect("runs the steadfast binary");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(url: &str, args: &[&str]) -> String {
    let out = steadfast(url, args);
    assert_eq!(out.code, 0, "steadfast {args:?} failed: {}", out.stderr);
    out.stdout
}

fn fails(url: &str, args: &[&str]) -> String {
    let out = steadfast(url, args);
    assert_eq!(
        out.code, 1,
        "steadfast {args:?} should fail: {}",
        out.stdout
    );
    out.stderr
}

async fn wait_for(client: &Client, id: &str, pred: impl Fn(&RunRecord) -> bool) -> RunRecord {
    let started = Instant::now();
    loop {
        if let Some(env) = client.describe(id).await.expect("describes") {
            if pred(&env) {
                return env;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{id} never got there: {env:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn waiting_for_go(client: &Client, id: &str) {
    wait_for(client, id, |e| {
        e.wait().map(steadfast_runtime::Wait::describe).as_deref() == Some("signal:go")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_list_inspect_signal_and_repair_runs() {
    let server = RedisServer::start();
    let url = server.url();
    let store = RedisStore::builder(url.as_str())
        .check_persistence(false)
        .connect()
        .await
        .expect("connects");
    let broken = Broken::default();
    broken.0.store(true, Ordering::SeqCst);
    let worker = Worker::builder(store.clone())
        .register::<desk>()
        .resource(broken.clone())
        .poll_wait(Duration::from_millis(50))
        .build()
        .expect("builds")
        .spawn();
    let client = Client::new(store.clone());
    for (id, finishes) in [("d-1", true), ("d-2", false), ("d-3", true)] {
        client
            .start::<desk>(id, (id.to_owned(), finishes))
            .await
            .expect("starts");
        waiting_for_go(&client, id).await;
    }

    // The worker registered what it runs; the command reads it back.
    let listed = ok(&url, &["workflows"]);
    assert!(
        listed.contains("desk") && listed.contains("default"),
        "{listed}"
    );
    let shown = ok(&url, &["workflows", "desk"]);
    for want in [
        "book#0",
        "(compensable)",
        "book#0 -> (compensating)",
        "-> (completed)",
    ] {
        assert!(
            shown.contains(want),
            "`steadfast workflows desk` shows `{want}`:\n{shown}"
        );
    }
    let as_json = ok(&url, &["--json", "workflows", "desk"]);
    assert!(as_json.contains("\"kind\": \"compensation\""), "{as_json}");
    assert!(fails(&url, &["workflows", "nope"]).contains("no workflow `nope`"));

    // What is in progress, and one run in detail.
    let runs = ok(&url, &["runs"]);
    for id in ["d-1", "d-2", "d-3"] {
        let line = runs
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} in {runs}"));
        assert!(line.contains("desk") && line.contains("running"), "{line}");
        assert!(line.contains("waiting for signal go"), "{line}");
    }
    let shown = ok(&url, &["show", "d-1"]);
    for want in [
        "status        running",
        "waiting       waiting for signal go",
        "step          signal_go#0",
        "status = \"waiting for go\"",
        "unbook undoes book#0 (key d-1/book#0/",
        "redis key     steadfast:{s0}:wf:d-1",
    ] {
        assert!(shown.contains(want), "{want:?} in\n{shown}");
    }
    let as_json: serde_json::Value =
        serde_json::from_str(&ok(&url, &["show", "d-1", "--json"])).expect("JSON");
    assert_eq!(as_json["status"], "running");
    assert_eq!(as_json["state"]["signal_go#0"]["booking"], "booking-d-1");

    // A signal from the command line, with a JSON payload.
    assert_eq!(
        ok(&url, &["signal", "d-1", "go", r#"{"by":"cli"}"#]),
        "sent `go` to `d-1`\n"
    );
    let out = client
        .handle::<desk>("d-1")
        .result()
        .await
        .expect("completes");
    assert_eq!(out, "booking-d-1 done-d-1 by cli");

    // A cancel: the booking is undone... but the booking system is down,
    // so the run waits for an operator, as does d-2 once it fails.
    ok(&url, &["cancel", "d-3", "--reason", "customer asked"]);
    ok(&url, &["signal", "d-2", "go", r#"{"by":"cli"}"#]);
    for id in ["d-2", "d-3"] {
        wait_for(&client, id, |e| e.status() == Status::CompensationFailed).await;
    }
    let attention = ok(&url, &["runs", "--attention"]);
    for id in ["d-2", "d-3"] {
        let line = attention
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} in {attention}"));
        assert!(line.contains("compensation_failed"), "{line}");
        assert!(line.contains("cannot cancel booking-"), "{line}");
    }

    // The operator fixes the booking system and resumes both.
    broken.0.store(false, Ordering::SeqCst);
    assert_eq!(
        ok(&url, &["resume", "d-2", "--note", "booking system fixed"]),
        "resumed `d-2`: compensating\n"
    );
    ok(&url, &["resume", "d-3"]);
    let d2 = wait_for(&client, "d-2", |e| {
        e.status().is_settled() && e.status() != Status::CompensationFailed
    })
    .await;
    assert_eq!(d2.status(), Status::Failed);
    let d3 = wait_for(&client, "d-3", |e| {
        e.status().is_settled() && e.status() != Status::CompensationFailed
    })
    .await;
    assert_eq!(d3.status(), Status::Cancelled);
    assert_eq!(d3.stop_reason(), "customer asked");
    let history = ok(&url, &["history", "d-2"]);
    assert!(
        history.contains("resumed by an operator: booking system fixed"),
        "{history}"
    );
    assert!(
        history.contains("compensation unbook for book#0 completed"),
        "{history}"
    );
    assert_eq!(ok(&url, &["runs", "--attention"]), "no runs\n");
    assert_eq!(ok(&url, &["runs"]), "no runs\n");
    let finished = ok(&url, &["runs", "--finished"]);
    let order: Vec<&str> = finished
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(order.len(), 3, "{finished}");
    assert_eq!(order.last(), Some(&"d-1"), "newest first: {finished}");

    // Errors say what is wrong and exit with 1.
    assert!(fails(&url, &["show", "nope"]).contains("no run with id `nope`"));
    assert!(fails(&url, &["signal", "d-1", "go", "{not json"]).contains("not JSON"));
    let settled = fails(&url, &["signal", "d-1", "go", "null"]);
    assert!(settled.contains("has settled (completed)"), "{settled}");
    let refused = fails(&url, &["resume", "d-1"]);
    assert!(
        refused.contains("is completed; only parked runs and failed compensations"),
        "{refused}"
    );
    let unreachable = fails("redis://127.0.0.1:1/", &["runs"]);
    assert!(
        unreachable.contains("cannot reach Redis at redis://127.0.0.1:1/"),
        "{unreachable}"
    );

    // Schedules.
    assert_eq!(ok(&url, &["schedules"]), "no schedules\n");
    client
        .schedule::<desk>(
            ScheduleOptions::new("nightly", "0 2 * * *").timezone("Europe/Berlin"),
            ("nightly".to_owned(), true),
        )
        .await
        .expect("schedules");
    let listed = ok(&url, &["schedules"]);
    assert!(
        listed.contains("nightly") && listed.contains("0 2 * * * (Europe/Berlin)"),
        "{listed}"
    );
    ok(&url, &["schedules", "pause", "nightly"]);
    assert!(ok(&url, &["schedules"]).contains("paused"));
    ok(&url, &["schedules", "resume", "nightly"]);
    let resumed = ok(&url, &["schedules"]);
    assert!(
        !resumed.contains("paused") && resumed.contains(":00:00.000Z"),
        "a next firing time again: {resumed}"
    );
    assert!(
        fails(&url, &["schedules", "pause", "weekly"]).contains("no schedule with id `weekly`")
    );
    ok(&url, &["schedules", "delete", "nightly"]);
    assert_eq!(ok(&url, &["schedules"]), "no schedules\n");

    worker.shutdown().await.expect("stops");
}

/// A wrong password, a missing one, an unreachable server: each error says
/// what it is and what to fix, and none shows the password, whether it came
/// from `--redis-url` or `REDIS_URL`.
#[test]
fn connection_errors_say_what_to_fix_and_never_show_the_password() {
    const PASSWORD: &str = "cli-Secr3t-0d9";
    const WRONG: &str = "wrong-Secr3t-5e1";
    let server = RedisServer::start();
    let set = server.cli(&["CONFIG", "SET", "requirepass", PASSWORD]);
    assert_eq!(set.trim(), "OK");
    let port = server.port;
    let hidden = |out: &Out| {
        let all = format!("{}{}", out.stdout, out.stderr);
        for secret in [PASSWORD, WRONG] {
            assert!(!all.contains(secret), "a password shows:\n{all}");
        }
    };

    let wrong = steadfast(&format!("redis://:{WRONG}@127.0.0.1:{port}/"), &["runs"]);
    assert_eq!(wrong.code, 1, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("refused to authenticate"),
        "{}",
        wrong.stderr
    );
    assert!(
        wrong.stderr.contains("redis://:***@127.0.0.1:"),
        "{}",
        wrong.stderr
    );
    assert!(
        !wrong.stderr.contains("Is the server running"),
        "{}",
        wrong.stderr
    );
    assert!(
        wrong.stderr.contains("Check the user name and password"),
        "{}",
        wrong.stderr
    );
    hidden(&wrong);

    // The same from the environment, for a command that writes.
    let out = Command::new(env!("CARGO_BIN_EXE_steadfast"))
        .args(["cancel", "o-1"])
        .env(
            "REDIS_URL",
            format!("redis://default:{WRONG}@127.0.0.1:{port}/0"),
        )
        .output()
        .expect("runs the steadfast binary");
    let from_env = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(from_env.code, 1, "{}", from_env.stderr);
    assert!(
        from_env
            .stderr
            .contains("refused to authenticate user `default`"),
        "{}",
        from_env.stderr
    );
    hidden(&from_env);

    // No password at all.
    let missing = steadfast(&format!("redis://127.0.0.1:{port}/"), &["show", "o-1"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("authentication failed"),
        "{}",
        missing.stderr
    );
    assert!(
        !missing.stderr.contains("Is the server running"),
        "{}",
        missing.stderr
    );

    // The right one: the doctor reports the connection and what Redis can
    // lose (this server keeps nothing).
    let doctor = steadfast(
        &format!("redis://:{PASSWORD}@127.0.0.1:{port}/"),
        &["doctor"],
    );
    assert_eq!(doctor.code, 0, "{}", doctor.stderr);
    assert!(
        doctor.stdout.contains("topology     one server"),
        "{}",
        doctor.stdout
    );
    assert!(
        doctor
            .stdout
            .contains("everything a worker needs is allowed"),
        "{}",
        doctor.stdout
    );
    assert!(
        doctor
            .stdout
            .contains("warning: Redis can lose checkpoints"),
        "{}",
        doctor.stdout
    );
    hidden(&doctor);

    // A server that is not there: that, and only that, asks whether it runs.
    drop(server);
    let away = steadfast(&format!("redis://:{PASSWORD}@127.0.0.1:{port}/"), &["runs"]);
    assert_eq!(away.code, 1);
    assert!(
        away.stderr
            .contains("cannot reach Redis at redis://:***@127.0.0.1:"),
        "{}",
        away.stderr
    );
    assert!(
        away.stderr.contains("Is the server running?"),
        "{}",
        away.stderr
    );
    hidden(&away);
}

/// The command takes every URL form: on a Redis Cluster it lists and shows
/// the runs workers left there, and the doctor names the topology.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_works_on_a_cluster() {
    let cluster = tokio::task::block_in_place(redis_cluster::RedisCluster::start);
    let url = cluster.url();
    let store = RedisStore::builder(url.as_str())
        .check_persistence(false)
        .connect()
        .await
        .expect("connects to the cluster");
    let worker = Worker::builder(store.clone())
        .register::<desk>()
        .resource(Broken::default())
        .poll_wait(Duration::from_millis(50))
        .build()
        .expect("builds")
        .spawn();
    let client = Client::new(store.clone());
    client
        .start::<desk>("c-1", ("c-1".to_owned(), true))
        .await
        .expect("starts");
    waiting_for_go(&client, "c-1").await;
    let url_for_cli = url.clone();
    let (runs, shown, doctor) = tokio::task::block_in_place(move || {
        (
            ok(&url_for_cli, &["runs"]),
            ok(&url_for_cli, &["show", "c-1"]),
            ok(&url_for_cli, &["doctor"]),
        )
    });
    assert!(runs.lines().any(|l| l.starts_with("c-1")), "{runs}");
    assert!(shown.contains("waiting for signal go"), "{shown}");
    assert!(
        doctor.contains("topology     Redis Cluster, 6 reachable nodes"),
        "{doctor}"
    );
    assert!(doctor.contains("replication is asynchronous"), "{doctor}");
    worker.shutdown().await.expect("stops");
}
