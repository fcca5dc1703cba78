//! Activity task queues, leases and worker slots, schedules, versions.

use super::*;

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
