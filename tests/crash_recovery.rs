//! Crash recovery for real: a worker *process* is killed with SIGKILL at
//! random moments while it drives hundreds of order sagas, and Redis itself
//! is killed and restarted mid-run. Every run must settle exactly once, with
//! a clean history, compensations for exactly the steps that completed, and
//! re-executed activities carrying the same idempotency key.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use steadfast::AdminStore as _;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use steadfast::prelude::*;
use steadfast::{RedisStore, Status, Store};
use support::redis_server::{Durability, RedisServer};

/// The error of the crash-test activities.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum CrashError {
    /// The order cannot be done: not worth retrying.
    #[error("{0}")]
    Permanent(String),
    /// An outside system is unavailable: retried.
    #[error("{0}")]
    Transient(String),
}

impl CrashError {
    fn is_permanent(&self) -> bool {
        matches!(self, CrashError::Permanent(_))
    }
}

impl From<ActivityError<CrashError>> for CrashError {
    fn from(e: ActivityError<CrashError>) -> Self {
        CrashError::Permanent(e.to_string())
    }
}

/// Where activities record what they did: a Redis list outside the
/// steadfast keys, as an outside system would keep it.
#[derive(Clone)]
struct ExecLog(redis::aio::ConnectionManager);

const LOG_KEY: &str = "crashtest:executions";

impl ExecLog {
    /// Records an execution; fails (so the attempt fails and is retried)
    /// when the log cannot be written, like any side effect.
    async fn record(&self, ctx: &ActivityContext, what: &str) -> Result<(), CrashError> {
        let mut conn = self.0.clone();
        let line = format!("{}|{what}|{}", ctx.workflow_id(), ctx.idempotency_key());
        conn.rpush::<_, _, ()>(LOG_KEY, line)
            .await
            .map_err(|e| CrashError::Transient(format!("the log is unavailable: {e}")))
    }
}

/// The side effect happens first; then the activity waits for its
/// confirmation, which a kill can interrupt: the effect stays, the result is
/// lost, and the call runs again with the same idempotency key.
async fn work(ctx: &ActivityContext, delay_ms: u64, what: &str) -> Result<(), CrashError> {
    ctx.resource::<ExecLog>().record(ctx, what).await?;
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    Ok(())
}

/// Fails for good after its side effect when `fail` says so.
fn outcome(fail: bool, order: &str, what: &str) -> Result<(), CrashError> {
    if fail {
        return Err(CrashError::Permanent(format!("{what} refused {order}")));
    }
    Ok(())
}

#[activity(retry(max_attempts = 8, initial_interval = "50ms", non_retryable = CrashError::is_permanent), compensate = c_refund)]
async fn c_charge(
    ctx: &ActivityContext,
    order: String,
    delay_ms: u64,
    fail: bool,
) -> Result<String, CrashError> {
    work(ctx, delay_ms, "charge").await?;
    outcome(fail, &order, "charge")?;
    Ok(format!("pay-{order}"))
}

#[activity(retry(max_attempts = 8, initial_interval = "50ms"))]
async fn c_refund(ctx: &ActivityContext, payment: String) -> Result<(), CrashError> {
    let _ = payment;
    work(ctx, 10, "refund").await
}

#[activity(retry(max_attempts = 8, initial_interval = "50ms", non_retryable = CrashError::is_permanent), compensate = c_release)]
async fn c_reserve(
    ctx: &ActivityContext,
    order: String,
    delay_ms: u64,
    fail: bool,
) -> Result<String, CrashError> {
    work(ctx, delay_ms, "reserve").await?;
    outcome(fail, &order, "reserve")?;
    Ok(format!("res-{order}"))
}

#[activity(retry(max_attempts = 8, initial_interval = "50ms"))]
async fn c_release(ctx: &ActivityContext, reservation: String) -> Result<(), CrashError> {
    let _ = reservation;
    work(ctx, 10, "release").await
}

