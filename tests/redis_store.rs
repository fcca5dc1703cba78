//! The Redis store against a real, private redis-server: runs, fencing,
//! idempotent starts, records that cannot be read, persistence settings,
//! round trips per transition.

mod support;

use std::time::Duration;
use steadfast::AdminStore as _;

use steadfast::{ClientError, RunError, ScheduleStore, StartOptions, Status, Store, StoreError};
use support::redis_server::{Durability, RedisServer};
use support::workflows::*;
use support::{RedisHarness, redis_store};

#[tokio::test]
async fn workflows_run_to_completion_on_redis() {
    let server = RedisServer::start();
    let h = RedisHarness::start(&server).await;
    for n in 0..4u64 {
        let run = h
            .client
            .start::<branchy>(format!("b-{n}"), n)
            .await
            .expect("starts");
        assert_eq!(run.result().await.expect("completes"), branchy_expected(n));
    }
    let names = vec!["a".to_owned(), "b".to_owned()];
    let run = h
        .client
        .start::<saga>("saga", (names, true))
        .await
        .expect("starts");
    assert!(run.result().await.is_err());
    let env = run.describe().await.expect("describes");
    assert_eq!(env.status(), Status::Failed);
    assert_eq!(h.journal.count("undo"), 2);
    h.stop().await;
}

#[tokio::test]
async fn the_workflow_id_starts_a_run_once() {
    let server = RedisServer::start();
    let store = redis_store(&server).await;
    let client = steadfast::Client::new(store.clone());
    client.start::<branchy>("once", 1).await.expect("starts");
    client
        .start::<branchy>("once", 9)
        .await
        .expect("returns the existing run");
    let env = store.load("once").await.expect("loads").expect("exists");
    assert_eq!(env.input, serde_json::json!(1));
    match client
        .start_with::<branchy>(StartOptions::new("once").reject_duplicate(), 2)
        .await
    {
        Err(ClientError::AlreadyStarted { id, status, .. }) => {
            assert_eq!(id, "once");
            assert_eq!(status, Status::Running);
        }
        other => panic!("expected AlreadyStarted, got {other:?}"),
    }
    let tasks = server.cli(&["XLEN", &store.task_key("once", "default")]);
    assert_eq!(tasks.trim(), "1", "one task was queued");
}

#[tokio::test]
async fn records_that_cannot_be_read_park_only_their_run() {
    let server = RedisServer::start();
    let store = redis_store(&server).await;
    let client = steadfast::Client::new(store.clone());
    for id in [
        "good",
        "bad-json",
        "bad-state",
        "bad-pending",
        "bad-type",
        "bad-history",
    ] {
        client.start::<branchy>(id, 1).await.expect("starts");
    }
    let key = |id: &str| store.run_key(id);
    server.cli(&["HSET", &key("bad-json"), "state", "{not json"]);
    server.cli(&[
        "HSET",
        &key("bad-state"),
        "state",
        r#"{"start":{"n":"one"}}"#,
    ]);
    server.cli(&[
        "HSET",
        &key("bad-pending"),
        "pending",
        r#"{"kind":"teleport"}"#,
    ]);
    server.cli(&["HSET", &key("bad-type"), "workflow", "no_such_workflow"]);
    server.cli(&["XADD", &store.history_key("bad-history"), "*", "seq", "x"]);

    let h = RedisHarness::start(&server).await;
    let reason = |id: &'static str| {
        let client = h.client.clone();
        async move {
            match client.handle::<branchy>(id).result().await {
                Err(RunError::Parked { reason }) => reason,
                other => panic!("{id}: expected a parked run, got {other:?}"),
            }
        }
    };
    assert!(
        reason("bad-json")
            .await
            .contains("field `state` is not JSON")
    );
    assert!(
        reason("bad-state")
            .await
            .contains("state `start` does not decode")
    );
    assert!(
        reason("bad-pending")
            .await
            .contains("field `pending` does not decode")
    );
    match h.client.handle::<branchy>("bad-type").result().await {
        Err(RunError::Client(ClientError::WrongType { found, .. })) => {
            assert_eq!(found, "no_such_workflow")
        }
        other => panic!("expected the stored type to be reported, got {other:?}"),
    }
    let parked = store
        .load("bad-type")
        .await
        .expect("loads")
        .expect("exists");
    assert_eq!(parked.status(), Status::Parked);
    assert!(
        parked
            .reason()
            .unwrap_or_default()
            .contains("`no_such_workflow` is not registered")
    );

    // The parked run's data is as the operator left it.
    assert_eq!(
        server.cli(&["HGET", &key("bad-json"), "state"]).trim(),
        "{not json"
    );
    // Every other run went on.
    assert_eq!(
        h.client
            .handle::<branchy>("good")
            .result()
            .await
            .expect("completes"),
        branchy_expected(1)
    );
    assert_eq!(
        h.client
            .handle::<branchy>("bad-history")
            .result()
            .await
            .expect("completes"),
        branchy_expected(1)
    );
    // A malformed history entry is named when the history is read.
    match h.client.history("bad-history").await {
        Err(ClientError::Store(StoreError::Corrupt { reason, .. })) => {
            assert!(reason.contains("history field"), "{reason}")
        }
        other => panic!("expected a corrupt history, got {other:?}"),
    }
    let attention = store
        .list_runs(steadfast::RunList::Attention, usize::MAX)
        .await
        .expect("lists");
    for id in ["bad-json", "bad-state", "bad-pending", "bad-type"] {
        assert!(attention.contains(&id.to_owned()), "{id} in {attention:?}");
    }
    h.stop().await;
}

