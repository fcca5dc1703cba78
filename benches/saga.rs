//! Run: `cargo bench --bench saga` (`-- --quick` for a run under a minute): the order saga on the real runtime and Redis store, against its own redis-servers (or `REDIS_URL`, or `--cluster`), with a table of throughput, latency, round trips, CPU and memory, and the cost of commits that wait for a replica.
//!
//! By default each durability mode (`appendfsync everysec`, `appendfsync
//! always`) gets a fresh, private redis-server, and a private master with
//! one replica runs the saga twice in the same run: commits without `WAIT`
//! and commits that wait for the replica (`wait_for_replicas(1)`), the
//! ratios printed. `--cluster` runs it on a private Redis Cluster (3
//! masters, 3 replicas) instead, without and with `WAIT 1`; `--redis-url
//! URL` (or `REDIS_URL`) on a Redis of your own, in any topology, under a
//! key prefix of its own (`--wait` adds a run with `WAIT 1`).
//!
//! The order saga has three activities that return at once
//! (`charge_card` and `reserve_inventory` declare compensations). Under
//! load, clients keep `--concurrency` runs in flight (start, then wait for
//! the result) until `--workflows` have finished; then `--sequential` runs
//! go one at a time. In the same run the benchmark measures the limit: how
//! many of our commit scripts this Redis executes per second through the
//! same client library, with as many in flight. Then the cost of
//! telemetry, A/B on one private server (`--no-telemetry` skips it,
//! `--only-telemetry` runs only it, `--telemetry-rounds N`, default 3).

#[path = "../tests/support/redis_cluster.rs"]
#[allow(dead_code, unreachable_pub)]
mod redis_cluster;
#[path = "../tests/support/redis_proc.rs"]
#[allow(dead_code, unreachable_pub)]
mod redis_proc;
#[path = "../tests/support/redis_server.rs"]
#[allow(dead_code, unreachable_pub)]
mod redis_server;
#[path = "../tests/support/redis_tls.rs"]
#[allow(dead_code, unreachable_pub)]
mod redis_tls;

// The benchmark's own modules, in `benches/saga/` (the crate root is this
// file, so they are named by path).
#[path = "saga/flows.rs"]
mod flows;
#[path = "saga/measure.rs"]
mod measure;
#[path = "saga/runs.rs"]
mod runs;
#[path = "saga/targets.rs"]
mod targets;
#[path = "saga/telemetry.rs"]
mod telemetry;

use measure::ms;
use redis_server::Durability;
use runs::{ModeResult, run_mode, scaling, sweeps, worker_process};
use targets::Target;

/// Where the saga runs.
#[derive(Clone, Debug)]
enum Place {
    /// Private servers: one per durability mode, and a replicated pair.
    Private(Vec<Durability>),
    /// A private Redis Cluster.
    Cluster,
    /// The Redis at this URL.
    Given(String),
}

struct Options {
    quick: bool,
    /// The telemetry A/B (`--no-telemetry` skips it, `--only-telemetry`
    /// runs nothing else), with this many rounds.
    telemetry: Option<usize>,
    only_telemetry: bool,
    scaling: bool,
    sweeps: bool,
    workflows: usize,
    concurrency: usize,
    workers: usize,
    worker_concurrency: usize,
    sequential: usize,
    shards: Option<u32>,
    /// Also measure commits that wait for a replica (`--no-wait` skips).
    wait: bool,
    place: Place,
}