#[activity(retry(max_attempts = 8, initial_interval = "50ms", non_retryable = CrashError::is_permanent))]
async fn c_ship(
    ctx: &ActivityContext,
    order: String,
    delay_ms: u64,
    fail: bool,
) -> Result<String, CrashError> {
    work(ctx, delay_ms, "ship").await?;
    outcome(fail, &order, "ship")?;
    Ok(format!("trk-{order}"))
}

/// The order saga, with delays so that kills land mid-run; `fail_at` names
/// the step that fails for good (1 charge, 2 reserve, 3 ship; 0 none).
#[workflow(queue = "crash")]
async fn crash_order(order: String, delay_ms: u64, fail_at: u8) -> Result<String, CrashError> {
    let payment = c_charge(order.clone(), delay_ms, fail_at == 1).await?;
    let reservation = c_reserve(order.clone(), delay_ms, fail_at == 2).await?;
    let tracking = c_ship(order, delay_ms, fail_at == 3).await?;
    Ok(format!("{payment}/{reservation}/{tracking}"))
}

const WORKER_ENV: &str = "STEADFAST_CRASH_WORKER_URL";
const LEASE: Duration = Duration::from_millis(800);

async fn worker_store(url: &str) -> RedisStore {
    RedisStore::builder(url)
        .reclaim_after(LEASE)
        .check_persistence(false)
        .connect()
        .await
        .expect("connects")
}

/// Where the activities log their executions: a Redis that the tests never
/// restart (the crash test's own, or a second one beside the restarted one).
async fn exec_log(url: &str) -> ExecLog {
    let client = redis::Client::open(url).expect("a valid url");
    ExecLog(client.get_connection_manager().await.expect("connects"))
}

fn worker_builder(store: RedisStore, log: ExecLog) -> steadfast::WorkerBuilder {
    Worker::builder(store)
        .register::<crash_order>()
        .resource(log)
        .lease(LEASE)
        .concurrency(8)
        .poll_wait(Duration::from_millis(200))
}

/// The body of the worker process the crash test starts and kills. Ignored
/// when run as a test.
#[test]
#[ignore = "started as a child process by `sigkilled_workers_lose_nothing_and_repeat_nothing`"]
fn crash_worker_process() {
    let Ok(url) = std::env::var(WORKER_ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async {
        let store = worker_store(&url).await;
        let log = exec_log(&url).await;
        worker_builder(store, log)
            .build()
            .expect("builds")
            .run_until(std::future::pending())
            .await
            .expect("runs");
    });
}