#[tokio::test]
async fn persistence_settings_are_read_at_connect_and_judged() {
    let volatile = RedisServer::start_with(Durability::None);
    let store = redis_store(&volatile).await;
    let report = store
        .persistence_report()
        .expect("read when the store connected");
    assert!(report.can_lose_data(), "{report}");
    assert!(
        report
            .to_string()
            .contains("a restart loses every checkpoint"),
        "{report}"
    );
    // Snapshots only, and fsync every second, can lose data too.
    volatile.cli(&["CONFIG", "SET", "save", "3600 1"]);
    let report = store.persistence().await.expect("reads settings");
    assert!(report.can_lose_data(), "{report}");
    assert!(
        report.to_string().contains("since the last snapshot"),
        "{report}"
    );
    let everysec = RedisServer::start_with(Durability::EverySec);
    let report = redis_store(&everysec)
        .await
        .persistence()
        .await
        .expect("reads");
    assert!(report.can_lose_data(), "{report}");
    assert!(
        report.to_string().contains("about the last second"),
        "{report}"
    );
    let durable = RedisServer::start_with(Durability::Always);
    let store = redis_store(&durable).await;
    let report = store.persistence_report().expect("read at connect");
    assert!(!report.can_lose_data(), "{report}");
    assert!(
        report.to_string().contains("loses nothing acknowledged"),
        "{report}"
    );
}

