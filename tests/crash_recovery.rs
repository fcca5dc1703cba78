//! Crash recovery for real: a worker *process* is killed with SIGKILL at
//! random moments while it drives hundreds of order sagas, and Redis itself
//! is killed and restarted mid-run. Every run must settle exactly once, with
//! a clean history, compensations for exactly the steps that completed, and
//! re-executed activities carrying the same idempotency key.

#[path = "support/crash_saga.rs"]
mod crash_saga;
mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crash_saga::{
    ExecLog, Expected, LOG_KEY, Lcg, crash_order, exec_log, start_orders, verify, wait_all_settled,
};
use redis::AsyncCommands;
use steadfast::AdminStore as _;
use steadfast::prelude::*;
use steadfast::{RedisStore, Store};
use support::redis_cluster::RedisCluster;
use support::redis_server::{Durability, RedisServer};

/// The store URL of a worker process.
const WORKER_ENV: &str = "STEADFAST_CRASH_WORKER_URL";
/// Where its activities log their executions (default: the store's URL).
const LOG_ENV: &str = "STEADFAST_CRASH_LOG_URL";
/// How many shards its store has (default 1).
const SHARDS_ENV: &str = "STEADFAST_CRASH_SHARDS";
const LEASE: Duration = Duration::from_millis(800);

async fn worker_store(url: &str, shards: u32) -> RedisStore {
    RedisStore::builder(url)
        .shards(shards)
        .reclaim_after(LEASE)
        .check_persistence(false)
        .connect()
        .await
        .expect("connects")
}

fn worker_builder(store: RedisStore, log: ExecLog) -> steadfast::WorkerBuilder {
    Worker::builder(store)
        .register::<crash_order>()
        .resource(log)
        .lease(LEASE)
        .concurrency(8)
        .poll_wait(Duration::from_millis(200))
}

/// The body of the worker process the crash tests start and kill. Ignored
/// when run as a test.
#[test]
#[ignore = "started as a child process by the SIGKILL tests"]
fn crash_worker_process() {
    let Ok(url) = std::env::var(WORKER_ENV) else {
        return;
    };
    let log_url = std::env::var(LOG_ENV).unwrap_or_else(|_| url.clone());
    let shards = std::env::var(SHARDS_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async {
        let store = worker_store(&url, shards).await;
        let log = exec_log(&log_url).await;
        worker_builder(store, log)
            .build()
            .expect("builds")
            .run_until(std::future::pending())
            .await
            .expect("runs");
    });
}

/// Starts this test binary again as a worker process running the ignored
/// test `body`, with `env` set.
fn spawn_process(body: &str, env: &[(&str, String)]) -> Child {
    Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            body,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts a worker process")
}

const GRACEFUL_ENV: &str = "STEADFAST_GRACEFUL_WORKER_URL";

/// The body of the worker process that the Ctrl-C test stops with SIGINT:
/// `Worker::run`, as an application would use it. Ignored when run as a
/// test.
#[test]
#[ignore = "started as a child process by `ctrl_c_stops_a_worker_at_checkpoints`"]
fn graceful_worker_process() {
    let Ok(url) = std::env::var(GRACEFUL_ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async {
        let store = worker_store(&url, 1).await;
        let log = exec_log(&url).await;
        worker_builder(store, log)
            .shutdown_grace(Duration::from_secs(5))
            .build()
            .expect("builds")
            .run()
            .await
            .expect("runs and stops cleanly");
    });
}

/// Runs 250 sagas on `url` (with `shards` shards) while worker processes
/// are killed with SIGKILL at random moments, 6 times; checks every run.
async fn sigkill_workers_mid_run(url: &str, log_url: &str, shards: u32, seed: u64) {
    let store = worker_store(url, shards).await;
    let client = Client::new(store.clone());
    let mut rng = Lcg(seed);
    let expected = start_orders(&client, 250, &mut rng).await;
    let env = [
        (WORKER_ENV, url.to_owned()),
        (LOG_ENV, log_url.to_owned()),
        (SHARDS_ENV, shards.to_string()),
    ];

    let started = Instant::now();
    let mut kills = 0;
    loop {
        let mut worker = spawn_process("crash_worker_process", &env);
        let pause = Duration::from_millis(400 + rng.next(800));
        tokio::time::sleep(pause).await;
        let active = store
            .list_runs(steadfast::RunList::Active, usize::MAX)
            .await
            .expect("lists")
            .len();
        if active > 0 && kills < 6 {
            worker.kill().expect("SIGKILL");
            worker.wait().expect("reaped");
            kills += 1;
            println!("kill {kills}: SIGKILL after {pause:?}, {active} runs still active");
            continue;
        }
        wait_all_settled(&store, Duration::from_secs(120)).await;
        worker.kill().expect("stops the last worker");
        worker.wait().expect("reaped");
        break;
    }
    assert!(kills >= 5, "only {kills} kills landed while work remained");
    let repeats = verify(&store, log_url, &expected).await;
    assert!(
        repeats > 0,
        "kills mid-activity should have made some calls run again"
    );
    println!(
        "{} runs settled exactly once after {kills} SIGKILLs in {:?}; {repeats} activity executions were \
         repeats of an interrupted call, each with the call's own idempotency key",
        expected.len(),
        started.elapsed()
    );
}

