//! Stopping runs: cancel, terminate, execution timeouts, continue-as-new,
//! and what each does to child runs.

use super::*;

// ----- cancel, terminate, timeout -----------------------------------------------------

/// Cancelling a waiting run runs its compensations; it ends cancelled.
pub async fn cancel_compensates(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<guarded>("g-1", ("seat".to_owned(), 10))
        .await
        .expect("starts");
    rig.wait_for("g-1", "its signal wait", is_signal_wait).await;
    run.cancel("customer changed their mind")
        .await
        .expect("cancel is accepted");
    match run.result_within(RESULT_WAIT).await {
        Err(RunError::Cancelled { reason }) => {
            assert!(reason.contains("changed their mind"), "{reason}")
        }
        other => panic!("expected cancelled: {other:?}"),
    }
    assert_eq!(rig.journal.lines(), vec!["reserve seat", "undo r-seat"]);
    let env = rig.describe("g-1").await;
    assert_eq!(env.status(), Status::Cancelled);
    assert!(env.compensations.is_empty());
    // Settled: more stop requests are refused.
    assert!(matches!(
        run.cancel("again").await,
        Err(SendError::Settled { .. })
    ));
    rig.stop().await;
}

/// A run whose state no longer reads with this code is still cancelled:
/// a stop needs no state, and its compensations run.
pub async fn cancel_compensates_a_run_whose_state_does_not_read(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<guarded>("g-bad", ("seat".to_owned(), 10))
        .await
        .expect("starts");
    rig.wait_for("g-bad", "its signal wait", is_signal_wait)
        .await;
    rig.tamper_field(
        "g-bad",
        "state",
        r#"{"signal_proceed#0":{"reservation":42}}"#,
    );
    run.cancel("give up").await.expect("cancel is accepted");
    match run.result_within(RESULT_WAIT).await {
        Err(RunError::Cancelled { reason }) => assert_eq!(reason, "give up"),
        other => panic!("expected cancelled: {other:?}"),
    }
    assert_eq!(rig.journal.lines(), vec!["reserve seat", "undo r-seat"]);
    rig.stop().await;
}

/// A cancel reaches a run inside a long activity: the activity is dropped,
/// compensations run, and the run ends cancelled in well under the
/// activity's time.
pub async fn cancel_stops_a_running_activity(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<guarded>("g-2", ("bed".to_owned(), 60_000))
        .await
        .expect("starts");
    rig.wait_for("g-2", "its signal wait", is_signal_wait).await;
    run.signal(Proceed).await.expect("accepted");
    eventually("the nap to start", || async {
        (rig.journal.count("nap 60000 started") == 1).then_some(())
    })
    .await;
    let asked = std::time::Instant::now();
    run.cancel("too slow").await.expect("accepted");
    assert!(matches!(
        run.result_within(RESULT_WAIT).await,
        Err(RunError::Cancelled { .. })
    ));
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "took {:?}",
        asked.elapsed()
    );
    assert_eq!(rig.journal.count("nap 60000 finished"), 0);
    assert_eq!(rig.journal.count("undo r-bed"), 1);
    rig.stop().await;
}

/// Terminating stops at once and runs no compensation.
pub async fn terminate_skips_compensations(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<guarded>("g-3", ("car".to_owned(), 10))
        .await
        .expect("starts");
    rig.wait_for("g-3", "its signal wait", is_signal_wait).await;
    run.terminate("operator: stuck order")
        .await
        .expect("accepted");
    match run.result_within(RESULT_WAIT).await {
        Err(RunError::Terminated { reason }) => assert!(reason.contains("stuck order"), "{reason}"),
        other => panic!("expected terminated: {other:?}"),
    }
    assert_eq!(rig.journal.count("undo"), 0);
    let env = rig.describe("g-3").await;
    assert_eq!(env.status(), Status::Terminated);
    assert_eq!(env.compensations.len(), 1, "kept for an operator");
    rig.stop().await;
}

/// Past its execution timeout a run stops, compensates, and ends timed out.
pub async fn execution_timeout_compensates(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start_with::<guarded>(
            StartOptions::new("g-4").execution_timeout(Duration::from_secs(3600)),
            ("room".to_owned(), 10),
        )
        .await
        .expect("starts");
    let env = rig.wait_for("g-4", "its signal wait", is_signal_wait).await;
    assert!(env.deadline_ms.is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rig.describe("g-4").await.status(), Status::Running);
    rig.clock.advance(Duration::from_secs(3601));
    assert!(
        matches!(
            run.result_within(RESULT_WAIT).await,
            Err(RunError::TimedOut)
        ),
        "times out"
    );
    assert_eq!(rig.journal.count("undo r-room"), 1);
    assert_eq!(rig.describe("g-4").await.status(), Status::TimedOut);
    rig.stop().await;
}

// ----- continue-as-new --------------------------------------------------------------------

/// Continue-as-new keeps the id, starts a new generation with a fresh
/// history, and the last generation's result is the run's result.
pub async fn continue_as_new_keeps_history_small(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<countdown>("count-down", (30, 0))
        .await
        .expect("starts");
    let total = run
        .result_within(Duration::from_secs(30))
        .await
        .expect("completes");
    assert_eq!(total, (1..=30).sum::<u64>());
    assert_eq!(rig.journal.count("note tick"), 31);
    let env = rig.describe("count-down").await;
    assert_eq!(env.generation, 30);
    let history = rig.client.history("count-down").await.expect("history");
    assert!(
        history.len() <= 4,
        "each generation starts a fresh history: {history:#?}"
    );
    assert!(
        history
            .iter()
            .any(|h| h.event.contains("continued as new (generation 30)")),
        "{history:#?}"
    );
    rig.stop().await;
}

