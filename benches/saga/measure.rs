//! What the benchmark measures with: loads of sagas, the limit of our
//! commit script, CPU and memory of processes, percentiles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use steadfast::core::{Cause, Command, Input, StepOutcome, Work, decide};
use steadfast::prelude::*;
use steadfast::{Acquired, Store};

use crate::flows::{order, steps};
use crate::targets::Target;

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
pub(crate) fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses).
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line; 12 and 13 here.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory in MiB, from `/proc/<pid>/status`.
pub(crate) fn peak_rss_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Runs `count` sagas with `concurrency` in flight; returns the elapsed time
/// and each run's start-to-result latency.
pub(crate) async fn load(
    client: &Client,
    prefix: &str,
    count: usize,
    concurrency: usize,
) -> (Duration, Vec<Duration>) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let next = Arc::clone(&next);
        let prefix = prefix.to_owned();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return latencies;
                }
                let id = format!("{prefix}-{i}");
                let t = Instant::now();
                let run = client
                    .start::<order>(&id, id.clone())
                    .await
                    .expect("starts");
                run.result().await.expect("completes");
                latencies.push(t.elapsed());
            }
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(r) = tasks.join_next().await {
        all.extend(r.expect("a client task"));
    }
    let elapsed = started.elapsed();
    all.sort();
    (elapsed, all)
}

/// What this Redis can do for us: commits of our commit script, through
/// the same client library, `in_flight` at a time, for `duration`.
pub(crate) async fn commit_limit(target: &Target, in_flight: usize, duration: Duration) -> f64 {
    let store = target.store().await;
    let client = Client::new(store.clone());
    let mut held = Vec::new();
    for i in 0..in_flight {
        let id = format!("limit-{i}");
        client
            .start::<order>(&id, id.clone())
            .await
            .expect("starts");
    }
    let queues = vec!["bench".to_owned()];
    while held.len() < in_flight {
        for task in store
            .poll("limit", &queues, in_flight, Duration::from_millis(100))
            .await
            .expect("polls")
        {
            let acquired = store
                .acquire_many(
                    std::slice::from_ref(&task),
                    "limit",
                    Duration::from_secs(60),
                )
                .await
                .expect("acquires");
            if let Some(Acquired::Held(lease, Ok(env))) = acquired.into_iter().next() {
                held.push((lease, *env));
            }
        }
    }
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (lease, mut env) in held {
        let store = store.clone();
        tasks.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                // A typical transition: an activity completed, the next one
                // is pending, the lease is kept.
                let cause = match env.work() {
                    Some(Work::Start) => Cause::Started,
                    _ => Cause::ActivitySucceeded {
                        outcome: serde_json::json!({"Ok": "pay-1"}),
                        compensation: None,
                    },
                };
                let state = env
                    .phase
                    .state()
                    .cloned()
                    .expect("a running run has a state");
                let input = Input::Stepped {
                    cause,
                    step: StepOutcome::Suspend {
                        step: state.step.clone(),
                        fingerprint: state.fingerprint.clone(),
                        json: state.json.clone(),
                        command: Command::Activity {
                            activity: "ship".into(),
                            input: serde_json::json!({"order_id": env.id}),
                            queue: None,
                        },
                    },
                    queries: env.queries.clone(),
                };
                let decision = decide(&env, input, env.updated_at_ms + 1).expect("decides");
                let guard = lease.guard(Some(env.seq), Duration::from_secs(60));
                store
                    .apply(&lease.workflow_id, &guard, &decision)
                    .await
                    .expect("applies");
                if let Some(next) = decision.record() {
                    env = next.clone();
                }
                n += 1;
            }
            n
        });
    }
    let mut total = 0;
    while let Some(n) = tasks.join_next().await {
        total += n.expect("a committer");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// Runs `count` `steps` workflows with `concurrency` in flight.
pub(crate) async fn load_steps(
    client: &Client,
    prefix: &str,
    count: usize,
    concurrency: usize,
    n: u32,
    payload: &str,
) -> (Duration, Vec<Duration>) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let next = Arc::clone(&next);
        let prefix = prefix.to_owned();
        let payload = payload.to_owned();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return latencies;
                }
                let id = format!("{prefix}-{i}");
                let t = Instant::now();
                let run = client
                    .start::<steps>(&id, (n, payload.clone()))
                    .await
                    .expect("starts");
                run.result().await.expect("completes");
                latencies.push(t.elapsed());
            }
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(r) = tasks.join_next().await {
        all.extend(r.expect("a client task"));
    }
    let elapsed = started.elapsed();
    all.sort();
    (elapsed, all)
}
