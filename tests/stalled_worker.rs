//! A worker process frozen past its lease (SIGSTOP, as a GC pause or a
//! stopped VM would) and then continued starts nothing new: another worker
//! has taken the run over meanwhile, and the frozen one can no longer prove
//! its lease on its own clock. Only the attempt in flight at the stall may
//! finish, and its commit is fenced.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use steadfast::prelude::*;
use steadfast::{RedisStore, Status, Store};
use support::redis_server::RedisServer;

/// The error of the stall-test activities.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{0}")]
pub struct StallError(String);

impl From<ActivityError<StallError>> for StallError {
    fn from(e: ActivityError<StallError>) -> Self {
        StallError(e.to_string())
    }
}

/// Where activities record who ran what: a list outside the steadfast keys.
#[derive(Clone)]
struct Log(redis::aio::ConnectionManager);

const LOG_KEY: &str = "stalltest:attempts";

impl Log {
    async fn record(&self, what: String) {
        let mut conn = self.0.clone();
        let line = format!("{}|{what}", std::process::id());
        let _: Result<(), _> = conn.rpush(LOG_KEY, line).await;
    }
}

/// Fails its first attempt, so the worker sleeps through a long backoff
/// before the second: the stall lands in that sleep.
#[activity(retry(max_attempts = 3, initial_interval = "2s"))]
async fn s_flaky(ctx: &ActivityContext, order: String) -> Result<String, StallError> {
    ctx.resource::<Log>()
        .record(format!("flaky attempt {}", ctx.attempt()))
        .await;
    if ctx.attempt() == 1 {
        return Err(StallError(format!("{order}: not yet")));
    }
    Ok(order)
}

#[activity]
async fn s_after(ctx: &ActivityContext, order: String) -> Result<String, StallError> {
    ctx.resource::<Log>().record("after".to_owned()).await;
    Ok(order)
}

#[workflow(queue = "stall")]
async fn stall_flow(order: String) -> Result<String, StallError> {
    let order = s_flaky(order).await?;
    let order = s_after(order).await?;
    Ok(order)
}

const ENV: &str = "STEADFAST_STALL_WORKER_URL";
const LEASE: Duration = Duration::from_millis(600);

async fn store(url: &str) -> RedisStore {
    RedisStore::builder(url)
        .reclaim_after(LEASE)
        .check_persistence(false)
        .connect()
        .await
        .expect("connects")
}

async fn log(url: &str) -> Log {
    let client = redis::Client::open(url).expect("a valid url");
    Log(client.get_connection_manager().await.expect("connects"))
}

async fn worker(url: &str) -> steadfast::Worker {
    Worker::builder(store(url).await)
        .register::<stall_flow>()
        .resource(log(url).await)
        .lease(LEASE)
        .poll_wait(Duration::from_millis(100))
        .build()
        .expect("builds")
}

/// The worker process the test freezes. Ignored when run as a test.
#[test]
#[ignore = "started as a child process by `a_worker_frozen_past_its_lease_starts_nothing_new`"]
fn stalled_worker_process() {
    let Ok(url) = std::env::var(ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async {
        let _ = worker(&url).await.run_until(std::future::pending()).await;
    });
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("runs kill");
    assert!(status.success(), "kill {sig} failed");
}

async fn lines(url: &str) -> Vec<String> {
    let mut conn = log(url).await.0;
    conn.lrange(LOG_KEY, 0, -1).await.expect("reads the log")
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_worker_frozen_past_its_lease_starts_nothing_new() {
    let server = RedisServer::start();
    let url = server.url();
    let mut frozen = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "stalled_worker_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(ENV, &url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts the worker process");
    let frozen_pid = frozen.id().to_string();
    let client = Client::new(store(&url).await);
    let run = client
        .start::<stall_flow>("o-1", "o-1".to_owned())
        .await
        .expect("starts");

    // The process ran the first attempt, which failed; it sleeps through its
    // backoff. Freeze it there.
    let checker = store(&url).await;
    wait_until(
        "the first attempt to fail",
        Duration::from_secs(20),
        || async {
            checker
                .history("o-1")
                .await
                .expect("history")
                .iter()
                .any(|h| h.event.contains("attempt 1 failed"))
        },
    )
    .await;
    signal(&frozen, "-STOP");
    let stopped_at = Instant::now();
    let before: Vec<String> = lines(&url).await;
    assert_eq!(before, [format!("{frozen_pid}|flaky attempt 1")]);

    // Another worker takes the run over once the lease has expired, and
    // finishes it.
    let rescuer = worker(&url).await.spawn();
    assert_eq!(
        run.result_within(Duration::from_secs(20))
            .await
            .expect("completes"),
        "o-1"
    );
    rescuer.shutdown().await.expect("stops");

    // Continue the frozen worker after its backoff has run out: it must not
    // start the second attempt (nor anything else).
    let backoff_over = stopped_at + Duration::from_millis(2_500);
    tokio::time::sleep(backoff_over.saturating_duration_since(Instant::now())).await;
    signal(&frozen, "-CONT");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let _ = frozen.kill();
    let _ = frozen.wait();

    let after = lines(&url).await;
    let by_frozen: Vec<&String> = after
        .iter()
        .filter(|l| l.starts_with(&format!("{frozen_pid}|")))
        .collect();
    assert_eq!(
        by_frozen,
        [&format!("{frozen_pid}|flaky attempt 1")],
        "the frozen worker started work after it lost its lease: {after:?}"
    );
    let rescued: Vec<&String> = after.iter().filter(|l| !by_frozen.contains(l)).collect();
    assert_eq!(
        rescued.len(),
        2,
        "the rescuer ran attempt 2 and `after`: {after:?}"
    );
    let record = client
        .describe("o-1")
        .await
        .expect("reads")
        .expect("exists");
    assert_eq!(record.status(), Status::Completed);
    let seqs: Vec<u64> = client
        .history("o-1")
        .await
        .expect("history")
        .iter()
        .map(|h| h.seq)
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "one history, no transition twice: {seqs:?}"
    );
}
