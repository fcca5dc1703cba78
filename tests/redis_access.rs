//! Who may do what, with worker *processes* (this test binary started
//! again, its `#[ignore]` entry point) under the Redis users of
//! `docs/operations.md`: the documented worker user completes runs; a user
//! without scripting is refused at connect with a clear message, or, with
//! the check skipped, stops at its first script; a worker whose password
//! is changed under it stops instead of retrying forever. Every process
//! logs at debug level through a `tracing` subscriber; no password appears
//! in those logs or in any error.

mod support;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use steadfast::prelude::*;
use steadfast::{AccessCheck, RedisStore};
use support::redis_acl::{ADMIN_PASSWORD, RedisAcl, WORKER_PASSWORD};
use support::redis_proc::private_dir;

/// The store URL of the worker process.
const URL_ENV: &str = "STEADFAST_ACCESS_WORKER_URL";
/// Set: the worker process skips the access check at connect.
const SKIP_CHECK_ENV: &str = "STEADFAST_ACCESS_SKIP_CHECK";

/// The error of the test workflow.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{0}")]
pub struct AccessError(String);

impl From<ActivityError<AccessError>> for AccessError {
    fn from(e: ActivityError<AccessError>) -> Self {
        AccessError(e.to_string())
    }
}

#[activity]
async fn greet_one(name: String) -> Result<String, AccessError> {
    Ok(format!("hello {name}"))
}

#[workflow(queue = "access")]
async fn greet(name: String) -> Result<String, AccessError> {
    let greeting = greet_one(name).await?;
    Ok(greeting)
}

/// The worker process: connects as the URL says and runs a worker until
/// killed, or until it fails; prints the error and exits with 1 then. Logs
/// go to standard error through a `tracing` subscriber, as an application
/// would have them. Ignored when run as a test.
#[test]
#[ignore = "started as a child process by the tests of this file"]
fn access_worker_process() {
    let Ok(url) = std::env::var(URL_ENV) else {
        return;
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_writer(std::io::stderr)
        .init();
    let access = if std::env::var(SKIP_CHECK_ENV).is_ok() {
        AccessCheck::Skip
    } else {
        AccessCheck::Worker
    };
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let code = rt.block_on(async {
        let store = match RedisStore::builder(url.as_str())
            .access_check(access)
            .reclaim_after(Duration::from_millis(500))
            .connect()
            .await
        {
            Ok(store) => store,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        };
        eprintln!("store: {store:?}");
        let worker = Worker::builder(store)
            .register::<greet>()
            .lease(Duration::from_millis(500))
            .poll_wait(Duration::from_millis(100))
            .build()
            .expect("builds");
        match worker.run_until(std::future::pending()).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        }
    });
    std::process::exit(code);
}

/// A worker process and the file its standard error goes to.
struct WorkerProcess {
    child: Child,
    log: PathBuf,
}

