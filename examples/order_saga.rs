//! Run: `cargo run --example order_saga` (Redis at `REDIS_URL`, default `redis://127.0.0.1:6379`), or `-- --store memory` without Redis; add `--fail-at ship` to watch the saga undo itself.
//!
//! The order saga: charge the card, reserve the inventory, ship. Every step
//! is an activity with a timeout and bounded retries; charging and reserving
//! declare their compensations, so when a later step fails for good the
//! completed steps are undone, newest first. The program prints what each
//! activity does, then the run's checkpoints, its final status, and (with
//! Redis) the `redis-cli` commands that show the same data.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};
use steadfast::prelude::*;
use steadfast::{RedisStore, Status, Store};

/// A payment made at the provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentId(pub String);

/// Stock set aside for an order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReservationId(pub String);

/// What the shop's systems can answer.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum ShopError {
    /// The card was declined: retrying will not help.
    #[error("card declined")]
    Declined,
    /// A system is down (here: on purpose, with `--fail-at`).
    #[error("{0} is unavailable")]
    Unavailable(String),
}

impl ShopError {
    /// Errors that no retry can fix.
    pub fn is_permanent(&self) -> bool {
        matches!(self, ShopError::Declined)
    }
}

/// Why an order failed.
#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
pub enum OrderError {
    /// A step failed for good.
    #[error(transparent)]
    Step(#[from] ActivityError<ShopError>),
}

/// The shop's systems, shared by the activities (a database pool or an HTTP
/// client in a real program).
struct Shop {
    fail_at: Vec<String>,
    calls: Mutex<u32>,
}

impl Shop {
    fn call(&self, ctx: &ActivityContext, activity: &str, what: &str) -> Result<(), ShopError> {
        let n = {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            *calls += 1;
            *calls
        };
        if self.fail_at.iter().any(|a| a == activity) {
            println!(
                "  [{n:>2}] {activity}: attempt {} failed: system unavailable",
                ctx.attempt()
            );
            return Err(ShopError::Unavailable(activity.to_owned()));
        }
        println!(
            "  [{n:>2}] {activity}: {what}   (key {})",
            ctx.idempotency_key()
        );
        Ok(())
    }
}

/// Charges the order's card; the order id is the provider's idempotency key.
#[activity(
    timeout = "1m",
    retry(max_attempts = 3, initial_interval = "100ms", non_retryable = ShopError::is_permanent),
    compensate = refund
)]
async fn charge_card(ctx: &ActivityContext, order_id: String) -> Result<PaymentId, ShopError> {
    let payment = PaymentId(format!("pay-{order_id}"));
    ctx.resource::<Shop>().call(
        ctx,
        "charge_card",
        &format!("charged {order_id} as {}", payment.0),
    )?;
    Ok(payment)
}

/// Refunds a payment: the compensation of `charge_card`.
#[activity(timeout = "1m", retry(max_attempts = 5, initial_interval = "100ms"))]
async fn refund(ctx: &ActivityContext, payment: PaymentId) -> Result<(), ShopError> {
    ctx.resource::<Shop>()
        .call(ctx, "refund", &format!("refunded {}", payment.0))
}

/// Sets stock aside for the order.
#[activity(
    timeout = "1m",
    retry(max_attempts = 3, initial_interval = "100ms"),
    compensate = release_inventory
)]
async fn reserve_inventory(
    ctx: &ActivityContext,
    order_id: String,
) -> Result<ReservationId, ShopError> {
    let reservation = ReservationId(format!("res-{order_id}"));
    ctx.resource::<Shop>().call(
        ctx,
        "reserve_inventory",
        &format!("reserved {}", reservation.0),
    )?;
    Ok(reservation)
}

/// Puts reserved stock back: the compensation of `reserve_inventory`.
#[activity(timeout = "1m", retry(max_attempts = 5, initial_interval = "100ms"))]
async fn release_inventory(
    ctx: &ActivityContext,
    reservation: ReservationId,
) -> Result<(), ShopError> {
    ctx.resource::<Shop>().call(
        ctx,
        "release_inventory",
        &format!("released {}", reservation.0),
    )
}

/// Hands the order to the carrier.
#[activity(timeout = "1m", retry(max_attempts = 3, initial_interval = "100ms"))]
async fn ship(ctx: &ActivityContext, order_id: String) -> Result<String, ShopError> {
    let tracking = format!("trk-{order_id}");
    ctx.resource::<Shop>().call(
        ctx,
        "ship",
        &format!("shipped {order_id}, tracking {tracking}"),
    )?;
    Ok(tracking)
}