// ----- children ------------------------------------------------------------------------------

/// A child's result reaches its parent; the child is a run of its own.
pub async fn a_child_result_reaches_its_parent(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<parent>("p-1", ("tv".to_owned(), 10))
        .await
        .expect("starts");
    rig.wait_for("p-1/ship", "the child's signal wait", is_signal_wait)
        .await;
    let child = rig.describe("p-1/ship").await;
    assert_eq!(child.parent.as_deref(), Some("p-1"));
    assert_eq!(child.workflow, "guarded");
    rig.client
        .signal("p-1/ship", Proceed)
        .await
        .expect("accepted");
    assert_eq!(
        run.result_within(RESULT_WAIT).await.expect("completes"),
        "tv shipped with r-tv"
    );
    rig.stop().await;
}

/// Cancelling a parent cancels the child it waits for; both compensate.
pub async fn cancelling_a_parent_cancels_its_child(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<parent>("p-2", ("sofa".to_owned(), 10))
        .await
        .expect("starts");
    rig.wait_for("p-2/ship", "the child's signal wait", is_signal_wait)
        .await;
    run.cancel("order withdrawn").await.expect("accepted");
    assert!(matches!(
        run.result_within(RESULT_WAIT).await,
        Err(RunError::Cancelled { .. })
    ));
    let child = rig
        .wait_for("p-2/ship", "the child to settle", |e| {
            e.status().is_settled()
        })
        .await;
    assert_eq!(child.status(), Status::Cancelled);
    // Both reservations (the parent's and the child's) were undone.
    assert_eq!(rig.journal.count("undo r-sofa"), 2);
    rig.stop().await;
}

/// Terminating a parent terminates the child it waits for; nothing is
/// compensated, in either.
pub async fn terminating_a_parent_terminates_its_child(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<parent>("p-5", ("desk".to_owned(), 10))
        .await
        .expect("starts");
    rig.wait_for("p-5/ship", "the child's signal wait", is_signal_wait)
        .await;
    run.terminate("test data").await.expect("accepted");
    assert!(matches!(
        run.result_within(RESULT_WAIT).await,
        Err(RunError::Terminated { .. })
    ));
    let child = rig
        .wait_for("p-5/ship", "the child to settle", |e| {
            e.status().is_settled()
        })
        .await;
    assert_eq!(child.status(), Status::Terminated);
    assert!(
        child.stop_reason().contains("parent `p-5` terminated"),
        "{child:#?}"
    );
    assert_eq!(rig.journal.count("undo r-desk"), 0);
    rig.stop().await;
}

/// A parent's execution timeout stops the child it waits for too, and
/// both compensate.
pub async fn a_timed_out_parent_stops_its_child(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start_with::<parent>(
            StartOptions::new("p-6").execution_timeout(Duration::from_secs(3600)),
            ("chair".to_owned(), 10),
        )
        .await
        .expect("starts");
    rig.wait_for("p-6/ship", "the child's signal wait", is_signal_wait)
        .await;
    rig.clock.advance(Duration::from_secs(3601));
    assert!(matches!(
        run.result_within(RESULT_WAIT).await,
        Err(RunError::TimedOut)
    ));
    let child = rig
        .wait_for("p-6/ship", "the child to settle", |e| {
            e.status().is_settled()
        })
        .await;
    assert_eq!(child.status(), Status::Cancelled);
    assert!(
        child.stop_reason().contains("parent `p-6` timed out"),
        "{child:#?}"
    );
    assert_eq!(rig.journal.count("undo r-chair"), 2);
    rig.stop().await;
}

/// The execution timeout cuts an activity that would outlast it: the
/// attempt is cancelled when the deadline passes, not when it ends.
pub async fn an_execution_timeout_cancels_a_running_activity(mut rig: Rig) {
    rig.spawn_worker();
    let started = std::time::Instant::now();
    let run = rig
        .client
        .start_with::<long_call>(
            StartOptions::new("late-1").execution_timeout(Duration::from_millis(600)),
            60_000,
        )
        .await
        .expect("starts");
    assert!(matches!(
        run.result_within(RESULT_WAIT).await,
        Err(RunError::TimedOut)
    ));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the one-minute activity was cut at the deadline, not awaited"
    );
    assert_eq!(rig.journal.count("nap 60000 started"), 1);
    assert_eq!(rig.journal.count("nap 60000 finished"), 0);
    rig.stop().await;
}

/// A child that ends badly is an error the parent handles: here it fails,
/// and its compensation runs.
pub async fn a_failed_child_is_an_error_for_the_parent(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<parent>("p-3", ("lamp".to_owned(), 10))
        .await
        .expect("starts");
    rig.wait_for("p-3/ship", "the child's signal wait", is_signal_wait)
        .await;
    rig.client
        .cancel("p-3/ship", "warehouse closed")
        .await
        .expect("accepted");
    match run.result_within(RESULT_WAIT).await {
        Err(RunError::Failed(TestError::Step(m))) => {
            assert!(m.contains("child cancelled: warehouse closed"), "{m}");
        }
        other => panic!("the parent fails: {other:?}"),
    }
    assert_eq!(rig.describe("p-3").await.status(), Status::Failed);
    assert_eq!(rig.journal.count("undo r-lamp"), 2);
    let err: ChildError<TestError> = ChildError::Cancelled("x".into());
    assert_eq!(err.to_string(), "child cancelled: x");
    rig.stop().await;
}
