//! Run: `cargo run --example reminder` (Redis at `REDIS_URL`), or `-- --store memory`.
//!
//! Durable sleep: a sign-up workflow sends a welcome mail, sleeps **seven
//! days**, then sends a reminder. While it sleeps the run is only data — a
//! checkpoint and an entry in a timer set — and no worker holds it: this
//! program stops its worker, moves a manual clock seven days ahead (the
//! same time skipping the tests use; see `docs/testing.md`), starts a new
//! worker, and the run wakes up and finishes.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use steadfast::prelude::*;
use steadfast::{Clock, ManualClock, Wait};

mod common;

const WEEK: Duration = Duration::from_secs(7 * 86_400);

/// Why sending mail failed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("mail server unavailable")]
pub struct MailError;

/// Sends a mail (here: prints it, with the time on the workflow's clock).
#[activity(timeout = "30s", retry(max_attempts = 3, initial_interval = "200ms"))]
async fn send_mail(ctx: &ActivityContext, to: String, subject: String) -> Result<(), MailError> {
    let clock = ctx.resource::<ManualClock>();
    println!(
        "  mail to {to}: \"{subject}\"   (at {})",
        common::show_time(clock.now_ms())
    );
    Ok(())
}

/// Welcomes a new user, and reminds them a week later.
#[workflow]
pub async fn signup(
    ctx: &mut WorkflowContext,
    email: String,
) -> Result<(), ActivityError<MailError>> {
    ctx.set_query("status", "welcomed");
    send_mail(email.clone(), "Welcome!".to_owned()).await?;
    ctx.set_query("status", "waiting a week");
    ctx.sleep(WEEK).await;
    send_mail(email, "Have you tried the new dashboard?".to_owned()).await?;
    ctx.set_query("status", "reminded");
    Ok(())
}

/// Durable sleep: a week-long timer, skipped with a manual clock.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    store: common::StoreArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    common::init_logging();
    common::finish(run(Args::parse()).await)
}

async fn run(args: Args) -> common::Outcome {
    let opened = match args.store.open("reminder").await {
        Ok(o) => o,
        Err(code) => return Ok(code),
    };
    let store = opened.store;
    let clock = ManualClock::new();
    let worker = || {
        Worker::builder_shared(Arc::clone(&store))
            .register::<signup>()
            .resource(clock.clone())
            .clock(clock.clone())
            .timer_poll(Duration::from_millis(100))
            .build()
    };
    let client = Client::new_shared(Arc::clone(&store)).with_clock(clock.clone());
    let id = format!("signup-{}", common::fresh_suffix());

    println!("starting {id}:");
    let first = worker()?.spawn();
    let run = client
        .start::<signup>(&id, "ada@example.com".to_owned())
        .await?;
    let env = loop {
        let env = run.describe().await?;
        if matches!(env.wait(), Some(Wait::Timer { .. })) {
            break env;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    first.shutdown().await?;
    let Some(Wait::Timer { until_ms, .. }) = env.wait().cloned() else {
        return Err("the run is not sleeping".into());
    };
    println!(
        "\nthe run sleeps until {}; its worker has stopped.",
        common::show_time(until_ms)
    );
    println!(
        "status query (from the checkpoint, no worker running): {:?}",
        run.query::<String>("status").await?
    );
    if let Some(redis) = &opened.redis {
        let cli = common::redis_cli(redis);
        println!("in Redis:");
        println!("  {cli} HGET '{}' waiting", redis.run_key(&id));
        println!(
            "  {cli} ZSCORE '{}' $'{}\\n{id}'",
            redis.timers_key(&id),
            env.queue
        );
    }

    println!("\nskipping the clock seven days ahead, and starting a new worker:");
    clock.advance(WEEK);
    let second = worker()?.spawn();
    run.result_within(Duration::from_secs(30)).await?;
    second.shutdown().await?;
    println!(
        "\nfinal status: {}; status query: {:?}",
        run.describe().await?.status(),
        run.query::<String>("status").await?
    );
    Ok(ExitCode::SUCCESS)
}
