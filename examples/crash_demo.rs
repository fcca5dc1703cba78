//! Run: `cargo run --example crash_demo` (Redis at `REDIS_URL`, default `redis://127.0.0.1:6379`): a worker process is killed with SIGKILL mid-saga, another takes over, and the run resumes from its last checkpoint.
//!
//! The demo starts an order saga whose activities each take a second, runs
//! a worker in a child process, kills that process (`kill -9`) while the
//! second step is running, shows what Redis holds at that moment, starts a
//! new worker process, and shows the run finishing from the last
//! checkpoint: the first step is not run again; the interrupted one is, with
//! the same idempotency key.
//!
//! To do it by hand: `cargo run --example crash_demo -- --worker` in one
//! terminal, `cargo run --example crash_demo -- --start-only` in another,
//! `kill -9` the worker, start it again.

use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};
use steadfast::prelude::*;
use steadfast::{RedisStore, Store, Work};

/// What the demo's activities can answer.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{0}")]
pub struct DemoError(String);

impl From<ActivityError<DemoError>> for DemoError {
    fn from(e: ActivityError<DemoError>) -> Self {
        DemoError(e.to_string())
    }
}

async fn slow_step(ctx: &ActivityContext, what: &str) {
    println!(
        "    [worker {}] {what} started   (attempt {}, key {})",
        std::process::id(),
        ctx.attempt(),
        ctx.idempotency_key()
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    println!("    [worker {}] {what} done", std::process::id());
}

/// Charges the card (slowly).
#[activity(timeout = "10s", compensate = demo_refund)]
async fn demo_charge(ctx: &ActivityContext, order_id: String) -> Result<String, DemoError> {
    slow_step(ctx, "charge_card").await;
    Ok(format!("pay-{order_id}"))
}

/// Refunds a payment.
#[activity(timeout = "10s")]
async fn demo_refund(ctx: &ActivityContext, payment: String) -> Result<(), DemoError> {
    slow_step(ctx, &format!("refund {payment}")).await;
    Ok(())
}

/// Reserves the stock (slowly).
#[activity(timeout = "10s")]
async fn demo_reserve(ctx: &ActivityContext, order_id: String) -> Result<String, DemoError> {
    slow_step(ctx, "reserve_inventory").await;
    Ok(format!("res-{order_id}"))
}

/// Ships (slowly).
#[activity(timeout = "10s")]
async fn demo_ship(ctx: &ActivityContext, order_id: String) -> Result<String, DemoError> {
    slow_step(ctx, "ship").await;
    Ok(format!("trk-{order_id}"))
}

/// The order saga, slowed down.
#[workflow(queue = "crash-demo")]
async fn demo_order(order_id: String) -> Result<String, DemoError> {
    let payment = demo_charge(order_id.clone()).await?;
    let reservation = demo_reserve(order_id.clone()).await?;
    let tracking = demo_ship(order_id).await?;
    Ok(format!("{payment} / {reservation} / {tracking}"))
}

/// A crash demo.
#[derive(Debug, Parser)]
struct Args {
    /// The Redis server.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Only run a worker (for doing the demo by hand).
    #[arg(long)]
    worker: bool,
    /// Only start a run and print its id.
    #[arg(long)]
    start_only: bool,
}

/// A dead worker's runs are picked up after this long.
const LEASE: Duration = Duration::from_secs(2);

async fn store(url: &str) -> Result<RedisStore, steadfast::StoreError> {
    RedisStore::builder(url)
        .reclaim_after(LEASE)
        .check_persistence(false)
        .connect()
        .await
}

async fn run_worker(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let worker = Worker::builder(store(url).await?)
        .register::<demo_order>()
        .lease(LEASE)
        .poll_wait(Duration::from_millis(200))
        .build()?;
    println!("    [worker {}] started", std::process::id());
    worker.run().await?;
    Ok(())
}

/// A worker process, killed with SIGKILL when dropped.
struct WorkerProcess(Child);

impl WorkerProcess {
    fn spawn(url: &str) -> std::io::Result<Self> {
        let child = Command::new(std::env::current_exe()?)
            .arg("--worker")
            .env("REDIS_URL", url)
            .stdin(Stdio::null())
            .spawn()?;
        Ok(WorkerProcess(child))
    }

    fn id(&self) -> u32 {
        self.0.id()
    }

    /// `kill -9`: no cleanup, no lease release.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn wait_for_step(
    store: &RedisStore,
    id: &str,
    step: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    for _ in 0..200 {
        if let Some(env) = store.load(id).await?
            && env.step() == step
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("the run never reached `{step}`").into())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = if args.worker {
        run_worker(&args.redis_url).await
    } else {
        demo(&args).await
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: {e}\n(is Redis running at {}? start one with `redis-server`)",
                args.redis_url
            );
            ExitCode::FAILURE
        }
    }
}

async fn demo(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let url = &args.redis_url;
    let store = store(url).await?;
    let client = Client::new(store.clone());
    let id = format!("crash-demo-{}", steadfast::wall_clock_ms() / 1000);
    client.start::<demo_order>(&id, id.clone()).await?;
    println!("started run {id}");
    if args.start_only {
        return Ok(());
    }

    let mut first = WorkerProcess::spawn(url)?;
    println!("started worker process {}", first.id());
    wait_for_step(&store, &id, "demo_reserve#0").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.kill();
    println!(
        "\nkilled worker {} with SIGKILL while reserve_inventory was running",
        first.id()
    );

    let env = store.load(&id).await?.ok_or("the run vanished")?;
    println!("the checkpoint in Redis ({}):", store.run_key(&id));
    println!(
        "  status {}, seq {}, step {}",
        env.status(),
        env.seq,
        env.step()
    );
    println!(
        "  state   {}",
        env.phase
            .state()
            .map_or(serde_json::Value::Null, |s| s.json.clone())
    );
    if let Some(Work::Activity { activity, key, .. }) = env.work() {
        println!("  pending {activity}, idempotency key {key}");
    }
    println!("  compensations waiting: {}", env.compensations.len());

    let mut second = WorkerProcess::spawn(url)?;
    println!(
        "\nstarted worker process {}; it takes the run over once the dead worker's lease ({LEASE:?}) expires",
        second.id()
    );
    let result = client
        .handle::<demo_order>(&id)
        .result_within(Duration::from_secs(60))
        .await;
    second.kill();

    println!("\nresult: {result:?}");
    println!("history:");
    for h in store.history(&id).await? {
        println!("  seq {:>2}  {:<20} {}", h.seq, h.step, h.event);
    }
    println!(
        "\ncharge_card ran once; reserve_inventory ran twice with the same idempotency key: \
         activities run at least once, transitions exactly once."
    );
    Ok(())
}