/// The order saga.
#[workflow(queue = "orders")]
pub async fn order(order_id: String) -> Result<String, OrderError> {
    let payment = charge_card(order_id.clone()).await?;
    let reservation = reserve_inventory(order_id.clone()).await?;
    let tracking = ship(order_id).await?;
    Ok(format!(
        "tracking {tracking} (payment {}, reservation {})",
        payment.0, reservation.0
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StoreKind {
    /// Checkpoint to Redis at `--redis-url`.
    Redis,
    /// Keep checkpoints in process memory (no setup; nothing survives the process).
    Memory,
}

/// The order saga, on steadfast.
#[derive(Debug, Parser)]
struct Args {
    /// Where checkpoints are kept.
    #[arg(long, value_enum, default_value = "redis")]
    store: StoreKind,
    /// The Redis server.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Make this activity fail on every attempt (repeat for several).
    #[arg(long, value_parser = ["charge_card", "reserve_inventory", "ship", "refund", "release_inventory"])]
    fail_at: Vec<String>,
    /// The order (and workflow) id; with Redis, a fresh one by default.
    #[arg(long)]
    order_id: Option<String>,
    /// Print the workflow's states and state graph, and exit.
    #[arg(long)]
    describe: bool,
    /// The pre-deploy check: read every run in flight in the store and say
    /// what this build would do with it (resume, migrate, park); exit 1 if
    /// any would park. Nothing is written.
    #[arg(long)]
    check: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STEADFAST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .init();
    match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The states of `order` and its graph, as `docs/order-saga.md` shows them.
pub fn describe() -> String {
    use steadfast::Workflow;
    let info = order::info();
    let mut out = String::from("| state | waits for | stored fields |\n|---|---|---|\n");
    for st in info.states {
        let fields: Vec<String> = st
            .fields
            .iter()
            .map(|(n, t)| format!("`{n}: {t}`"))
            .collect();
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            st.name,
            st.waits_for,
            fields.join(", ")
        ));
    }
    out.push_str(&format!("\n```mermaid\n{}\n```\n", info.mermaid));
    out
}

/// Registers the order saga, with the shop failing at `fail_at`.
pub fn configure(
    builder: steadfast::WorkerBuilder,
    fail_at: Vec<String>,
) -> steadfast::WorkerBuilder {
    builder.register::<order>().resource(Shop {
        fail_at,
        calls: Mutex::new(0),
    })
}

async fn open_store(args: &Args) -> Result<Arc<dyn Store>, ExitCode> {
    match args.store {
        StoreKind::Memory => Ok(Arc::new(MemoryStore::new())),
        StoreKind::Redis => match RedisStore::connect(&args.redis_url).await {
            Ok(store) => {
                // What a crash or failover of Redis can lose, read once at
                // connect: said where people see it, not only logged.
                match store.persistence_report() {
                    Some(r) if r.can_lose_data() => {
                        println!("warning: Redis can lose checkpoints: {r}")
                    }
                    Some(r) => println!("Redis persistence: {r}"),
                    None => {}
                }
                Ok(Arc::new(store))
            }
            Err(e) => {
                eprintln!("error: {e}");
                // Only an unreachable server needs starting; refused
                // credentials or permissions say what to fix themselves.
                if e.is_transient() {
                    eprintln!(
                        "\n  start a Redis:          redis-server --appendonly yes\n  \
                         or point to another:   REDIS_URL=redis://host:port cargo run --example order_saga\n  \
                         or run without Redis:  cargo run --example order_saga -- --store memory"
                    );
                }
                Err(ExitCode::from(2))
            }
        },
    }
}

async fn run(args: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if args.describe {
        print!("{}", describe());
        return Ok(ExitCode::SUCCESS);
    }
    let store = match open_store(&args).await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    if args.check {
        let mut registry = steadfast::Registry::new();
        registry.workflow::<order>();
        let report = steadfast::check::check(&registry, store.as_ref()).await?;
        print!("{report}");
        return Ok(if report.passes() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let order_id = match (&args.order_id, args.store) {
        (Some(id), _) => id.clone(),
        (None, StoreKind::Memory) => "order-42".to_owned(),
        (None, StoreKind::Redis) => format!("order-{}", steadfast::wall_clock_ms() / 1000),
    };
    println!("order saga for {order_id} (store: {:?})", args.store);
    for a in &args.fail_at {
        println!("every attempt of `{a}` will fail");
    }
    let worker = configure(
        Worker::builder_shared(Arc::clone(&store)),
        args.fail_at.clone(),
    )
    .build()?
    .spawn();
    let client = Client::new_shared(Arc::clone(&store));

    println!("\nactivities:");
    let existed = client.describe(&order_id).await?.is_some();
    let run = client.start::<order>(&order_id, order_id.clone()).await?;
    if existed {
        println!(
            "  (none: run `{order_id}` already exists, and the workflow id is its idempotency key)"
        );
    }
    let result = run.result_within(Duration::from_secs(60)).await;

    println!("\ncheckpoints:");
    for h in store.history(run.id()).await? {
        println!(
            "  seq {:>2}  {:<21} {:<13} {}",
            h.seq,
            if h.step.is_empty() { "-" } else { &h.step },
            h.status,
            h.event
        );
    }
    let env = run.describe().await?;
    println!("\nfinal status: {}", env.status());
    let code = match result {
        Ok(summary) => {
            println!("result: {summary}");
            ExitCode::SUCCESS
        }
        Err(RunError::Failed(e)) => {
            println!("the order failed and was compensated: {e}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("the run needs an operator: {e}");
            ExitCode::FAILURE
        }
    };
    worker.shutdown().await?;
    if env.status() == Status::CompensationFailed {
        println!("compensations still to run: {}", env.compensations.len());
    }
    if args.store == StoreKind::Redis {
        println!("\ninspect it with redis-cli (add -h/-p for your server):");
        println!("  redis-cli HGETALL 'steadfast:{{s0}}:wf:{order_id}'");
        println!("  redis-cli XRANGE 'steadfast:{{s0}}:hist:{order_id}' - +");
        println!("or with the steadfast command:");
        println!("  cargo run -p steadfast-cli -- show {order_id}");
        if env.status() == Status::CompensationFailed {
            println!(
                "  cargo run -p steadfast-cli -- resume {order_id} --note \"refund fixed\"   # runs the refund again; a worker finishes it"
            );
        }
        println!("run it again with `--order-id {order_id}`: the same id starts nothing new.");
    }
    Ok(code)
}
