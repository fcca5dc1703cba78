//! Lifecycle features against a real, private redis-server (one per test):
//! the scenarios of `lifecycle_memory.rs`, plus what only Redis shows —
//! timers and query values that survive a Redis restart, and the fields an
//! operator reads with `redis-cli`.

mod support;

use support::lifecycle_scenarios as scenario;
use support::rig::Rig;

macro_rules! on_redis {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            scenario::$name(Rig::redis().await).await;
        }
    )*};
}

support::lifecycle_scenarios::every_scenario!(on_redis);

// ----- Redis only ---------------------------------------------------------------

use std::time::Duration;

use steadfast::{RunError, SendError, Status, Wait};
use support::lifecycle::*;
use support::redis_server::Durability;

/// Timers, buffered signals and query values are data in Redis: they
/// survive a Redis restart with no worker running.
#[tokio::test]
async fn waits_survive_a_redis_restart() {
    let mut rig = Rig::redis_with(Durability::Always).await;
    rig.spawn_worker();
    let sleeper = rig
        .client
        .start::<reminder>("r-restart", "dee".to_owned())
        .await
        .expect("starts");
    let approver = rig
        .client
        .start::<approval>("a-restart", "o-9".to_owned())
        .await
        .expect("starts");
    rig.wait_for("r-restart", "its timer", |e| {
        matches!(e.wait(), Some(Wait::Timer { .. }))
    })
    .await;
    rig.wait_for("a-restart", "its signal wait", |e| {
        matches!(e.wait(), Some(Wait::Signal { .. }))
    })
    .await;
    rig.stop_workers().await;
    rig.client
        .signal(
            "a-restart",
            Decision {
                approved: true,
                by: "eve".into(),
            },
        )
        .await
        .expect("accepted");

    rig.restart_redis();
    let env = rig.describe("a-restart").await;
    assert_eq!(env.signals.len(), 1, "the buffered signal survived");
    assert_eq!(
        sleeper.query::<String>("status").await.expect("reads"),
        Some("sleeping".to_owned())
    );

    rig.clock.advance(Duration::from_secs(8 * 86_400));
    rig.spawn_worker();
    assert_eq!(
        sleeper
            .result_within(Duration::from_secs(10))
            .await
            .expect("completes"),
        "reminded dee"
    );
    assert_eq!(
        approver
            .result_within(Duration::from_secs(10))
            .await
            .expect("completes"),
        "o-9 approved by eve"
    );
    rig.stop().await;
}

/// What a waiting run looks like to an operator with `redis-cli`.
#[tokio::test]
async fn operators_see_waits_and_queries_in_redis_cli() {
    let mut rig = Rig::redis().await;
    rig.spawn_worker();
    rig.client
        .start::<reminder>("r-cli", "flo".to_owned())
        .await
        .expect("starts");
    let env = rig
        .wait_for("r-cli", "its timer", |e| {
            matches!(e.wait(), Some(Wait::Timer { .. }))
        })
        .await;
    let Some(Wait::Timer { until_ms, .. }) = env.wait().cloned() else {
        unreachable!()
    };
    let (server, store) = rig.redis_parts().expect("a Redis rig");
    let key = store.run_key("r-cli");
    assert_eq!(
        server.cli(&["HGET", &key, "query:status"]).trim(),
        "\"sleeping\""
    );
    let waiting = server.cli(&["HGET", &key, "waiting"]);
    assert!(waiting.trim().starts_with("timer:20"), "{waiting}");
    assert_eq!(server.cli(&["HGET", &key, "step"]).trim(), "sleep#0");
    // Timer members are `<queue>\n<run id>`.
    let score = server.cli(&["ZSCORE", &store.timers_key("r-cli"), "default\nr-cli"]);
    assert_eq!(score.trim().parse::<u64>().expect("a time"), until_ms);

    rig.client
        .start::<collector>("c-cli", 3)
        .await
        .expect("starts");
    rig.wait_for("c-cli", "its signal wait", |e| {
        matches!(e.wait(), Some(Wait::Signal { .. }))
    })
    .await;
    rig.stop_workers().await;
    rig.client.signal("c-cli", Item(4)).await.expect("accepted");
    let (server, store) = rig.redis_parts().expect("a Redis rig");
    let buffered = server.cli(&["LRANGE", &store.signals_key("c-cli"), "0", "-1"]);
    assert!(
        buffered.contains("\"item\"") && buffered.contains("\"payload\":4"),
        "{buffered}"
    );
    assert_eq!(
        server
            .cli(&["HGET", &store.run_key("c-cli"), "waiting"])
            .trim(),
        "signal:item"
    );
    rig.stop().await;
}

/// A stop request or a buffered signal that does not read parks that run,
/// with the field named in the reason; other runs go on.
#[tokio::test]
async fn corrupt_messages_park_the_run_with_a_reason() {
    let mut rig = Rig::redis().await;
    rig.spawn_worker();
    let bad_stop = rig
        .client
        .start::<collector>("bad-stop", 2)
        .await
        .expect("starts");
    let bad_signal = rig
        .client
        .start::<collector>("bad-signal", 2)
        .await
        .expect("starts");
    let good = rig
        .client
        .start::<collector>("good", 1)
        .await
        .expect("starts");
    for id in ["bad-stop", "bad-signal", "good"] {
        rig.wait_for(id, "its signal wait", |e| {
            matches!(e.wait(), Some(Wait::Signal { .. }))
        })
        .await;
    }
    {
        let (server, store) = rig.redis_parts().expect("a Redis rig");
        server.cli(&["HSET", &store.run_key("bad-stop"), "interrupt", "{not json"]);
        server.cli(&["RPUSH", &store.signals_key("bad-signal"), "garbage"]);
    }
    // A run whose record does not read takes no message; the sender is told,
    // and the run is woken so that a worker parks it.
    match rig.client.signal("bad-stop", Item(1)).await {
        Err(e @ SendError::Unreadable { .. }) => {
            assert!(e.to_string().contains("interrupt"), "{e}")
        }
        other => panic!("a message to an unreadable run: {other:?}"),
    }
    rig.client
        .signal("bad-signal", Item(1))
        .await
        .expect("accepted");
    rig.client.signal("good", Item(1)).await.expect("accepted");

    for (run, field) in [(&bad_stop, "interrupt"), (&bad_signal, "signal")] {
        match run.result_within(Duration::from_secs(10)).await {
            Err(RunError::Parked { reason }) => assert!(reason.contains(field), "{reason}"),
            other => panic!("{} parks: {other:?}", run.id()),
        }
    }
    assert_eq!(
        good.result_within(Duration::from_secs(10))
            .await
            .expect("completes"),
        vec![1]
    );
    assert_eq!(rig.describe("bad-stop").await.status(), Status::Parked);
    rig.stop().await;
}
