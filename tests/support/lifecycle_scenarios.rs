//! Lifecycle scenarios, each run on the in-memory store and on Redis: the
//! rig's manual clock stands in for days of waiting.

use std::time::Duration;

use steadfast::{
    ChildError, Clock, MissedRuns, RunError, ScheduleOptions, SendError, StartOptions, Status,
    Wait, Work, schedule_run_id,
};

use super::lifecycle::*;
use super::rig::{Rig, eventually};
use super::workflows::{TestError, saga};

const DAY: Duration = Duration::from_secs(86_400);
const RESULT_WAIT: Duration = Duration::from_secs(10);

fn is_timer(e: &steadfast::RunRecord) -> bool {
    matches!(e.wait(), Some(Wait::Timer { .. }))
}

fn is_signal_wait(e: &steadfast::RunRecord) -> bool {
    matches!(e.wait(), Some(Wait::Signal { .. }))
}

// ----- durable sleep ------------------------------------------------------------

/// A seven-day sleep resumes when the clock has moved seven days, not
/// before, and the checkpoint says what the run waits for.
pub async fn durable_sleep_waits_for_the_clock(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<reminder>("remind-ada", "ada".to_owned())
        .await
        .expect("starts");
    let env = rig.wait_for("remind-ada", "its timer", is_timer).await;
    let Some(Wait::Timer { until_ms, step }) = env.wait() else {
        unreachable!()
    };
    assert_eq!(step, "sleep#0");
    let days = (*until_ms as f64 - rig.clock.now_ms() as f64) / DAY.as_millis() as f64;
    assert!(
        (6.99..=7.0).contains(&days),
        "the timer is due in seven days, not {days}"
    );
    assert_eq!(env.status(), Status::Running);

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        rig.journal.count("remind"),
        0,
        "nothing happens before the time"
    );

    rig.clock.advance(7 * DAY);
    let out = run
        .result_within(RESULT_WAIT)
        .await
        .expect("the reminder completes");
    assert_eq!(out, "reminded ada");
    assert_eq!(
        rig.journal.lines(),
        vec!["note scheduled ada", "note remind ada"]
    );
    let history = rig.client.history("remind-ada").await.expect("history");
    assert!(
        history
            .iter()
            .any(|h| h.event.contains("sleep#0 timer fired")),
        "{history:?}"
    );
    rig.stop().await;
}

/// A sleeping run belongs to no worker: every worker can stop, and a new
/// one picks the run up when the time comes.
pub async fn a_sleeping_run_survives_its_worker(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<reminder>("remind-bo", "bo".to_owned())
        .await
        .expect("starts");
    rig.wait_for("remind-bo", "its timer", is_timer).await;
    rig.stop_workers().await;

    rig.clock.advance(8 * DAY);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rig.describe("remind-bo").await.status(),
        Status::Running,
        "no worker, no progress"
    );

    rig.spawn_worker();
    assert_eq!(
        run.result_within(RESULT_WAIT).await.expect("completes"),
        "reminded bo"
    );
    rig.stop().await;
}

// ----- signals -----------------------------------------------------------------------

/// A signal sent before the workflow waits for it is kept, and consumed by
/// the wait.
pub async fn a_signal_sent_early_is_buffered(mut rig: Rig) {
    let run = rig
        .client
        .start::<approval>("approve-1", "o-1".to_owned())
        .await
        .expect("starts");
    // No worker yet: the run has not even started waiting.
    rig.client
        .signal(
            "approve-1",
            Decision {
                approved: true,
                by: "kim".into(),
            },
        )
        .await
        .expect("signal is accepted");
    assert_eq!(
        rig.describe("approve-1").await.signals.len(),
        1,
        "buffered with the run"
    );
    rig.spawn_worker();
    assert_eq!(
        run.result_within(RESULT_WAIT).await.expect("completes"),
        "o-1 approved by kim"
    );
    let env = rig.describe("approve-1").await;
    assert!(
        env.signals.is_empty(),
        "the signal was consumed: {:?}",
        env.signals
    );
    rig.stop().await;
}

/// A signal sent while the workflow waits wakes it.
pub async fn a_signal_wakes_a_waiting_run(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<approval>("approve-2", "o-2".to_owned())
        .await
        .expect("starts");
    rig.wait_for("approve-2", "its signal wait", is_signal_wait)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    rig.client
        .signal(
            "approve-2",
            Decision {
                approved: false,
                by: "lee".into(),
            },
        )
        .await
        .expect("signal is accepted");
    assert_eq!(
        run.result_within(RESULT_WAIT).await.expect("completes"),
        "o-2 rejected by lee"
    );
    rig.stop().await;
}

