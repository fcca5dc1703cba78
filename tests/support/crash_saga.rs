//! The order saga of the crash and failover tests, and what they check
//! afterwards: activities record each execution (run, step, idempotency
//! key) in a Redis list outside the steadfast keys, as an outside system
//! would keep it; every run must settle exactly once, with a clean
//! history, compensations for exactly the steps that completed, and
//! repeated executions only with the interrupted call's own key.
//!
//! Declared by the test files that use it (`#[path]`), not in `support`.
#![allow(dead_code, missing_docs, unreachable_pub)]

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use steadfast::AdminStore as _;
use steadfast::prelude::*;
use steadfast::{RedisStore, Status, Store};

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
pub struct ExecLog(pub redis::aio::ConnectionManager);

pub const LOG_KEY: &str = "crashtest:executions";

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
pub async fn crash_order(order: String, delay_ms: u64, fail_at: u8) -> Result<String, CrashError> {
    let payment = c_charge(order.clone(), delay_ms, fail_at == 1).await?;
    let reservation = c_reserve(order.clone(), delay_ms, fail_at == 2).await?;
    let tracking = c_ship(order, delay_ms, fail_at == 3).await?;
    Ok(format!("{payment}/{reservation}/{tracking}"))
}

/// Where the activities log their executions: a Redis that the tests never
/// restart (the crash test's own, or a second one beside the restarted one).
pub async fn exec_log(url: &str) -> ExecLog {
    let client = redis::Client::open(url).expect("a valid url");
    ExecLog(client.get_connection_manager().await.expect("connects"))
}

/// A small deterministic generator, so a failing run can be replayed.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

pub struct Expected {
    /// The step that fails for good (1 charge, 2 reserve, 3 ship), or 0.
    pub fail_at: u8,
}

pub async fn start_orders(
    client: &Client,
    count: usize,
    rng: &mut Lcg,
) -> BTreeMap<String, Expected> {
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

/// Waits until no run is active. A read that fails while Redis is away or
/// failing over is tried again (a client sees `Unavailable` meanwhile).
pub async fn wait_all_settled(store: &RedisStore, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let active = match store
            .list_runs(steadfast::RunList::Active, usize::MAX)
            .await
        {
            Ok(active) => active,
            Err(e) if e.is_transient() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => panic!("lists active runs: {e}"),
        };
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
pub async fn verify(
    store: &RedisStore,
    log_url: &str,
    expected: &BTreeMap<String, Expected>,
) -> usize {
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
