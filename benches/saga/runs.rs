//! The measurements: the order saga under load and one at a time on a
//! target; how cost grows (sweeps); one worker process against two.

use std::io::Read;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use steadfast::prelude::*;
use steadfast::{RedisStore, Store};

use crate::Options;
use crate::flows::{EXECUTIONS, TRANSITIONS_PER_RUN, order, steps};
use crate::measure::{commit_limit, cpu_seconds, load, load_steps, peak_rss_mib, percentile};
use crate::redis_server::{Durability, RedisServer};
use crate::targets::Target;

/// The figures of one target. Those about the redis-server process are
/// `None` when it is not one of ours (a cluster, a given URL).
pub(crate) struct ModeResult {
    pub(crate) label: String,
    pub(crate) workflows_per_s: f64,
    pub(crate) transitions_per_s: f64,
    pub(crate) load_p50: Duration,
    pub(crate) load_p99: Duration,
    pub(crate) seq_p50: Duration,
    pub(crate) seq_p99: Duration,
    pub(crate) round_trips_per_transition: f64,
    pub(crate) worker_round_trips_per_transition: f64,
    pub(crate) client_round_trips_per_workflow: f64,
    pub(crate) redis_commands_per_transition: Option<f64>,
    pub(crate) cpu_ms_per_workflow_bench: f64,
    pub(crate) cpu_ms_per_workflow_redis: Option<f64>,
    pub(crate) rss_bench_mib: f64,
    pub(crate) rss_redis_mib: Option<f64>,
    pub(crate) limit_commits_per_s: f64,
}

async fn store(server: &RedisServer) -> RedisStore {
    RedisStore::builder(server.url())
        .check_persistence(false)
        .connect()
        .await
        .expect("connects")
}

/// The order saga on `target`: under load, then one at a time, then the
/// limit of the commit script.
pub(crate) async fn run_mode(opts: &Options, target: &Target) -> ModeResult {
    let worker_store = target.store().await;
    let client_store = target.store().await;
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
    let stats_before = target.commandstats();
    let redis_cpu = || target.pid.as_deref().map(cpu_seconds);
    let (cpu_bench_before, cpu_redis_before) = (cpu_seconds("self"), redis_cpu());
    let (elapsed, latencies) = load(&client, "load", opts.workflows, opts.concurrency).await;
    let cpu_bench = cpu_seconds("self") - cpu_bench_before;
    let cpu_redis = redis_cpu()
        .zip(cpu_redis_before)
        .map(|(after, before)| after - before);
    let worker_trips = worker_store.round_trips() - worker_trips_before;
    let client_trips = client_store.round_trips() - client_trips_before;
    let commands: Option<u64> = target
        .commandstats()
        .zip(stats_before)
        .map(|(after, before)| {
            after
                .iter()
                .filter(|(n, _)| *n != "info")
                .map(|(n, c)| c - before.get(n).unwrap_or(&0))
                .sum()
        });

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
    let limit = commit_limit(target, opts.concurrency, Duration::from_secs(2)).await;

    let n = opts.workflows as f64;
    let transitions = n * TRANSITIONS_PER_RUN as f64;
    ModeResult {
        label: target.label.clone(),
        workflows_per_s: n / elapsed.as_secs_f64(),
        transitions_per_s: transitions / elapsed.as_secs_f64(),
        load_p50: percentile(&latencies, 0.5),
        load_p99: percentile(&latencies, 0.99),
        seq_p50: percentile(&sequential, 0.5),
        seq_p99: percentile(&sequential, 0.99),
        round_trips_per_transition: (worker_trips + client_trips) as f64 / transitions,
        worker_round_trips_per_transition: worker_trips as f64 / transitions,
        client_round_trips_per_workflow: client_trips as f64 / n,
        redis_commands_per_transition: commands.map(|c| c as f64 / transitions),
        cpu_ms_per_workflow_bench: cpu_bench * 1000.0 / n,
        cpu_ms_per_workflow_redis: cpu_redis.map(|c| c * 1000.0 / n),
        rss_bench_mib: peak_rss_mib("self"),
        rss_redis_mib: target.pid.as_deref().map(peak_rss_mib),
        limit_commits_per_s: limit,
    }
}

/// How cost grows with the number of steps, the state size and the number of
/// runs in flight (appendfsync everysec).
pub(crate) async fn sweeps(opts: &Options) -> Vec<(String, f64, f64, Duration, f64)> {
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
pub(crate) async fn worker_process(url: &str) {
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
pub(crate) async fn scaling(opts: &Options) -> Vec<(usize, f64, f64)> {
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