impl Options {
    fn parse() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let flag = |name: &str| args.iter().any(|a| a == name);
        let text = |name: &str| -> Option<String> {
            args.iter()
                .position(|a| a == name)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        let value = |name: &str| -> Option<usize> { text(name).and_then(|v| v.parse().ok()) };
        let quick = flag("--quick");
        let modes = match text("--modes") {
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
        let given = text("--redis-url").or_else(|| std::env::var("REDIS_URL").ok());
        let place = if flag("--cluster") {
            Place::Cluster
        } else if let Some(url) = given.filter(|u| !u.is_empty()) {
            Place::Given(url)
        } else {
            Place::Private(modes)
        };
        let private = matches!(place, Place::Private(_));
        Options {
            quick,
            telemetry: (private && !flag("--no-telemetry"))
                .then(|| value("--telemetry-rounds").unwrap_or(3)),
            only_telemetry: private && flag("--only-telemetry"),
            // Sweeps and the scaling check start private servers of their
            // own: only with the private ones.
            scaling: private && !flag("--no-scaling"),
            sweeps: private && !flag("--no-sweeps"),
            workflows: value("--workflows").unwrap_or(if quick { 4_000 } else { 20_000 }),
            concurrency: value("--concurrency").unwrap_or(100),
            workers: value("--workers").unwrap_or(1),
            worker_concurrency: value("--worker-concurrency").unwrap_or(128),
            sequential: value("--sequential").unwrap_or(if quick { 100 } else { 200 }),
            shards: value("--shards").and_then(|s| u32::try_from(s).ok()),
            wait: match place {
                Place::Given(_) => flag("--wait"),
                _ => !flag("--no-wait"),
            },
            place,
        }
    }

    /// The columns of the main table, in order.
    fn targets(&self) -> Vec<Target> {
        match &self.place {
            Place::Private(modes) => {
                let mut targets: Vec<Target> = modes.iter().map(|m| Target::private(*m)).collect();
                if self.wait {
                    targets.extend(Target::replicated());
                }
                targets
            }
            Place::Cluster => {
                let [plain, waiting] = Target::cluster(self.shards.unwrap_or(6));
                if self.wait {
                    vec![plain, waiting]
                } else {
                    vec![plain]
                }
            }
            Place::Given(url) => {
                let shards = self.shards.unwrap_or(1);
                let mut targets = vec![Target::given(url, shards, 0)];
                if self.wait {
                    targets.push(Target::given(url, shards, 1));
                }
                targets
            }
        }
    }
}

fn print_table(opts: &Options, results: &[ModeResult]) {
    println!(
        "\norder saga, 3 no-op activities ({} transitions per run); {} runs, {} in flight, \
         {} worker(s) x {} concurrent runs; {} sequential runs",
        flows::TRANSITIONS_PER_RUN,
        opts.workflows,
        opts.concurrency,
        opts.workers,
        opts.worker_concurrency,
        opts.sequential
    );
    let header: Vec<String> = std::iter::once("metric".to_owned())
        .chain(results.iter().map(|r| r.label.clone()))
        .collect();
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&ModeResult) -> String| {
        rows.push((name.to_owned(), results.iter().map(f).collect()));
    };
    let maybe = |v: Option<f64>, digits: usize| match v {
        Some(v) => format!("{v:.digits$}"),
        None => "n/a".to_owned(),
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
        maybe(r.redis_commands_per_transition, 2)
    });
    row("CPU per workflow, benchmark process (ms)", &|r| {
        format!("{:.3}", r.cpu_ms_per_workflow_bench)
    });
    row("CPU per workflow, redis-server (ms)", &|r| {
        maybe(r.cpu_ms_per_workflow_redis, 3)
    });
    row("peak RSS, benchmark process (MiB)", &|r| {
        format!("{:.1}", r.rss_bench_mib)
    });
    row("peak RSS, redis-server (MiB)", &|r| {
        maybe(r.rss_redis_mib, 1)
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

/// What waiting for a replica costs: each pair of columns measured on the
/// same servers in the same run, without and with `WAIT 1`.
fn print_wait_ratios(results: &[ModeResult]) {
    let pairs: Vec<(&ModeResult, &ModeResult)> = results
        .windows(2)
        .filter_map(|w| match w {
            [plain, waiting]
                if plain.label.ends_with("no WAIT") && waiting.label.contains("WAIT 1") =>
            {
                Some((plain, waiting))
            }
            _ => None,
        })
        .collect();
    if pairs.is_empty() {
        return;
    }
    println!(
        "\nthe cost of commits that wait for a replica (WAIT 1 / no WAIT, same servers, same run):"
    );
    println!(
        "| servers | throughput | under load p50 | one at a time p50 | worker round trips per transition | commit-script limit |"
    );
    println!("|---|---|---|---|---|---|");
    for (plain, waiting) in pairs {
        let ratio = |a: f64, b: f64| format!("{:.2}x", b / a);
        let servers = plain.label.trim_end_matches(", no WAIT");
        println!(
            "| {servers} | {} | {} | {} | {:.2} → {:.2} | {} |",
            ratio(plain.workflows_per_s, waiting.workflows_per_s),
            ratio(plain.load_p50.as_secs_f64(), waiting.load_p50.as_secs_f64()),
            ratio(plain.seq_p50.as_secs_f64(), waiting.seq_p50.as_secs_f64()),
            plain.worker_round_trips_per_transition,
            waiting.worker_round_trips_per_transition,
            ratio(plain.limit_commits_per_s, waiting.limit_commits_per_s),
        );
    }
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
    if !opts.only_telemetry {
        let mut results = Vec::new();
        for target in opts.targets() {
            eprintln!("running on {} ...", target.label);
            results.push(rt.block_on(run_mode(&opts, &target)));
        }
        print_table(&opts, &results);
        print_wait_ratios(&results);
    }
    if let Some(rounds) = opts.telemetry {
        eprintln!("telemetry A/B: {rounds} rounds of off and on ...");
        let (phases, exported, per_span) =
            rt.block_on(telemetry::ab(opts.workflows, opts.concurrency, rounds));
        telemetry::print(&phases, exported, per_span, opts.workflows);
    }
    if opts.only_telemetry {
        return;
    }
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