impl WorkerProcess {
    fn start(dir: &Path, name: &str, url: &str, skip_check: bool) -> Self {
        let log = dir.join(format!("{name}.log"));
        let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
        cmd.args([
            "access_worker_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(URL_ENV, url)
        .stdout(Stdio::null())
        .stderr(File::create(&log).expect("creates the log file"));
        if skip_check {
            cmd.env(SKIP_CHECK_ENV, "1");
        }
        WorkerProcess {
            child: cmd.spawn().expect("starts a worker process"),
            log,
        }
    }

    /// Waits up to `within` for the process to exit by itself.
    fn exit_within(&mut self, within: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("polls the process") {
                return status;
            }
            if started.elapsed() > within {
                let _ = self.child.kill();
                panic!(
                    "the worker did not stop within {within:?}; it logged:\n{}",
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output()
    }
}

fn assert_no_secret(output: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !output.contains(secret),
            "a password shows in the worker's output:\n{output}"
        );
    }
}

async fn admin_client(acl: &RedisAcl) -> Client {
    let store = RedisStore::builder(acl.url("default", ADMIN_PASSWORD))
        .check_persistence(false)
        .connect()
        .await
        .expect("the admin connects");
    Client::new(store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_run_under_the_documented_user_and_stop_without_the_rights() {
    let acl = tokio::task::block_in_place(|| RedisAcl::start(&["+config|get"]));
    let dir = private_dir("access");
    let client = admin_client(&acl).await;
    let secrets = [WORKER_PASSWORD, ADMIN_PASSWORD];

    // The documented worker user: runs complete.
    let mut worker = WorkerProcess::start(
        &dir,
        "worker",
        &acl.url("steadfast-worker", WORKER_PASSWORD),
        false,
    );
    for i in 0..5 {
        let name = format!("user-{i}");
        client
            .start::<greet>(format!("g-{i}"), name)
            .await
            .expect("starts");
    }
    for i in 0..5 {
        let out = client
            .handle::<greet>(format!("g-{i}"))
            .result_within(Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("g-{i}: {e}"));
        assert_eq!(out, format!("hello user-{i}"));
    }
    let output = worker.kill();
    assert_no_secret(&output, &secrets);
    assert!(
        output.contains("redis://steadfast-worker:***@127.0.0.1:"),
        "{output}"
    );
    // The persistence check, seen by anyone with a subscriber.
    assert!(
        output.contains("Redis can lose checkpoints") && output.contains("a restart loses"),
        "{output}"
    );

    // The read-only user of the `steadfast` command's views reads the runs,
    // their histories and the schedules, and nothing more.
    let reader_url = acl.url("steadfast-reader", support::redis_acl::READER_PASSWORD);
    let reader = RedisStore::builder(reader_url.as_str())
        .access_check(AccessCheck::ReadOnly)
        .connect()
        .await
        .expect("the read-only user connects for reading");
    let admin = steadfast::Store::admin(&reader).expect("an administration side");
    let listed = admin
        .list_runs(steadfast::RunList::Finished, 10)
        .await
        .expect("lists finished runs");
    assert_eq!(listed.len(), 5, "{listed:?}");
    // The console's reads: counts, pages, the catalog the worker wrote.
    assert_eq!(
        admin
            .count_runs(steadfast::RunList::Finished)
            .await
            .expect("counts"),
        5
    );
    let page = admin
        .page_runs(&steadfast::PageQuery::new(steadfast::RunList::Finished, 3))
        .await
        .expect("pages");
    assert_eq!(page.runs.len(), 3);
    assert!(page.next.is_some());
    let catalog = admin.catalog().await.expect("reads the catalog");
    assert!(
        catalog.iter().any(|(name, _)| name == "greet"),
        "the worker registered its workflow: {catalog:?}"
    );
    let run = steadfast::Store::load(&reader, "g-0")
        .await
        .expect("reads a run")
        .expect("it exists");
    assert_eq!(run.status(), steadfast::Status::Completed);
    assert!(
        !steadfast::Store::history(&reader, "g-0")
            .await
            .expect("history")
            .is_empty()
    );
    assert!(
        steadfast::ScheduleStore::list_schedules(&reader)
            .await
            .expect("schedules")
            .is_empty()
    );
    let refused = RedisStore::builder(reader_url.as_str())
        .connect()
        .await
        .expect_err("the read-only user may not run a worker");
    assert!(
        refused.is_fatal() && refused.to_string().contains("steadfast-reader"),
        "{refused}"
    );
    assert_no_secret(&refused.to_string(), &secrets);

    // A user without scripting is refused at connect, with what it lacks.
    let started = Instant::now();
    let mut noscript = WorkerProcess::start(
        &dir,
        "noscript",
        &acl.url("steadfast-noscript", WORKER_PASSWORD),
        false,
    );
    let status = noscript.exit_within(Duration::from_secs(20));
    let output = noscript.output();
    assert!(!status.success(), "{status}: {output}");
    assert!(
        output.contains("user `steadfast-noscript`")
            && output.contains("is not allowed to run scripts")
            && output.contains("docs/operations.md"),
        "{output}"
    );
    assert_no_secret(&output, &secrets);
    println!(
        "without scripting: refused at connect in {:?}",
        started.elapsed()
    );

    // The same user with the check skipped: the worker stops at its first
    // script instead of retrying forever.
    let started = Instant::now();
    let mut unchecked = WorkerProcess::start(
        &dir,
        "unchecked",
        &acl.url("steadfast-noscript", WORKER_PASSWORD),
        true,
    );
    let status = unchecked.exit_within(Duration::from_secs(20));
    let output = unchecked.output();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("error: the worker stopped: store permission denied")
            && output.contains("steadfast-noscript"),
        "{output}"
    );
    assert_no_secret(&output, &secrets);
    println!(
        "without scripting, unchecked: stopped in {:?}",
        started.elapsed()
    );

    // A password changed under a running worker: once its connection is
    // cut, it cannot authenticate again, and stops.
    let mut worker = WorkerProcess::start(
        &dir,
        "changed",
        &acl.url("steadfast-worker", WORKER_PASSWORD),
        false,
    );
    client
        .start::<greet>("before", "before".to_owned())
        .await
        .expect("starts");
    client
        .handle::<greet>("before")
        .result_within(Duration::from_secs(30))
        .await
        .expect("the worker runs");
    let started = Instant::now();
    let changed = acl.server.cli(&[
        "ACL",
        "SETUSER",
        "steadfast-worker",
        "resetpass",
        ">another-Secr3t",
    ]);
    assert_eq!(changed.trim(), "OK");
    acl.server
        .cli(&["CLIENT", "KILL", "USER", "steadfast-worker"]);
    let status = worker.exit_within(Duration::from_secs(30));
    let output = worker.output();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(
        output.contains("error: the worker stopped: store authentication failed"),
        "{output}"
    );
    assert_no_secret(
        &output,
        &[WORKER_PASSWORD, ADMIN_PASSWORD, "another-Secr3t"],
    );
    println!("password changed: stopped in {:?}", started.elapsed());
    for name in ["noscript", "unchecked", "changed"] {
        let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
        println!(
            "--- {name}:\n{}",
            log.lines()
                .filter(|l| l.starts_with("error"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