#[tokio::test]
async fn a_required_durability_refuses_servers_below_it() {
    use steadfast::RedisStore;
    use steadfast::redis_connection::{DurabilityFloor, RiskOfLoss};
    let on_disk = DurabilityFloor::crash_loses_at_most(RiskOfLoss::Nothing);
    let everysec = RedisServer::start_with(Durability::EverySec);
    let e = RedisStore::builder(everysec.url())
        .require(on_disk)
        .connect()
        .await
        .expect_err("appendfsync everysec can lose the last second");
    assert!(matches!(e, StoreError::Misconfigured(_)), "{e:?}");
    assert!(!e.is_transient());
    let text = e.to_string();
    assert!(
        text.contains("less durable than required")
            && text.contains("appendfsync everysec")
            && text.contains("about the last second"),
        "{text}"
    );
    // Refused even when the connect-time report is turned off.
    let e = RedisStore::builder(everysec.url())
        .check_persistence(false)
        .require(on_disk)
        .connect()
        .await
        .expect_err("the floor reads the settings itself");
    assert!(matches!(e, StoreError::Misconfigured(_)), "{e:?}");
    let always = RedisServer::start_with(Durability::Always);
    RedisStore::builder(always.url())
        .require(on_disk)
        .connect()
        .await
        .expect("appendfsync always meets the floor");

    // A replica floor: refused alone, met once a replica follows.
    let one_replica = DurabilityFloor::crash_loses_at_most(RiskOfLoss::Everything).with_replicas(1);
    let master = RedisServer::start();
    let e = RedisStore::builder(master.url())
        .require(one_replica)
        .connect()
        .await
        .expect_err("no replica");
    assert!(
        e.to_string().contains("0 replica(s) connected, 1 required"),
        "{e}"
    );
    let replica = RedisServer::start();
    replica.cli(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !master
        .cli(&["INFO", "replication"])
        .contains("connected_slaves:1")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the replica never connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    RedisStore::builder(master.url())
        .require(one_replica)
        .connect()
        .await
        .expect("one replica meets the floor");
}

#[tokio::test]
async fn one_round_trip_per_transition_while_a_worker_holds_a_run() {
    let server = RedisServer::start();
    // Separate stores, so the worker's round trips are counted on their own.
    let worker_store = redis_store(&server).await;
    let client_store = redis_store(&server).await;
    let worker = register(steadfast::Worker::builder(worker_store.clone()))
        .resource(support::Journal::default())
        .lease(Duration::from_secs(5))
        // Nothing on a clock during the count: no timer or schedule sweeps,
        // no gauge reads, no poll that times out empty. On a slow machine
        // those add round trips by the second, not by the transition.
        .timer_poll(Duration::from_secs(3600))
        .store_gauges_every(None)
        .poll_wait(Duration::from_secs(60))
        .build()
        .expect("builds")
        .spawn();
    let client = steadfast::Client::new(client_store.clone());
    client
        .start::<branchy>("warm", 6)
        .await
        .expect("starts")
        .result()
        .await
        .expect("completes");

    let (worker_before, client_before) = (worker_store.round_trips(), client_store.round_trips());
    let runs = 20u64;
    let mut transitions = 0u64;
    for i in 0..runs {
        let id = format!("rt-{i}");
        client
            .start::<branchy>(&id, 6)
            .await
            .expect("starts")
            .result()
            .await
            .expect("completes");
        transitions += client.history(&id).await.expect("history").len() as u64 - 1;
    }
    let worker_trips = worker_store.round_trips() - worker_before;
    let client_trips = client_store.round_trips() - client_before - runs; // minus the history reads above
    println!(
        "{runs} runs, {transitions} transitions ({} per run): worker {worker_trips} round trips \
         ({:.2} per transition: one commit each, plus a poll and an acquire per run); client {client_trips} \
         ({:.1} per run: start and wait)",
        transitions / runs,
        worker_trips as f64 / transitions as f64,
        client_trips as f64 / runs as f64,
    );
    // One commit per transition while the worker holds the run, plus, per
    // run, at most a poll (shared when batched) and an acquire, plus a few
    // for a poll in flight at either end of the count and a lease renewal
    // on a slow machine. A second round trip per transition would be 400.
    assert!(
        worker_trips <= transitions + 2 * runs + 10,
        "{worker_trips} round trips for {transitions} transitions"
    );
    worker.shutdown().await.expect("stops");
}

/// Listing due schedules takes two reads; a worker that fires a schedule
/// between them stores its next, future firing time. A spec read in that
/// state is not due: firing it would start next week's run now. The state
/// is set up by hand here: the due index says "due", the spec says "later".
#[tokio::test]
async fn a_schedule_advanced_between_two_reads_is_not_due() {
    let server = RedisServer::start();
    let store = redis_store(&server).await;
    let client = steadfast::Client::new(store.clone());
    let spec = client
        .schedule::<branchy>(steadfast::ScheduleOptions::new("weekly", "0 9 * * 1"), 1)
        .await
        .expect("schedules");
    let now = steadfast::wall_clock_ms();
    assert!(spec.next_ms.is_some_and(|n| n > now));
    assert!(
        store
            .due_schedules(now, 10)
            .await
            .expect("lists")
            .is_empty()
    );

    server.cli(&["ZADD", "steadfast:{sched}:due", "0", "weekly"]);
    let due = store.due_schedules(now, 10).await.expect("lists");
    assert!(
        due.is_empty(),
        "a spec due later was listed as due: {due:?}"
    );
}