#[tokio::test]
async fn sigkilled_workers_lose_nothing_and_repeat_nothing() {
    let server = RedisServer::start();
    let url = server.url();
    sigkill_workers_mid_run(&url, &url, 1, 0x5eed_0042).await;
}

/// The same on a Redis Cluster (3 masters, 3 replicas), the runs spread
/// over 6 shards, so that every master holds some; the activities log to a
/// plain server beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_workers_on_a_cluster_lose_nothing_and_repeat_nothing() {
    let cluster = tokio::task::block_in_place(RedisCluster::start);
    let log = RedisServer::start();
    sigkill_workers_mid_run(&cluster.url(), &log.url(), 6, 0xc1a5_7e42).await;
}

#[tokio::test]
async fn a_redis_restart_loses_nothing_acknowledged() {
    let mut server = RedisServer::start_with(Durability::Always);
    // The activities log to a second server, which keeps running: what
    // they did must not vanish with the restarted one.
    let log_server = RedisServer::start();
    let (url, log_url) = (server.url(), log_server.url());
    let store = worker_store(&url, 1).await;
    let client = Client::new(store.clone());
    let mut rng = Lcg(0x0da7_a5e7);
    let expected = start_orders(&client, 100, &mut rng).await;
    let worker = worker_builder(store.clone(), exec_log(&log_url).await)
        .build()
        .expect("builds")
        .spawn();

    tokio::time::sleep(Duration::from_millis(700)).await;
    // What Redis acknowledged: every checkpoint a client has read back was
    // fsynced before the reply (`appendfsync always`).
    let mut acknowledged = Vec::new();
    for id in expected.keys() {
        let env = store.load(id).await.expect("loads").expect("exists");
        acknowledged.push((id.clone(), env.seq, env.status(), env.updated_at_ms));
    }
    let before = store
        .list_runs(steadfast::RunList::Active, usize::MAX)
        .await
        .expect("lists")
        .len();
    assert!(before > 0, "the restart must land mid-run");
    server.kill();
    println!("Redis killed with {before} runs active");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    server.restart();
    println!("Redis restarted");

    wait_all_settled(&store, Duration::from_secs(120)).await;
    // Each acknowledged checkpoint is still the one in the history: same
    // sequence number, status and commit time (a lost and redone commit
    // would have another time).
    let mut progressed = 0;
    for (id, seq, status, at_ms) in &acknowledged {
        let history = store.history(id).await.expect("history");
        let entry = history
            .iter()
            .find(|h| h.seq == *seq)
            .unwrap_or_else(|| panic!("{id}: acknowledged seq {seq} is gone: {history:#?}"));
        assert_eq!(
            (entry.status, entry.at_ms),
            (*status, *at_ms),
            "{id}: the acknowledged commit {seq} was replaced"
        );
        if history.len() as u64 > seq + 1 {
            progressed += 1;
        }
    }
    assert!(progressed > 0, "no run went on after the restart");
    let repeats = verify(&store, &log_url, &expected).await;
    println!(
        "{} runs settled after a Redis restart, every acknowledged checkpoint kept; \
         {repeats} repeated executions",
        expected.len()
    );
    worker
        .shutdown()
        .await
        .expect("the worker survived the outage");
}

/// Ctrl-C (SIGINT) stops a worker process gracefully: it exits 0 within its
/// grace period, the runs it drove reach a checkpoint instead of being cut
/// mid-activity, and another worker finishes them with no activity run
/// twice.
#[tokio::test]
async fn ctrl_c_stops_a_worker_at_checkpoints() {
    let server = RedisServer::start();
    let url = server.url();
    let store = worker_store(&url, 1).await;
    let client = Client::new(store.clone());
    let mut expected = BTreeMap::new();
    for i in 0..12 {
        let id = format!("g-{i:02}");
        client
            .start::<crash_order>(&id, (id.clone(), 300, 0))
            .await
            .expect("starts");
        expected.insert(id, Expected { fail_at: 0 });
    }
    let mut worker = spawn_process("graceful_worker_process", &[(GRACEFUL_ENV, url.clone())]);
    // Let it get into its first activities (300 ms each).
    let mut conn = exec_log(&url).await.0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while conn.llen::<_, usize>(LOG_KEY).await.expect("reads") == 0 {
        assert!(
            Instant::now() < deadline,
            "the worker never started an activity"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let interrupted = Command::new("kill")
        .args(["-INT", &worker.id().to_string()])
        .status()
        .expect("runs kill");
    assert!(interrupted.success());
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = worker.try_wait().expect("polls the worker") {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(8),
            "the worker did not stop within its grace period"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "the worker exited with {status}");
    // A run it held was left at a checkpoint: its last commit is whole.
    for id in expected.keys() {
        let env = store.load(id).await.expect("loads").expect("exists");
        let history = store.history(id).await.expect("history");
        assert_eq!(history.last().map(|h| h.seq), Some(env.seq), "{id}");
    }

    let finisher = worker_builder(store.clone(), exec_log(&url).await)
        .build()
        .expect("builds")
        .spawn();
    wait_all_settled(&store, Duration::from_secs(60)).await;
    let repeats = verify(&store, &url, &expected).await;
    assert_eq!(repeats, 0, "a graceful stop cut an activity short");
    finisher.shutdown().await.expect("stops");
}
