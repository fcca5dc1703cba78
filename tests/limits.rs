//! Bounded input, on the memory store and on Redis: data over the limits
//! parks one run with a readable reason and nothing is lost (the record
//! keeps its last good checkpoint, and the run goes on once the limit is
//! raised); a start or a signal over them is refused before anything is
//! written; a run's signal buffer stops at its bound.

mod support;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use steadfast::core::Limits;
use steadfast::prelude::*;
use steadfast::{ClientError, Phase, SendError, Status, Work};
use support::lifecycle::{Decision, approval};
use support::rig::Rig;

/// The error of the test workflow.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{0}")]
pub struct LimitError(String);

impl From<ActivityError<LimitError>> for LimitError {
    fn from(e: ActivityError<LimitError>) -> Self {
        LimitError(e.to_string())
    }
}

/// `kib` KiB of data.
#[activity]
async fn chunk(kib: usize) -> Result<String, LimitError> {
    Ok("x".repeat(kib * 1024))
}

/// Keeps every chunk it fetched in its state.
#[workflow]
async fn hoard(chunks: u32, kib: usize) -> Result<usize, LimitError> {
    let mut kept: Vec<String> = Vec::new();
    for _round in 0..chunks {
        let c = chunk(kib).await?;
        kept.push(c);
    }
    Ok(kept.iter().map(String::len).sum())
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod memory {$(
            #[tokio::test]
            async fn $name() {
                super::$name(super::Rig::memory()).await;
            }
        )*}
        mod redis {$(
            #[tokio::test]
            async fn $name() {
                super::$name(super::Rig::redis().await).await;
            }
        )*}
    };
}

on_both!(
    a_state_over_the_limit_parks_the_run_and_keeps_its_last_checkpoint,
    an_activity_result_over_the_limit_parks_the_run,
    oversized_starts_and_signals_are_refused,
    a_signal_buffer_stops_at_its_bound,
);

/// Three chunks of 1000 KiB, with the default limits: the first state
/// holds one (under 1 MiB), the next would hold two (about 2 MiB).
async fn a_state_over_the_limit_parks_the_run_and_keeps_its_last_checkpoint(mut rig: Rig) {
    let b = rig.builder().register::<hoard>();
    rig.spawn(b);
    rig.client
        .start::<hoard>("h-1", (3, 1000))
        .await
        .expect("starts");
    let parked = rig
        .wait_for("h-1", "parked", |r| r.status() == Status::Parked)
        .await;
    let reason = parked.reason().unwrap_or_default();
    println!("parked: {reason}");
    assert!(
        reason.starts_with("the state of step `chunk#0` is 2.0 MiB (")
            && reason.contains("over the limit of 1.0 MiB (Limits::state_bytes)")
            && reason.contains("it was not written"),
        "{reason}"
    );
    // The last good checkpoint: one chunk kept, the second one to fetch.
    let Phase::Parked {
        resume_to: Some(last),
        ..
    } = &parked.phase
    else {
        panic!("{:?}", parked.phase)
    };
    let Phase::Running { state, work } = last.as_ref() else {
        panic!("{last:?}")
    };
    assert!(matches!(work, Work::Activity { activity, .. } if activity == "chunk"));
    let kept = state.json["chunk#0"]["kept"]
        .as_array()
        .map(Vec::len)
        .expect("the state keeps its chunks");
    assert_eq!(kept, 1, "{}", state.step);
    let history = rig.client.history("h-1").await.expect("history");
    let last = history.last().expect("entries");
    assert!(
        last.event.starts_with("parked: the state of step"),
        "{last:?}"
    );

    // Nothing was lost: with a higher limit, the run goes on and completes.
    rig.stop_workers().await;
    let b = rig
        .builder()
        .register::<hoard>()
        .limits(Limits::default().state_bytes(8 << 20));
    rig.spawn(b);
    rig.client
        .resume("h-1", "state limit raised to 8 MiB")
        .await
        .expect("resumes");
    let total = rig
        .client
        .handle::<hoard>("h-1")
        .result_within(Duration::from_secs(30))
        .await
        .expect("completes");
    assert_eq!(total, 3 * 1000 * 1024);
    rig.stop().await;
}

