//! Run: `cargo bench --bench saga` (`-- --quick` for a run under a minute): the order saga on the real runtime and Redis store, against its own redis-server, with a table of throughput, latency, round trips, CPU and memory.
//!
//! Each durability mode (`appendfsync everysec`, `appendfsync always`) gets a
//! fresh, private redis-server. The order saga has three activities that
//! return at once (`charge_card` and `reserve_inventory` declare
//! compensations). Under load, clients keep `--concurrency` runs in flight
//! (start, then wait for the result) until `--workflows` have finished;
//! then `--sequential` runs go one at a time. In the same run the benchmark
//! measures the limit: how many of our commit scripts this Redis executes
//! per second through the same client library, with as many in flight.

#[path = "../tests/support/redis_server.rs"]
#[allow(dead_code, unreachable_pub)]
mod redis_server;

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis_server::{Durability, RedisServer};
use serde::{Deserialize, Serialize};
use steadfast::core::{Cause, Command, Input, StepOutcome, Work, decide};
use steadfast::prelude::*;
use steadfast::{Acquired, RedisStore, Store};

/// The saga's error.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(String);

impl From<ActivityError<BenchError>> for BenchError {
    fn from(e: ActivityError<BenchError>) -> Self {
        BenchError(e.to_string())
    }
}

/// Forward activity executions in this process (the scaling check sums
/// them over worker processes: a run driven twice would show as surplus).
static EXECUTIONS: AtomicU64 = AtomicU64::new(0);

fn executed() {
    EXECUTIONS.fetch_add(1, Ordering::Relaxed);
}

#[activity(compensate = refund)]
async fn charge_card(order_id: String) -> Result<String, BenchError> {
    executed();
    Ok(order_id)
}

#[activity]
async fn refund(payment: String) -> Result<(), BenchError> {
    let _ = payment;
    Ok(())
}

#[activity(compensate = release_inventory)]
async fn reserve_inventory(order_id: String) -> Result<String, BenchError> {
    executed();
    Ok(order_id)
}

#[activity]
async fn release_inventory(reservation: String) -> Result<(), BenchError> {
    let _ = reservation;
    Ok(())
}

#[activity]
async fn ship(order_id: String) -> Result<String, BenchError> {
    executed();
    Ok(order_id)
}

/// The order saga.
#[workflow(queue = "bench")]
async fn order(order_id: String) -> Result<String, BenchError> {
    let payment = charge_card(order_id.clone()).await?;
    let reservation = reserve_inventory(order_id.clone()).await?;
    let tracking = ship(order_id).await?;
    Ok(format!("{payment}/{reservation}/{tracking}"))
}

#[activity]
async fn noop_step(i: u32) -> Result<u32, BenchError> {
    Ok(i)
}

/// `n` steps, carrying `payload` in every state (for the cost of steps and
/// of state size).
#[workflow(queue = "bench")]
async fn steps(n: u32, payload: String) -> Result<usize, BenchError> {
    for i in 0..n {
        noop_step(i).await?;
    }
    Ok(payload.len())
}

/// Transitions committed per order saga run: start, three activities.
const TRANSITIONS_PER_RUN: u64 = 4;

struct Options {
    quick: bool,
    scaling: bool,
    sweeps: bool,
    workflows: usize,
    concurrency: usize,
    workers: usize,
    worker_concurrency: usize,
    sequential: usize,
    modes: Vec<Durability>,
}

