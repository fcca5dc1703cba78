//! How the engine runs activities and compensations: retries counted
//! exactly, timeouts honoured, non-retryable errors not retried,
//! compensations newest first, a failing compensation parks the run.

mod support;

use std::time::{Duration, Instant};

use steadfast::{ClientError, RunError, StartOptions, Status, Store};
use support::Harness;
use support::workflows::*;

#[tokio::test]
async fn retries_until_success_within_the_policy() {
    let h = Harness::start();
    let run = h
        .client
        .start::<retrying>("r-ok", (2, false))
        .await
        .expect("starts");
    // Two failures, then success on the third and last allowed attempt.
    assert_eq!(run.result().await.expect("completes"), 3);
    assert_eq!(h.journal.count("flaky attempt"), 3);
    let history = h.client.history("r-ok").await.expect("history");
    let retries: Vec<_> = history
        .iter()
        .filter(|e| e.event.contains("retrying"))
        .collect();
    assert_eq!(
        retries.len(),
        2,
        "each failed attempt is checkpointed: {history:?}"
    );
    h.stop().await;
}

#[tokio::test]
async fn gives_up_after_max_attempts_exactly() {
    let h = Harness::start();
    let run = h
        .client
        .start::<retrying>("r-fail", (10, false))
        .await
        .expect("starts");
    match run.result().await {
        Err(RunError::Failed(TestError::Step(msg))) => {
            assert!(msg.contains("after 3 attempts"), "{msg}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(h.journal.count("flaky attempt"), 3);
    h.stop().await;
}

#[tokio::test]
async fn non_retryable_errors_are_not_retried() {
    let h = Harness::start();
    let run = h
        .client
        .start::<retrying>("r-perm", (10, true))
        .await
        .expect("starts");
    match run.result().await {
        Err(RunError::Failed(TestError::Step(msg))) => {
            assert!(msg.contains("after 1 attempt:"), "{msg}");
            assert!(msg.contains("permanent"), "{msg}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(h.journal.count("flaky attempt"), 1);
    h.stop().await;
}

#[tokio::test]
async fn timeouts_cancel_the_attempt_and_count_as_failures() {
    let h = Harness::start();
    let started = Instant::now();
    let run = h
        .client
        .start::<slow>("slow", 10_000)
        .await
        .expect("starts");
    match run.result().await {
        Err(RunError::Failed(TestError::Step(msg))) => {
            assert!(msg.contains("timed out after 50ms"), "{msg}");
            assert!(msg.contains("after 2 attempts"), "{msg}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "did not wait for the sleep"
    );
    assert_eq!(h.journal.count("sleepy start"), 2);
    assert_eq!(
        h.journal.count("sleepy end"),
        0,
        "the timed-out attempt was cancelled"
    );
    h.stop().await;
}

#[tokio::test]
async fn compensations_run_newest_first_with_their_arguments() {
    let h = Harness::start();
    let names = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
    let run = h
        .client
        .start::<saga>("saga-fail", (names, true))
        .await
        .expect("starts");
    match run.result().await {
        Err(RunError::Failed(TestError::Step(msg))) => {
            assert!(msg.contains("the last step"), "{msg}")
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    let undo: Vec<String> = h
        .journal
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("undo") || l.starts_with("cancel"))
        .collect();
    assert_eq!(
        undo,
        vec!["cancel ada 200", "undo r-c", "undo r-b", "undo r-a"]
    );
    let env = run.describe().await.expect("describes");
    assert_eq!(env.status(), Status::Failed);
    assert!(env.compensations.is_empty());
    h.stop().await;
}

#[tokio::test]
async fn completed_runs_do_not_compensate() {
    let h = Harness::start();
    let names = vec!["a".to_owned()];
    let run = h
        .client
        .start::<saga>("saga-ok", (names, false))
        .await
        .expect("starts");
    assert_eq!(run.result().await.expect("completes"), vec!["r-a"]);
    assert_eq!(h.journal.count("undo"), 0);
    h.stop().await;
}

#[tokio::test]
async fn a_failing_compensation_parks_the_run_with_what_is_left() {
    let h = Harness::start();
    let names = vec!["a".to_owned(), "sticky".to_owned(), "c".to_owned()];
    let run = h
        .client
        .start::<saga>("saga-stuck", (names, true))
        .await
        .expect("starts");
    match run.result().await {
        Err(RunError::CompensationFailed { error, reason }) => {
            assert!(reason.contains("compensation `undo`"), "{reason}");
            assert!(reason.contains("after 2 attempt"), "{reason}");
            assert!(error.is_some());
        }
        other => panic!("expected a failed compensation, got {other:?}"),
    }
    let env = run.describe().await.expect("describes");
    assert_eq!(env.status(), Status::CompensationFailed);
    // `undo r-c` and `cancel` ran; `undo r-sticky` failed twice; `undo r-a` waits.
    let steps: Vec<&str> = env.compensations.iter().map(|c| c.step.as_str()).collect();
    assert_eq!(steps, vec!["reserve#0", "reserve#0"]);
    assert_eq!(env.compensations[1].input["reservation"], "r-sticky");
    assert_eq!(h.journal.count("undo r-sticky"), 2);
    assert_eq!(h.journal.count("undo r-a"), 0);
    // The compensation that failed for good ran under one idempotency key:
    // its retries repeat the same call, and the unwinding did not start it
    // again under another (a provider deduplicating by key refunds once).
    let keys: std::collections::BTreeSet<String> = h
        .journal
        .lines()
        .into_iter()
        .filter_map(|l| l.strip_prefix("key of undo r-sticky: ").map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), 1, "one key for every attempt: {keys:?}");
    h.stop().await;
}

#[tokio::test]
async fn a_panicking_activity_is_a_failed_attempt() {
    let h = Harness::start();
    let run = h
        .client
        .start::<panicky>("boom", false)
        .await
        .expect("starts");
    match run.result().await {
        Err(RunError::Failed(TestError::Step(msg))) => {
            assert!(msg.contains("panicked: kaboom"), "{msg}")
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(h.journal.count("boom"), 2);
    h.stop().await;
}

#[tokio::test]
async fn a_panicking_workflow_is_parked_with_its_data() {
    let h = Harness::start();
    let run = h
        .client
        .start::<panicky>("wf-panic", true)
        .await
        .expect("starts");
    match run.result().await {
        Err(RunError::Parked { reason }) => {
            assert!(reason.contains("panicked"), "{reason}");
            assert!(reason.contains("note#0"), "{reason}");
        }
        other => panic!("expected a parked run, got {other:?}"),
    }
    let env = run.describe().await.expect("describes");
    assert_eq!(env.status(), Status::Parked);
    assert_eq!(env.step(), "note#0", "the last good checkpoint is kept");
    h.stop().await;
}

#[tokio::test]
async fn the_workflow_id_is_the_idempotency_key() {
    let h = Harness::start();
    let a = h
        .client
        .start::<branchy>("same-id", 1)
        .await
        .expect("starts");
    let b = h
        .client
        .start::<branchy>("same-id", 5)
        .await
        .expect("returns the existing run");
    assert_eq!(a.result().await.expect("completes"), branchy_expected(1));
    assert_eq!(b.result().await.expect("completes"), branchy_expected(1));
    match h
        .client
        .start_with::<branchy>(StartOptions::new("same-id").reject_duplicate(), 2)
        .await
    {
        Err(ClientError::AlreadyStarted { id, .. }) => assert_eq!(id, "same-id"),
        other => panic!("expected AlreadyStarted, got {other:?}"),
    }
    match h.client.start::<hoisting>("same-id", (1, 1)).await {
        Err(ClientError::WrongType { found, .. }) => assert_eq!(found, "branchy"),
        other => panic!("expected WrongType, got {other:?}"),
    }
    let history = h.client.history("same-id").await.expect("history");
    assert_eq!(history.iter().filter(|e| e.event == "created").count(), 1);
    h.stop().await;
}

#[tokio::test]
async fn a_state_that_no_longer_decodes_parks_only_that_run() {
    let h = Harness::start_with(|b| b.concurrency(1));
    // Start a run whose first activity fails a few times, so it sits in a
    // checkpoint we can corrupt; then corrupt it and let a new worker read it.
    h.stop().await;
    let store = steadfast::MemoryStore::new();
    let client = steadfast::Client::new(store.clone());
    client.start::<branchy>("bad", 2).await.expect("starts");
    client.start::<branchy>("good", 2).await.expect("starts");
    assert!(store.tamper_state("bad", serde_json::json!({"start": {"n": "not a number"}})));
    let journal = support::Journal::default();
    let worker = support::workflows::register(steadfast::Worker::builder(store.clone()))
        .resource(journal)
        .build()
        .expect("builds")
        .spawn();
    let bad = client.handle::<branchy>("bad");
    match bad.result().await {
        Err(RunError::Parked { reason }) => {
            assert!(reason.contains("does not decode"), "{reason}");
        }
        other => panic!("expected a parked run, got {other:?}"),
    }
    let env = store.load("bad").await.expect("loads").expect("exists");
    assert_eq!(
        env.phase.state().map(|s| s.json.clone()),
        Some(serde_json::json!({"start": {"n": "not a number"}})),
        "data untouched"
    );
    let good = client.handle::<branchy>("good");
    assert_eq!(good.result().await.expect("completes"), branchy_expected(2));
    worker.shutdown().await.expect("stops");
}

#[tokio::test]
async fn an_unknown_workflow_type_is_parked() {
    let store = steadfast::MemoryStore::new();
    let client = steadfast::Client::new(store.clone());
    client.start::<branchy>("orphan", 1).await.expect("starts");
    let worker = steadfast::Worker::builder(store.clone())
        .register::<hoisting>()
        .queue("default")
        .resource(support::Journal::default())
        .build()
        .expect("builds")
        .spawn();
    match client.handle::<branchy>("orphan").result().await {
        Err(RunError::Parked { reason }) => {
            assert!(reason.contains("`branchy` is not registered"), "{reason}");
        }
        other => panic!("expected a parked run, got {other:?}"),
    }
    worker.shutdown().await.expect("stops");
}