async fn an_activity_result_over_the_limit_parks_the_run(mut rig: Rig) {
    let b = rig
        .builder()
        .register::<hoard>()
        .limits(Limits::default().output_bytes(1000));
    rig.spawn(b);
    rig.client
        .start::<hoard>("h-2", (1, 2))
        .await
        .expect("starts");
    let parked = rig
        .wait_for("h-2", "parked", |r| r.status() == Status::Parked)
        .await;
    let reason = parked.reason().unwrap_or_default();
    assert!(
        reason.starts_with("the result of activity `chunk` is 2.0 KiB (")
            && reason.contains("Limits::output_bytes"),
        "{reason}"
    );
    // Still waiting for the first chunk: the result was not fed to the workflow.
    assert_eq!(parked.step(), "chunk#0");
    rig.stop().await;
}

async fn oversized_starts_and_signals_are_refused(mut rig: Rig) {
    rig.spawn_worker();
    let big = "x".repeat(300 * 1024);
    let refused = rig
        .client
        .start::<approval>("too-big", big.clone())
        .await
        .expect_err("an input over 256 KiB is refused");
    let ClientError::TooLarge(over) = &refused else {
        panic!("{refused}")
    };
    assert_eq!(over.limit_name, "workflow_input_bytes");
    assert!(
        refused.to_string().contains("the run was not started"),
        "{refused}"
    );
    assert!(
        rig.client
            .describe("too-big")
            .await
            .expect("reads")
            .is_none()
    );
    let refused = rig
        .client
        .start_with::<approval>(
            StartOptions::new("too-many").signal_bound(1_000_000),
            "o-1".to_owned(),
        )
        .await
        .expect_err("a bound over the limit is refused");
    assert!(refused.to_string().contains("1000000 signals"), "{refused}");

    rig.client
        .start::<approval>("a-1", "o-1".to_owned())
        .await
        .expect("starts");
    let refused = rig
        .client
        .signal(
            "a-1",
            Decision {
                approved: true,
                by: big,
            },
        )
        .await
        .expect_err("a payload over 256 KiB is refused");
    assert!(
        matches!(&refused, SendError::TooLarge(o) if o.limit_name == "signal_payload_bytes"),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("the signal was not sent"),
        "{refused}"
    );
    assert!(rig.describe("a-1").await.signals.is_empty());
    rig.stop().await;
}

async fn a_signal_buffer_stops_at_its_bound(mut rig: Rig) {
    rig.spawn_worker();
    rig.client
        .start_with::<approval>(StartOptions::new("a-2").signal_bound(3), "o-2".to_owned())
        .await
        .expect("starts");
    // `approval` waits for `decision`: other signals wait in its buffer.
    for i in 0..3 {
        rig.client
            .signal_json("a-2", "noise", serde_json::json!(i))
            .await
            .expect("buffered");
    }
    let full = rig
        .client
        .signal_json("a-2", "noise", serde_json::json!(3))
        .await
        .expect_err("the buffer is full");
    assert!(
        matches!(full, SendError::BufferFull { bound: 3, .. }),
        "{full}"
    );
    assert_eq!(rig.describe("a-2").await.signals.len(), 3);
    rig.stop().await;
}

/// Limits raised past the Redis store's own cap
/// (`RedisStoreBuilder::max_decision_bytes`): the store refuses the write
/// before sending it, and the run is parked the same way.
#[tokio::test]
async fn a_decision_over_the_redis_stores_cap_parks_the_run() {
    let server = support::redis_server::RedisServer::start();
    let store = steadfast::RedisStore::builder(server.url())
        .max_decision_bytes(64 * 1024)
        .check_persistence(false)
        .connect()
        .await
        .expect("connects");
    let worker = Worker::builder(store.clone())
        .register::<hoard>()
        .poll_wait(Duration::from_millis(50))
        .build()
        .expect("builds")
        .spawn();
    let client = Client::new(store.clone());
    client
        .start::<hoard>("h-cap", (2, 100))
        .await
        .expect("starts");
    let started = std::time::Instant::now();
    let parked = loop {
        let record = client.describe("h-cap").await.expect("reads");
        if let Some(r) = record.filter(|r| r.status() == Status::Parked) {
            break r;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never parked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let reason = parked.reason().unwrap_or_default();
    assert!(
        reason.contains("over the store's maximum of 65536; nothing was written")
            && reason.contains("max_decision_bytes"),
        "{reason}"
    );
    assert_eq!(parked.step(), "chunk#0");
    worker.shutdown().await.expect("stops");
}
