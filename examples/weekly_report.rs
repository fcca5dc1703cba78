//! Run: `cargo run --example weekly_report` (Redis at `REDIS_URL`), or `-- --store memory`.
//!
//! A cron schedule: `0 9 * * 1` (Mondays at 09:00, here in Europe/Berlin),
//! schedule id `weekly-report`, task queue `reports`. Each firing starts a
//! run whose id is derived from the firing time
//! (`weekly-report@2026-11-30T08:00:00Z`), so two workers watching the
//! schedule — this program runs two — never start one firing twice. By
//! default a manual clock jumps to each Monday 09:00 so that three weeks
//! pass in seconds; `--cron '*/5 * * * * *'` (six fields: every five
//! seconds) with `--real-time` runs on the wall clock instead. The program
//! lists the schedule, lets it fire `--fires` times, deletes it and exits.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use steadfast::prelude::*;
use steadfast::{Clock, ManualClock, Status, schedule_run_id};

mod common;

/// Why a report failed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("the metrics database is unavailable")]
pub struct ReportError;

/// Compiles and sends the week's report (here: prints it).
#[activity(timeout = "5m", retry(max_attempts = 3))]
async fn send_report(ctx: &ActivityContext, team: String) -> Result<(), ReportError> {
    println!("  [{}] report for {team} sent", ctx.workflow_id());
    Ok(())
}

/// The weekly report.
#[workflow(queue = "reports")]
pub async fn weekly_report(team: String) -> Result<(), ActivityError<ReportError>> {
    send_report(team).await
}

/// A cron schedule firing a few times.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    store: common::StoreArgs,
    /// The cron expression (five fields, or six with seconds first).
    #[arg(long, default_value = "0 9 * * 1")]
    cron: String,
    /// The time zone the expression is read in.
    #[arg(long, default_value = "Europe/Berlin")]
    timezone: String,
    /// How many firings to wait for before deleting the schedule.
    #[arg(long, default_value_t = 3)]
    fires: u32,
    /// Wait for firings on the wall clock instead of jumping to them.
    #[arg(long)]
    real_time: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    common::init_logging();
    common::finish(run(Args::parse()).await)
}

async fn run(args: Args) -> common::Outcome {
    let opened = match args.store.open("weekly_report").await {
        Ok(o) => o,
        Err(code) => return Ok(code),
    };
    let store = opened.store;
    let clock = ManualClock::new();
    let worker = |name: &str| {
        Worker::builder_shared(Arc::clone(&store))
            .register::<weekly_report>()
            .queue("reports")
            .worker_id(name)
            .clock(clock.clone())
            .build()
            .map(|w| w.spawn())
    };
    let workers = [worker("reports-1")?, worker("reports-2")?];
    let client = Client::new_shared(Arc::clone(&store)).with_clock(clock.clone());

    let options = ScheduleOptions::new("weekly-report", &args.cron)
        .timezone(&args.timezone)
        .queue("reports");
    client
        .schedule::<weekly_report>(options, "platform".to_owned())
        .await?;
    for spec in client.schedules().await? {
        println!(
            "schedule {}: `{}` ({}) starts `{}` on queue {}; next: {}",
            spec.id,
            spec.cron,
            spec.timezone,
            spec.workflow,
            spec.queue,
            spec.next_ms.map(common::show_time).unwrap_or_default()
        );
    }
    println!("two workers serve queue `reports`; each firing starts one run:\n");

    for _ in 0..args.fires {
        let spec = weekly(&client).await?;
        let next = spec.next_ms.ok_or("the schedule has no next firing")?;
        if !args.real_time {
            clock.set_ms(next + 200);
        }
        let id = schedule_run_id(&spec.id, next);
        let existed = client.describe(&id).await?.is_some();
        let env = wait_settled(&client, &id, &clock, next).await?;
        println!(
            "firing at {}: run {id} {}{}",
            common::show_time(next),
            env.status(),
            if existed {
                " (it existed already: a firing starts one run, ever)"
            } else {
                ""
            }
        );
    }

    let spec = weekly(&client).await?;
    println!(
        "\nthe schedule started {} runs; deleting it.",
        spec.runs_started
    );
    if let Some(redis) = &opened.redis {
        let cli = common::redis_cli(redis);
        println!(
            "(while it exists: {cli} HGET '{}' weekly-report)",
            redis.schedules_key()
        );
    }
    client.delete_schedule("weekly-report").await?;
    for w in workers {
        w.shutdown().await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The schedule `weekly-report`.
async fn weekly(client: &Client) -> Result<steadfast::ScheduleSpec, Box<dyn std::error::Error>> {
    let found = client
        .schedules()
        .await?
        .into_iter()
        .find(|s| s.id == "weekly-report");
    Ok(found.ok_or("the schedule disappeared")?)
}

/// Waits for the run of one firing to settle (at most a minute past its time).
async fn wait_settled(
    client: &Client,
    id: &str,
    clock: &ManualClock,
    due: u64,
) -> Result<steadfast::RunRecord, Box<dyn std::error::Error>> {
    loop {
        if let Some(env) = client.describe(id).await?
            && env.status() != Status::Running
        {
            return Ok(env);
        }
        if clock.now_ms() > due + 60_000 {
            return Err(format!("run {id} did not finish within a minute of its time").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