/// `signal_within` yields `None` once its time has passed.
pub async fn a_signal_wait_times_out(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<approval>("approve-3", "o-3".to_owned())
        .await
        .expect("starts");
    let env = rig
        .wait_for("approve-3", "its signal wait", is_signal_wait)
        .await;
    let Some(Wait::Signal {
        deadline_ms: Some(_),
        name,
        ..
    }) = env.wait()
    else {
        panic!("waits with a deadline: {:?}", env.phase)
    };
    assert_eq!(name, "decision");
    rig.clock.advance(Duration::from_secs(3601));
    assert_eq!(
        run.result_within(RESULT_WAIT).await.expect("completes"),
        "o-3 expired"
    );
    // Too late now.
    match rig
        .client
        .signal(
            "approve-3",
            Decision {
                approved: true,
                by: "kim".into(),
            },
        )
        .await
    {
        Err(SendError::Settled {
            status: Status::Completed,
            ..
        }) => {}
        other => panic!("a settled run takes no signals: {other:?}"),
    }
    rig.stop().await;
}

/// Signals are consumed once each, in the order they were sent.
pub async fn signals_arrive_in_order_once_each(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<collector>("collect", 5)
        .await
        .expect("starts");
    for i in 1..=5 {
        rig.client
            .signal("collect", Item(i * 10))
            .await
            .expect("accepted");
        if i == 2 {
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
    assert_eq!(
        run.result_within(RESULT_WAIT).await.expect("completes"),
        vec![10, 20, 30, 40, 50]
    );
    rig.stop().await;
}

/// Sending to an unknown run, or past the run's buffer bound, fails with a
/// clear error and changes nothing.
pub async fn signal_errors_are_clear(rig: Rig) {
    match rig.client.signal("nobody", Item(1)).await {
        Err(SendError::NotFound(id)) => assert_eq!(id, "nobody"),
        other => panic!("unknown run: {other:?}"),
    }
    // The bound belongs to the run: every sender meets it, whatever its
    // own default.
    rig.client
        .start_with::<collector>(StartOptions::new("full").signal_bound(2), 10)
        .await
        .expect("starts");
    let lenient = rig.client.clone().with_signal_bound(1000);
    rig.client
        .signal("full", Item(1))
        .await
        .expect("first fits");
    lenient.signal("full", Item(2)).await.expect("second fits");
    for sender in [&rig.client, &lenient] {
        match sender.signal("full", Item(3)).await {
            Err(e @ SendError::BufferFull { bound: 2, .. }) => {
                assert!(e.to_string().contains("not consuming them"), "{e}");
            }
            other => panic!("a full buffer refuses: {other:?}"),
        }
    }
    // A client's own bound is the one stored with the runs it starts.
    let strict = rig.client.clone().with_signal_bound(1);
    strict
        .start::<collector>("strict", 10)
        .await
        .expect("starts");
    rig.client
        .signal("strict", Item(1))
        .await
        .expect("first fits");
    assert!(matches!(
        lenient.signal("strict", Item(2)).await,
        Err(SendError::BufferFull { bound: 1, .. })
    ));
    let payloads: Vec<_> = rig
        .describe("full")
        .await
        .signals
        .iter()
        .map(|s| s.payload.clone())
        .collect();
    assert_eq!(payloads, vec![serde_json::json!(1), serde_json::json!(2)]);
    rig.stop().await;
}

// ----- queries -------------------------------------------------------------------------

/// Query values are part of the checkpoint: readable with no worker.
pub async fn queries_read_the_checkpoint(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<collector>("count", 3)
        .await
        .expect("starts");
    rig.client.signal("count", Item(7)).await.expect("accepted");
    rig.wait_for("count", "one item", |e| {
        e.queries.get("count") == Some(&serde_json::json!(1))
    })
    .await;
    rig.stop_workers().await;
    assert_eq!(run.query::<u32>("count").await.expect("reads"), Some(1));
    assert_eq!(run.query::<u32>("missing").await.expect("reads"), None);
    match run.query::<String>("count").await {
        Err(e) => assert!(e.to_string().contains("count"), "{e}"),
        Ok(v) => panic!("a number is not a string: {v:?}"),
    }
    rig.stop().await;
}

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

// ----- activity task queues ------------------------------------------------------------------

/// An activity declared on queue `gpu` runs only on a worker of that queue;
/// with none, the run waits (it does not fail).
pub async fn an_activity_runs_on_its_queue(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<rendering>("frames", 2)
        .await
        .expect("starts");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let env = rig.describe("frames").await;
    assert_eq!(env.status(), Status::Running);
    assert!(
        matches!(env.work(), Some(Work::Activity { queue: Some(q), .. }) if q == "gpu"),
        "{:?}",
        env.phase
    );
    assert_eq!(
        rig.journal.count("render"),
        0,
        "the main worker does not serve gpu"
    );

    let gpu = steadfast::Worker::builder_shared(std::sync::Arc::clone(&rig.store))
        .queue("gpu")
        .activity::<render>()
        .resource(rig.journal.clone())
        .resource(WorkerTag("gpu-1".to_owned()))
        .clock(rig.clock.clone())
        .lease(Duration::from_millis(300))
        .poll_wait(Duration::from_millis(50));
    rig.spawn(gpu);
    let out = run.result_within(RESULT_WAIT).await.expect("completes");
    assert_eq!(out, vec!["frame 0 by gpu-1", "frame 1 by gpu-1"]);
    assert_eq!(rig.journal.count("note rendered 2"), 1);
    rig.stop().await;
}

// ----- cron ---------------------------------------------------------------------------------

/// 2026-11-30 is a Monday; 09:00 in Berlin (CET) is 08:00 UTC.
const MONDAY_0900_BERLIN_MS: u64 = 1_796_025_600_000;

/// A sleeping run holds no worker slot: one worker that drives one run at
/// a time serves other runs while five runs sleep for a week.
pub async fn sleeping_runs_hold_no_worker(mut rig: Rig) {
    let b = rig.builder().concurrency(1);
    rig.spawn(b);
    let sleepers: Vec<String> = (0..5).map(|i| format!("sleeper-{i}")).collect();
    for id in &sleepers {
        rig.client
            .start::<reminder>(id.as_str(), id.clone())
            .await
            .expect("starts");
    }
    for id in &sleepers {
        rig.wait_for(id, "its timer", is_timer).await;
    }
    let busy = rig
        .client
        .start::<long_call>("between-naps", 10)
        .await
        .expect("starts");
    busy.result_within(RESULT_WAIT)
        .await
        .expect("runs while the others sleep");
    rig.clock.advance(8 * DAY);
    for id in &sleepers {
        let out = rig
            .client
            .handle::<reminder>(id.as_str())
            .result_within(RESULT_WAIT)
            .await
            .expect("wakes and completes");
        assert_eq!(out, format!("reminded {id}"));
    }
    rig.stop().await;
}

/// An activity that runs 2.5 times longer than the lease: its worker
/// renews the lease meanwhile, so a second worker never takes the run
/// over, and the activity runs once. (A one-second lease, so that a
/// renewal late by a loaded machine's hiccup does not lose it.)
pub async fn a_long_activity_keeps_its_lease(mut rig: Rig) {
    for _ in 0..2 {
        let b = rig.builder().lease(Duration::from_secs(1));
        rig.spawn(b);
    }
    let run = rig
        .client
        .start::<long_call>("long-1", 2500)
        .await
        .expect("starts");
    run.result_within(RESULT_WAIT).await.expect("completes");
    assert_eq!(
        rig.journal.count("nap 2500 started"),
        1,
        "{:?}",
        rig.journal.lines()
    );
    let history = rig.client.history("long-1").await.expect("history");
    let seqs: Vec<u64> = history.iter().map(|h| h.seq).collect();
    assert_eq!(seqs, vec![0, 1, 2], "{history:#?}");
    rig.stop().await;
}

/// The seed's schedule: `0 9 * * 1` (Mondays 09:00, here in Europe/Berlin),
/// id `weekly-report`, queue `reports`. It fires once per Monday, however
/// many workers watch it, with a run id derived from the firing time.
pub async fn a_weekly_schedule_fires_on_time_once(mut rig: Rig) {
    let week = 7 * DAY;
    rig.clock.set_ms(MONDAY_0900_BERLIN_MS - 3 * 3_600_000);
    let spec = rig
        .client
        .schedule::<report>(
            ScheduleOptions::new("weekly-report", "0 9 * * 1")
                .timezone("Europe/Berlin")
                .queue("reports"),
            "ops".to_owned(),
        )
        .await
        .expect("schedules");
    assert_eq!(spec.next_ms, Some(MONDAY_0900_BERLIN_MS));
    // Two workers of queue `reports`.
    let reports = || rig.builder().queue("reports");
    let (a, b) = (reports(), reports());
    rig.spawn(a);
    rig.spawn(b);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rig.journal.count("note report"), 0, "not yet Monday 09:00");

    rig.clock.set_ms(MONDAY_0900_BERLIN_MS + 1000);
    let first = schedule_run_id("weekly-report", MONDAY_0900_BERLIN_MS);
    let env = rig
        .wait_for(&first, "the first report", |e| {
            e.status() == Status::Completed
        })
        .await;
    assert_eq!(env.workflow, "report");

    rig.clock.advance(week);
    let second = schedule_run_id(
        "weekly-report",
        MONDAY_0900_BERLIN_MS + week.as_millis() as u64,
    );
    rig.wait_for(&second, "the second report", |e| {
        e.status() == Status::Completed
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        rig.journal.count("note report ops"),
        2,
        "{:?}",
        rig.journal.lines()
    );
    let spec = rig
        .client
        .schedules()
        .await
        .expect("lists")
        .into_iter()
        .find(|s| s.id == "weekly-report")
        .expect("kept");
    assert_eq!(spec.runs_started, 2);
    assert_eq!(
        spec.next_ms,
        Some(MONDAY_0900_BERLIN_MS + 2 * week.as_millis() as u64)
    );

    rig.client
        .pause_schedule("weekly-report")
        .await
        .expect("pauses");
    rig.clock.advance(week);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rig.journal.count("note report ops"), 2, "paused");
    assert!(
        rig.client
            .delete_schedule("weekly-report")
            .await
            .expect("deletes")
    );
    assert!(
        !rig.client
            .delete_schedule("weekly-report")
            .await
            .expect("deletes")
    );
    assert!(matches!(
        rig.client.pause_schedule("weekly-report").await,
        Err(steadfast::ClientError::NoSchedule(_))
    ));
    rig.stop().await;
}

/// Firing times missed while no worker ran: run once, run all, or skip.
pub async fn missed_schedule_times_follow_the_policy(mut rig: Rig) {
    rig.clock.set_ms(MONDAY_0900_BERLIN_MS - 3_600_000);
    for (id, missed) in [
        ("once", MissedRuns::RunOnce),
        ("all", MissedRuns::RunAll),
        ("skip", MissedRuns::Skip),
    ] {
        rig.client
            .schedule::<report>(
                ScheduleOptions::new(id, "0 9 * * MON")
                    .timezone("Europe/Berlin")
                    .missed(missed),
                id.to_owned(),
            )
            .await
            .expect("schedules");
    }
    // Three Mondays pass with no worker running.
    rig.clock.advance(3 * 7 * DAY);
    rig.spawn_worker();
    eventually("the schedules to catch up", || async {
        let specs = rig.client.schedules().await.expect("lists");
        specs
            .iter()
            .all(|s| s.next_ms > Some(rig.clock.now_ms()))
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(rig.journal.count("note report once"), 1);
    assert_eq!(rig.journal.count("note report all"), 3);
    assert_eq!(rig.journal.count("note report skip"), 0);
    let last_monday = MONDAY_0900_BERLIN_MS + 2 * 7 * DAY.as_millis() as u64;
    let once = rig.describe(&schedule_run_id("once", last_monday)).await;
    assert_eq!(
        once.status(),
        Status::Completed,
        "run once runs the latest missed time"
    );
    rig.stop().await;
}

/// An invalid cron expression or zone is refused when scheduling.
pub async fn invalid_schedules_are_refused(rig: Rig) {
    let bad = rig
        .client
        .schedule::<report>(
            ScheduleOptions::new("bad", "0 9 * * FUNDAY"),
            "x".to_owned(),
        )
        .await;
    assert!(
        matches!(bad, Err(steadfast::ClientError::Schedule(_))),
        "{bad:?}"
    );
    let zone = rig
        .client
        .schedule::<report>(
            ScheduleOptions::new("bad", "0 9 * * MON").timezone("Mars/Olympus"),
            "x".to_owned(),
        )
        .await
        .expect_err("unknown zone");
    assert!(zone.to_string().contains("Mars/Olympus"), "{zone}");
    assert!(rig.client.schedules().await.expect("lists").is_empty());
    rig.stop().await;
}

// ----- versioning ----------------------------------------------------------------------------

/// A run started by version 1 and resumed by version 2 keeps version 1's
/// path (`ctx.patched` is false for it); runs version 2 starts take the new
/// path. Version 3 changed the waiting state's layout: a version-1 run
/// parks with a reason instead of being misread.
pub async fn in_flight_runs_keep_their_version(mut rig: Rig) {
    let v1 = rig.builder().register::<greeting_v1>();
    rig.spawn(v1);
    let old = rig
        .client
        .start::<greeting_v1>("greet-old", "ann".to_owned())
        .await
        .expect("starts");
    let stale = rig
        .client
        .start::<greeting_v1>("greet-stale", "cy".to_owned())
        .await
        .expect("starts");
    rig.wait_for("greet-old", "its signal wait", is_signal_wait)
        .await;
    rig.wait_for("greet-stale", "its signal wait", is_signal_wait)
        .await;
    rig.stop_workers().await;

    // Deploy version 2.
    let v2 = rig.builder().register::<greeting_v2>();
    rig.spawn(v2);
    let new = rig
        .client
        .start::<greeting_v2>("greet-new", "bea".to_owned())
        .await
        .expect("starts");
    assert_eq!(rig.describe("greet-new").await.patches, vec!["audit"]);
    rig.wait_for("greet-new", "its signal wait", is_signal_wait)
        .await;
    rig.client
        .signal("greet-old", Proceed)
        .await
        .expect("accepted");
    rig.client
        .signal("greet-new", Proceed)
        .await
        .expect("accepted");
    let old_out = old.result_within(RESULT_WAIT).await.expect("completes");
    let new_out = new.result_within(RESULT_WAIT).await.expect("completes");
    assert_eq!((old_out.as_str(), new_out.as_str()), ("v2 ann", "v2 bea"));
    assert_eq!(
        rig.journal.count("note audit ann"),
        0,
        "the old run keeps the old path"
    );
    assert_eq!(
        rig.journal.count("note audit bea"),
        1,
        "the new run takes the new one"
    );
    rig.stop_workers().await;

    // Deploy version 3, whose waiting state holds one more local.
    let v3 = rig.builder().register::<greeting_v3>();
    rig.spawn(v3);
    rig.client
        .signal("greet-stale", Proceed)
        .await
        .expect("accepted");
    match stale.result_within(RESULT_WAIT).await {
        Err(RunError::Parked { reason }) => {
            assert!(reason.contains("signal_proceed#0"), "{reason}");
            assert!(reason.contains("layout"), "{reason}");
        }
        other => panic!("a run of another layout parks: {other:?}"),
    }
    assert_eq!(rig.journal.count("note bye cy"), 0);
    rig.stop().await;
}

/// A saga from the core fixtures still runs on the rig (the clock and the
/// timer loop change nothing for runs that never wait).
pub async fn plain_sagas_are_unaffected(mut rig: Rig) {
    rig.spawn_worker();
    let run = rig
        .client
        .start::<saga>("plain", (vec!["a".to_owned(), "b".to_owned()], false))
        .await
        .expect("starts");
    run.result_within(RESULT_WAIT).await.expect("completes");
    let _ = rig.store.load("plain").await.expect("loads");
    rig.stop().await;
}

/// Calls `$m!(scenario, ..)` with every scenario of this module, so that
/// each store's test file runs all of them.
#[allow(unused_macros)]
macro_rules! every_scenario {
    ($m:ident) => {
        $m!(
            durable_sleep_waits_for_the_clock,
            a_sleeping_run_survives_its_worker,
            sleeping_runs_hold_no_worker,
            a_long_activity_keeps_its_lease,
            a_signal_sent_early_is_buffered,
            a_signal_wakes_a_waiting_run,
            a_signal_wait_times_out,
            signals_arrive_in_order_once_each,
            signal_errors_are_clear,
            queries_read_the_checkpoint,
            cancel_compensates,
            cancel_compensates_a_run_whose_state_does_not_read,
            cancel_stops_a_running_activity,
            terminate_skips_compensations,
            execution_timeout_compensates,
            continue_as_new_keeps_history_small,
            a_child_result_reaches_its_parent,
            cancelling_a_parent_cancels_its_child,
            terminating_a_parent_terminates_its_child,
            a_timed_out_parent_stops_its_child,
            an_execution_timeout_cancels_a_running_activity,
            a_failed_child_is_an_error_for_the_parent,
            an_activity_runs_on_its_queue,
            a_weekly_schedule_fires_on_time_once,
            missed_schedule_times_follow_the_policy,
            invalid_schedules_are_refused,
            in_flight_runs_keep_their_version,
            plain_sagas_are_unaffected,
        );
    };
}
#[allow(unused_imports)]
pub(crate) use every_scenario;
