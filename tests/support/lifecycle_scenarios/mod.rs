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

mod schedules_and_queues;
mod stops;

// Not every test binary that links the support runs the scenarios.
#[allow(unused_imports)]
pub use schedules_and_queues::*;
#[allow(unused_imports)]
pub use stops::*;

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
