//! Run: `cargo run --example cancel_order` (Redis at `REDIS_URL`), or `-- --store memory`.
//!
//! A signal with a time window: after charging the card, an order waits up
//! to 30 seconds for a `cancel` signal. Cancelled in time, it returns an
//! error, and the compensation stack refunds the payment (`charge_card`
//! declares `compensate = refund`): the refund runs once, under the key of
//! the compensation, and is retried as a compensation if it fails. Otherwise
//! it ships. Two orders show both outcomes: the first is
//! cancelled by a client (by workflow id), the second's window runs out (on
//! a manual clock moved 30 seconds ahead; `--real-time` waits for real). A
//! `status` query follows each order from the checkpoint, as a client (or
//! `redis-cli`) sees it.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};
use steadfast::ManualClock;
use steadfast::prelude::*;

mod common;

/// Asks an order to stop while it still can.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CancelOrder {
    /// Why.
    pub reason: String,
}

impl Signal for CancelOrder {
    const NAME: &'static str = "cancel";
}

/// What the shop's systems can answer.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{0} is unavailable")]
pub struct ShopError(String);

/// Charges the card; refunded by `refund` if the order fails later.
#[activity(timeout = "1m", retry(max_attempts = 3), compensate = refund)]
async fn charge_card(order_id: String) -> Result<String, ShopError> {
    println!("  {order_id}: charged");
    Ok(format!("pay-{order_id}"))
}

/// Refunds a payment.
#[activity(timeout = "1m", retry(max_attempts = 3))]
async fn refund(payment: String) -> Result<(), ShopError> {
    println!("  {payment}: refunded");
    Ok(())
}

/// Hands the order to the carrier.
#[activity(timeout = "1m", retry(max_attempts = 3))]
async fn ship(order_id: String) -> Result<String, ShopError> {
    println!("  {order_id}: shipped");
    Ok(format!("trk-{order_id}"))
}

/// Why an order did not ship.
#[derive(Debug, Serialize, Deserialize, thiserror::Error)]
pub enum OrderError {
    /// The customer cancelled in time; the payment was refunded by the
    /// compensation of `charge_card`.
    #[error("cancelled ({0})")]
    Cancelled(String),
    /// A step failed for good.
    #[error(transparent)]
    Shop(#[from] ActivityError<ShopError>),
}

/// An order that can be cancelled within 30 seconds of charging.
#[workflow(queue = "orders")]
pub async fn order(ctx: &mut WorkflowContext, order_id: String) -> Result<String, OrderError> {
    ctx.set_query("status", "charging");
    charge_card(order_id.clone()).await?;
    ctx.set_query("status", "cancellable");
    let cancel = ctx
        .signal_within::<CancelOrder>(Duration::from_secs(30))
        .await;
    if let Some(c) = cancel {
        ctx.set_query("status", "cancelled");
        // Do not call `refund` here: `charge_card` declares it as its
        // compensation, and returning an error runs the compensation stack.
        // Calling it as well would refund twice, under two idempotency keys,
        // if this call failed for good and the stack unwound after it.
        return Err(OrderError::Cancelled(c.reason));
    }
    ctx.set_query("status", "shipping");
    let tracking = ship(order_id).await?;
    ctx.set_query("status", "done");
    Ok(format!("shipped, tracking {tracking}"))
}

/// Cancel an order within its window, or let the window pass.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    store: common::StoreArgs,
    /// Wait the 30 seconds for real instead of moving the clock.
    #[arg(long)]
    real_time: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    common::init_logging();
    common::finish(run(Args::parse()).await)
}

/// Waits until the order's `status` query reads `want`.
async fn until_status(
    run: &RunHandle<order>,
    want: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    for _ in 0..500 {
        if run.query::<String>("status").await?.as_deref() == Some(want) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("{} never reached status {want}", run.id()).into())
}

async fn run(args: Args) -> common::Outcome {
    let opened = match args.store.open("cancel_order").await {
        Ok(o) => o,
        Err(code) => return Ok(code),
    };
    let store = opened.store;
    let clock = ManualClock::new();
    let worker = Worker::builder_shared(Arc::clone(&store))
        .register::<order>()
        .clock(clock.clone())
        .timer_poll(Duration::from_millis(100))
        .build()?
        .spawn();
    let client = Client::new_shared(Arc::clone(&store)).with_clock(clock.clone());
    let suffix = common::fresh_suffix();
    let (early, late) = (format!("order-{suffix}-a"), format!("order-{suffix}-b"));
    let start = |id: &str| {
        let options = StartOptions::new(id).execution_timeout(Duration::from_secs(3600));
        client.start_with::<order>(options, id.to_owned())
    };

    println!("two orders, each cancellable for 30 seconds after charging:");
    let a = start(&early).await?;
    let b = start(&late).await?;
    until_status(&a, "cancellable").await?;
    until_status(&b, "cancellable").await?;
    println!(
        "\nstatus queries: {early}: {:?}, {late}: {:?}",
        a.query::<String>("status").await?,
        b.query::<String>("status").await?
    );

    println!("\nthe customer cancels {early} (a signal, by workflow id):");
    client
        .signal(
            &early,
            CancelOrder {
                reason: "changed my mind".into(),
            },
        )
        .await?;
    match a.result_within(Duration::from_secs(30)).await {
        Err(RunError::Failed(OrderError::Cancelled(reason))) => {
            println!("  -> cancelled ({reason}); the compensation stack refunded the payment")
        }
        other => return Err(format!("{early} should have been cancelled: {other:?}").into()),
    }

    if args.real_time {
        println!("\nnobody cancels {late}; waiting out its 30 seconds:");
    } else {
        println!("\nnobody cancels {late}; moving the clock past its 30 seconds:");
        clock.advance(Duration::from_secs(31));
    }
    println!("  -> {}", b.result_within(Duration::from_secs(45)).await?);

    println!(
        "\nstatus queries: {early}: {:?}, {late}: {:?}",
        a.query::<String>("status").await?,
        b.query::<String>("status").await?
    );
    match client
        .signal(
            &late,
            CancelOrder {
                reason: "too late".into(),
            },
        )
        .await
    {
        Err(e) => println!("a cancel sent now is refused: {e}"),
        Ok(()) => return Err("a settled run accepted a signal".into()),
    }
    if let Some(redis) = &opened.redis {
        let cli = common::redis_cli(redis);
        println!(
            "\nread the status with redis-cli:\n  {cli} HGET '{}' query:status",
            redis.run_key(&late)
        );
    }
    worker.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}