impl Options {
    fn parse() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let quick = args.iter().any(|a| a == "--quick");
        let value = |name: &str| -> Option<usize> {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
                .and_then(|v| v.parse().ok())
        };
        let modes = match args
            .iter()
            .position(|a| a == "--modes")
            .and_then(|i| args.get(i + 1))
        {
            Some(m) => m
                .split(',')
                .map(|m| match m {
                    "always" => Durability::Always,
                    "everysec" => Durability::EverySec,
                    "none" => Durability::None,
                    other => panic!("unknown mode `{other}`; expected everysec, always or none"),
                })
                .collect(),
            None => vec![Durability::EverySec, Durability::Always],
        };
        Options {
            quick,
            scaling: !args.iter().any(|a| a == "--no-scaling"),
            sweeps: !args.iter().any(|a| a == "--no-sweeps"),
            workflows: value("--workflows").unwrap_or(if quick { 4_000 } else { 20_000 }),
            concurrency: value("--concurrency").unwrap_or(100),
            workers: value("--workers").unwrap_or(1),
            worker_concurrency: value("--worker-concurrency").unwrap_or(128),
            sequential: value("--sequential").unwrap_or(if quick { 100 } else { 200 }),
            modes,
        }
    }
}

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: &str) -> f64 {
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
fn peak_rss_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn commandstats(server: &RedisServer) -> HashMap<String, u64> {
    server
        .cli(&["INFO", "commandstats"])
        .lines()
        .filter_map(|l| {
            let (name, stats) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.trim().parse().ok()?))
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

struct ModeResult {
    mode: &'static str,
    workflows_per_s: f64,
    transitions_per_s: f64,
    load_p50: Duration,
    load_p99: Duration,
    seq_p50: Duration,
    seq_p99: Duration,
    round_trips_per_transition: f64,
    worker_round_trips_per_transition: f64,
    client_round_trips_per_workflow: f64,
    redis_commands_per_transition: f64,
    cpu_ms_per_workflow_bench: f64,
    cpu_ms_per_workflow_redis: f64,
    rss_bench_mib: f64,
    rss_redis_mib: f64,
    limit_commits_per_s: f64,
}

async fn store(server: &RedisServer) -> RedisStore {
    RedisStore::builder(server.url())
        .check_persistence(false)
        .connect()
        .await
        .expect("connects")
}

/// Runs `count` sagas with `concurrency` in flight; returns the elapsed time
/// and each run's start-to-result latency.
async fn load(
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
async fn commit_limit(server: &RedisServer, in_flight: usize, duration: Duration) -> f64 {
    let store = store(server).await;
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

async fn run_mode(opts: &Options, durability: Durability) -> ModeResult {
    let mode = match durability {
        Durability::EverySec => "everysec",
        Durability::Always => "always",
        Durability::None => "none",
    };
    let server = RedisServer::start_with(durability);
    let redis_pid = server.pid().expect("a server process").to_string();
    let worker_store = store(&server).await;
    let client_store = store(&server).await;
    let mut workers = Vec::new();
    for w in 0..opts.workers {
        workers.push(
            Worker::builder(worker_store.clone())
                .register::<order>()
                .worker_id(format!("bench-{w}"))
                .concurrency(opts.worker_concurrency)
                .poll_wait(Duration::from_millis(100))
                .build()
                .expect("builds")
                .spawn(),
        );
    }
    let client = Client::new(client_store.clone());

    // Warm up: connections, scripts, consumer groups, allocator.
    load(&client, "warm", 500.min(opts.workflows), opts.concurrency).await;

    let (worker_trips_before, client_trips_before) =
        (worker_store.round_trips(), client_store.round_trips());
    let stats_before = commandstats(&server);
    let (cpu_bench_before, cpu_redis_before) = (cpu_seconds("self"), cpu_seconds(&redis_pid));
    let (elapsed, latencies) = load(&client, "load", opts.workflows, opts.concurrency).await;
    let cpu_bench = cpu_seconds("self") - cpu_bench_before;
    let cpu_redis = cpu_seconds(&redis_pid) - cpu_redis_before;
    let worker_trips = worker_store.round_trips() - worker_trips_before;
    let client_trips = client_store.round_trips() - client_trips_before;
    let stats_after = commandstats(&server);
    let commands: u64 = stats_after
        .iter()
        .filter(|(n, _)| *n != "info")
        .map(|(n, c)| c - stats_before.get(n).unwrap_or(&0))
        .sum();

    let mut sequential = Vec::with_capacity(opts.sequential);
    for i in 0..opts.sequential {
        let id = format!("seq-{i}");
        let t = Instant::now();
        client
            .start::<order>(&id, id.clone())
            .await
            .expect("starts")
            .result()
            .await
            .expect("completes");
        sequential.push(t.elapsed());
    }
    sequential.sort();
    for w in workers {
        w.shutdown().await.expect("stops");
    }
    let limit = commit_limit(&server, opts.concurrency, Duration::from_secs(2)).await;

    let n = opts.workflows as f64;
    let transitions = n * TRANSITIONS_PER_RUN as f64;
    ModeResult {
        mode,
        workflows_per_s: n / elapsed.as_secs_f64(),
        transitions_per_s: transitions / elapsed.as_secs_f64(),
        load_p50: percentile(&latencies, 0.5),
        load_p99: percentile(&latencies, 0.99),
        seq_p50: percentile(&sequential, 0.5),
        seq_p99: percentile(&sequential, 0.99),
        round_trips_per_transition: (worker_trips + client_trips) as f64 / transitions,
        worker_round_trips_per_transition: worker_trips as f64 / transitions,
        client_round_trips_per_workflow: client_trips as f64 / n,
        redis_commands_per_transition: commands as f64 / transitions,
        cpu_ms_per_workflow_bench: cpu_bench * 1000.0 / n,
        cpu_ms_per_workflow_redis: cpu_redis * 1000.0 / n,
        rss_bench_mib: peak_rss_mib("self"),
        rss_redis_mib: peak_rss_mib(&redis_pid),
        limit_commits_per_s: limit,
    }
}

fn print_table(opts: &Options, results: &[ModeResult]) {
    println!(
        "\norder saga, 3 no-op activities ({TRANSITIONS_PER_RUN} transitions per run); {} runs, {} in flight, \
         {} worker(s) x {} concurrent runs; {} sequential runs",
        opts.workflows, opts.concurrency, opts.workers, opts.worker_concurrency, opts.sequential
    );
    let header: Vec<String> = std::iter::once("metric".to_owned())
        .chain(results.iter().map(|r| format!("appendfsync {}", r.mode)))
        .collect();
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&ModeResult) -> String| {
        rows.push((name.to_owned(), results.iter().map(f).collect()));
    };
    row("throughput (workflows/s)", &|r| {
        format!("{:.0}", r.workflows_per_s)
    });
    row("throughput (transitions/s)", &|r| {
        format!("{:.0}", r.transitions_per_s)
    });
    row("under load, start to result p50 (ms)", &|r| ms(r.load_p50));
    row("under load, start to result p99 (ms)", &|r| ms(r.load_p99));
    row(
        "one at a time, start to result p50 (ms)",
        &|r| ms(r.seq_p50),
    );
    row(
        "one at a time, start to result p99 (ms)",
        &|r| ms(r.seq_p99),
    );
    row("worker round trips per transition", &|r| {
        format!("{:.2}", r.worker_round_trips_per_transition)
    });
    row("client round trips per workflow (start, result)", &|r| {
        format!("{:.2}", r.client_round_trips_per_workflow)
    });
    row("all round trips per transition (worker + client)", &|r| {
        format!("{:.2}", r.round_trips_per_transition)
    });
    row("Redis commands per transition (commandstats)", &|r| {
        format!("{:.2}", r.redis_commands_per_transition)
    });
    row("CPU per workflow, benchmark process (ms)", &|r| {
        format!("{:.3}", r.cpu_ms_per_workflow_bench)
    });
    row("CPU per workflow, redis-server (ms)", &|r| {
        format!("{:.3}", r.cpu_ms_per_workflow_redis)
    });
    row("peak RSS, benchmark process (MiB)", &|r| {
        format!("{:.1}", r.rss_bench_mib)
    });
    row("peak RSS, redis-server (MiB)", &|r| {
        format!("{:.1}", r.rss_redis_mib)
    });
    row("limit: commit scripts/s through the same client", &|r| {
        format!("{:.0}", r.limit_commits_per_s)
    });
    row("our transitions/s as % of the limit", &|r| {
        format!(
            "{:.0}%",
            100.0 * r.transitions_per_s / r.limit_commits_per_s
        )
    });
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(10).max(6);
    print!("| {:<width$} |", header[0]);
    for h in &header[1..] {
        print!(" {h:>20} |");
    }
    println!();
    print!("|{}|", "-".repeat(width + 2));
    for _ in &header[1..] {
        print!("{}|", "-".repeat(22));
    }
    println!();
    for (name, values) in rows {
        print!("| {name:<width$} |");
        for v in values {
            print!(" {v:>20} |");
        }
        println!();
    }
}

/// Runs `count` `steps` workflows with `concurrency` in flight.
async fn load_steps(
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

/// How cost grows with the number of steps, the state size and the number of
/// runs in flight (appendfsync everysec).
async fn sweeps(opts: &Options) -> Vec<(String, f64, f64, Duration, f64)> {
    let count = if opts.quick { 400 } else { 2_000 };
    let server = RedisServer::start_with(Durability::EverySec);
    let redis_pid = server.pid().expect("a server").to_string();
    let worker_store = store(&server).await;
    let worker = Worker::builder(worker_store.clone())
        .register::<steps>()
        .concurrency(opts.worker_concurrency)
        .poll_wait(Duration::from_millis(100))
        .build()
        .expect("builds")
        .spawn();
    let client = Client::new(store(&server).await);
    let small = "x".repeat(1024);
    let large = "x".repeat(64 * 1024);
    let mut cases: Vec<(String, u32, &str, usize)> = Vec::new();
    for n in [1u32, 3, 10, 30] {
        cases.push((
            format!("{n} steps, 1 KB state, 100 in flight"),
            n,
            &small,
            100,
        ));
    }
    cases.push(("3 steps, 64 KB state, 100 in flight".into(), 3, &large, 100));
    for c in [1usize, 10, 400] {
        cases.push((format!("3 steps, 1 KB state, {c} in flight"), 3, &small, c));
    }
    load_steps(&client, "warm", 200, 50, 3, &small).await;
    let mut out = Vec::new();
    for (k, (name, n, payload, concurrency)) in cases.into_iter().enumerate() {
        let runs = if concurrency == 1 { count / 4 } else { count };
        let cpu = cpu_seconds("self") + cpu_seconds(&redis_pid);
        let (elapsed, latencies) =
            load_steps(&client, &format!("sweep{k}"), runs, concurrency, n, payload).await;
        let cpu = cpu_seconds("self") + cpu_seconds(&redis_pid) - cpu;
        let wps = runs as f64 / elapsed.as_secs_f64();
        let tps = wps * f64::from(n + 1);
        out.push((
            name,
            wps,
            tps,
            percentile(&latencies, 0.5),
            cpu * 1000.0 / runs as f64,
        ));
    }
    worker.shutdown().await.expect("stops");
    out
}

/// Runs a worker until its standard input closes, then prints how many
/// activities it executed (the scaling check starts these).
async fn worker_process(url: &str) {
    let store = RedisStore::builder(url)
        .check_persistence(false)
        .connect()
        .await
        .expect("connects");
    Worker::builder(store)
        .register::<order>()
        .concurrency(128)
        .poll_wait(Duration::from_millis(100))
        .build()
        .expect("builds")
        .run_until(async {
            let _ = tokio::task::spawn_blocking(|| {
                let _ = std::io::stdin().read_to_end(&mut Vec::new());
            })
            .await;
        })
        .await
        .expect("runs");
    println!("executions {}", EXECUTIONS.load(Ordering::Relaxed));
}

/// Kills its worker processes when dropped.
struct Processes(Vec<std::process::Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The same load on one worker process, then on two: throughput of each,
/// and a check that no transition of any run was committed twice and no
/// activity ran twice (the worker processes' execution counts add up to
/// three per run).
async fn scaling(opts: &Options) -> Vec<(usize, f64, f64)> {
    let count = if opts.quick { 3_000 } else { 10_000 };
    let mut out = Vec::new();
    for processes in [1usize, 2] {
        let server = RedisServer::start_with(Durability::EverySec);
        let redis_pid = server.pid().expect("a server").to_string();
        let exe = std::env::current_exe().expect("the benchmark binary");
        let mut workers = Processes(
            (0..processes)
                .map(|_| {
                    std::process::Command::new(&exe)
                        .args(["--worker-process", &server.url()])
                        .stdin(std::process::Stdio::piped())
                        .stdout(std::process::Stdio::piped())
                        .spawn()
                        .expect("starts a worker process")
                })
                .collect(),
        );
        let store = store(&server).await;
        let client = Client::new(store.clone());
        load(&client, "warm", 300, opts.concurrency).await;
        let cpu_redis = cpu_seconds(&redis_pid);
        let (elapsed, _) = load(&client, "scale", count, opts.concurrency).await;
        let redis_share = (cpu_seconds(&redis_pid) - cpu_redis) / elapsed.as_secs_f64();
        for i in 0..count {
            let id = format!("scale-{i}");
            let history = store.history(&id).await.expect("history");
            let seqs: Vec<u64> = history.iter().map(|h| h.seq).collect();
            assert_eq!(
                seqs,
                (0..=TRANSITIONS_PER_RUN).collect::<Vec<_>>(),
                "{id} committed a transition twice or lost one"
            );
            assert_eq!(
                history.iter().filter(|h| h.status.is_settled()).count(),
                1,
                "{id} settled twice"
            );
        }
        // Closing their input stops the workers gracefully; each reports.
        let mut executions = 0u64;
        for mut child in workers.0.drain(..) {
            drop(child.stdin.take());
            let report = child.wait_with_output().expect("the worker stops");
            let text = String::from_utf8_lossy(&report.stdout);
            executions += text
                .lines()
                .find_map(|l| l.strip_prefix("executions "))
                .and_then(|n| n.trim().parse::<u64>().ok())
                .expect("the worker reports its executions");
        }
        let runs = 300 + count as u64;
        assert_eq!(
            executions,
            3 * runs,
            "{runs} runs of 3 activities: an activity ran twice or not at all"
        );
        out.push((processes, count as f64 / elapsed.as_secs_f64(), redis_share));
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    if let Some(i) = args.iter().position(|a| a == "--worker-process") {
        let url = args.get(i + 1).expect("--worker-process <redis url>");
        rt.block_on(worker_process(url));
        return;
    }
    let opts = Options::parse();
    let mut results = Vec::new();
    for mode in opts.modes.clone() {
        eprintln!("running with appendfsync {mode:?} ...");
        results.push(rt.block_on(run_mode(&opts, mode)));
    }
    print_table(&opts, &results);
    if opts.sweeps {
        eprintln!("sweeps: steps, state size, runs in flight ...");
        let rows = rt.block_on(sweeps(&opts));
        println!(
            "\nhow cost grows (appendfsync everysec; `steps` workflow: n no-op activities in a loop, the payload stored in every state):"
        );
        println!(
            "| case | workflows/s | transitions/s | start to result p50 (ms) | CPU per workflow, both processes (ms) |"
        );
        println!("|---|---|---|---|---|");
        for (name, wps, tps, p50, cpu) in rows {
            println!("| {name} | {wps:.0} | {tps:.0} | {} | {cpu:.3} |", ms(p50));
        }
    }
    if opts.scaling {
        eprintln!("scaling check: one worker process, then two ...");
        let rows = rt.block_on(scaling(&opts));
        println!("\nscaling (appendfsync everysec, worker processes separate from the clients):");
        println!("| worker processes | workflows/s | redis-server CPU (cores) | vs one process |");
        println!("|---|---|---|---|");
        let base = rows.first().map(|r| r.1).unwrap_or(1.0);
        for (p, wps, redis) in &rows {
            println!("| {p} | {wps:.0} | {redis:.2} | {:.2}x |", wps / base);
        }
        println!(
            "every run's history checked: one entry per transition, settled once; \
             the worker processes executed exactly 3 activities per run (no run driven twice)"
        );
    }
}