/// Starts this test binary again as a worker process running the ignored
/// test `body`, which finds the Redis URL in `env`.
fn spawn_process(body: &str, env: &str, url: &str) -> Child {
    Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            body,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(env, url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts a worker process")
}

fn spawn_worker(url: &str) -> Child {
    spawn_process("crash_worker_process", WORKER_ENV, url)
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
        let store = worker_store(&url).await;
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

/// A small deterministic generator, so a failing run can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

struct Expected {
    /// The step that fails for good (1 charge, 2 reserve, 3 ship), or 0.
    fail_at: u8,
}

async fn start_orders(client: &Client, count: usize, rng: &mut Lcg) -> BTreeMap<String, Expected> {
    let mut expected = BTreeMap::new();
    for i in 0..count {
        let id = format!("o-{i:03}");
        // One run in ten fails at each step; the rest complete.
        let fail_at = match i % 10 {
            1 => 1,
            4 => 2,
            7 => 3,
            _ => 0,
        };
        let delay = 20 + rng.next(60);
        client
            .start::<crash_order>(&id, (id.clone(), delay, fail_at))
            .await
            .expect("starts");
        expected.insert(id, Expected { fail_at });
    }
    expected
}

async fn wait_all_settled(store: &RedisStore, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let active = store
            .list_runs(steadfast::RunList::Active, usize::MAX)
            .await
            .expect("lists active runs");
        if active.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} runs still active: {:?}",
            active.len(),
            &active[..active.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks every run; returns how many activity executions were repeats.
async fn verify(store: &RedisStore, log_url: &str, expected: &BTreeMap<String, Expected>) -> usize {
    let mut conn = exec_log(log_url).await.0;
    let lines: Vec<String> = conn.lrange(LOG_KEY, 0, -1).await.expect("reads the log");
    // run -> activity -> key -> executions
    let mut log: HashMap<String, BTreeMap<String, BTreeMap<String, usize>>> = HashMap::new();
    for line in &lines {
        let parts: Vec<&str> = line.splitn(3, '|').collect();
        let [run, what, key] = parts.as_slice() else {
            panic!("bad log line {line}")
        };
        *log.entry((*run).to_owned())
            .or_default()
            .entry((*what).to_owned())
            .or_default()
            .entry((*key).to_owned())
            .or_default() += 1;
    }
    let mut repeats = 0;
    for (id, exp) in expected {
        let env = store
            .load(id)
            .await
            .expect("loads")
            .expect("the run exists");
        let want = if exp.fail_at > 0 {
            Status::Failed
        } else {
            Status::Completed
        };
        assert_eq!(env.status(), want, "{id}: {:?}", env.reason());

        // A clean history: one entry per transition, in order, settled once.
        let history = store.history(id).await.expect("history");
        let seqs: Vec<u64> = history.iter().map(|h| h.seq).collect();
        let clean: Vec<u64> = (0..history.len() as u64).collect();
        assert_eq!(
            seqs, clean,
            "{id}: a transition was committed twice or lost"
        );
        let settled = history.iter().filter(|h| h.status.is_settled()).count();
        assert_eq!(settled, 1, "{id} settled {settled} times");
        assert_eq!(history.last().map(|h| h.seq), Some(env.seq));

        let acts = log.get(id).cloned().unwrap_or_default();
        let keys = |what: &str| -> Vec<String> {
            acts.get(what)
                .map(|k| k.keys().cloned().collect())
                .unwrap_or_default()
        };
        // Each step that ran has one idempotency key, however often it
        // ran; steps after the failing one never ran.
        let reached = if exp.fail_at == 0 { 3 } else { exp.fail_at };
        let mut completed = Vec::new();
        for (n, step) in ["charge", "reserve", "ship"].into_iter().enumerate() {
            let n = n as u8 + 1;
            let ran = keys(step);
            let want = usize::from(n <= reached);
            assert_eq!(ran.len(), want, "{id}: {step} keys {ran:?}");
            if n < reached || exp.fail_at == 0 {
                completed.extend(ran);
            }
        }
        // Compensations ran for exactly the steps that completed (ship has
        // none; a completed order has nothing to undo).
        let mut undone: Vec<String> = keys("refund");
        undone.extend(keys("release"));
        undone.sort();
        let mut want: Vec<String> = if exp.fail_at > 0 {
            completed
                .iter()
                .filter(|k| !k.contains("c_ship"))
                .map(|k| format!("{k}/undo"))
                .collect()
        } else {
            Vec::new()
        };
        want.sort();
        assert_eq!(undone, want, "{id}: compensations");
        for by_key in acts.values() {
            for n in by_key.values() {
                repeats += n - 1;
            }
        }
    }
    repeats
}

#[tokio::test]
async fn sigkilled_workers_lose_nothing_and_repeat_nothing() {
    let server = RedisServer::start();
    let url = server.url();
    let store = worker_store(&url).await;
    let client = Client::new(store.clone());
    let mut rng = Lcg(0x5eed_0042);
    let expected = start_orders(&client, 250, &mut rng).await;

    let started = Instant::now();
    let mut kills = 0;
    loop {
        let mut worker = spawn_worker(&url);
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
    let repeats = verify(&store, &url, &expected).await;
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
async fn a_redis_restart_loses_nothing_acknowledged() {
    let mut server = RedisServer::start_with(Durability::Always);
    // The activities log to a second server, which keeps running: what
    // they did must not vanish with the restarted one.
    let log_server = RedisServer::start();
    let (url, log_url) = (server.url(), log_server.url());
    let store = worker_store(&url).await;
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
    let store = worker_store(&url).await;
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
    let mut worker = spawn_process("graceful_worker_process", GRACEFUL_ENV, &url);
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
