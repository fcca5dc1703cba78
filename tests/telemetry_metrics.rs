//! The worker's metrics, read from a debugging recorder around in-process
//! runs on the memory store: what is counted, with which labels, and that
//! no label carries a run id.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use steadfast::telemetry::metrics as names;
use support::Harness;
use support::workflows::*;

/// The metrics seen: (name, sorted labels) → value.
type Seen = HashMap<(String, Vec<(String, String)>), DebugValue>;

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    v.sort();
    v
}

fn counter(seen: &Seen, name: &str, pairs: &[(&str, &str)]) -> u64 {
    match seen.get(&(name.to_owned(), labels(pairs))) {
        Some(DebugValue::Counter(n)) => *n,
        _ => 0,
    }
}

#[tokio::test]
async fn runs_are_counted_with_bounded_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // The test runtime has one thread: the worker's tasks run on it, under
    // this recorder.
    let _installed = metrics::set_default_local_recorder(&recorder);
    let h = Harness::start_with(|b| {
        b.timer_poll(Duration::from_millis(10))
            .store_gauges_every(Some(Duration::from_millis(10)))
    });
    let names_in = vec!["a".to_owned(), "b".to_owned()];
    let failed = h
        .client
        .start::<saga>("metrics-saga-1", (names_in, true))
        .await
        .expect("starts")
        .result()
        .await;
    assert!(failed.is_err(), "the saga fails at its end");
    let ok = h
        .client
        .start::<retrying>("metrics-retry-1", (2, false))
        .await
        .expect("starts")
        .result()
        .await
        .expect("succeeds on its third attempt");
    assert_eq!(ok, 3);
    tokio::time::sleep(Duration::from_millis(50)).await;
    h.stop().await;

    let seen: Seen = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _unit, _desc, value)| {
            let key = key.key();
            let mut l: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            l.sort();
            ((key.name().to_owned(), l), value)
        })
        .collect();

    for (name, l) in seen.keys() {
        assert!(name.starts_with("steadfast_"), "{name}");
        for (k, v) in l {
            assert!(
                ["workflow", "activity", "queue", "outcome", "status"].contains(&k.as_str()),
                "{name} has the unbounded label {k}"
            );
            assert!(!v.contains("metrics-"), "{name} has a run id in {k}={v}");
        }
    }
    let saga_ok = |status| {
        counter(
            &seen,
            names::TRANSITIONS,
            &[("workflow", "saga"), ("status", status)],
        )
    };
    assert!(saga_ok("running") >= 4, "{seen:?}");
    assert!(
        saga_ok("compensating") >= 3,
        "entering compensation, then one per compensation but the last"
    );
    assert_eq!(saga_ok("failed"), 1);
    let attempts = |activity, outcome| {
        counter(
            &seen,
            names::ACTIVITY_ATTEMPTS,
            &[
                ("workflow", "saga"),
                ("activity", activity),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(attempts("reserve", "succeeded"), 2);
    assert_eq!(attempts("fail", "failed"), 1);
    assert_eq!(
        counter(
            &seen,
            names::ACTIVITY_FAILURES,
            &[("workflow", "saga"), ("activity", "fail")]
        ),
        1
    );
    let compensations = |activity| {
        counter(
            &seen,
            names::COMPENSATIONS,
            &[
                ("workflow", "saga"),
                ("activity", activity),
                ("outcome", "succeeded"),
            ],
        )
    };
    assert_eq!(compensations("undo"), 2);
    assert_eq!(compensations("cancel_booking"), 1);

    let flaky = |outcome| {
        counter(
            &seen,
            names::ACTIVITY_ATTEMPTS,
            &[
                ("workflow", "retrying"),
                ("activity", "flaky"),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!((flaky("failed"), flaky("succeeded")), (2, 1));
    assert_eq!(
        counter(
            &seen,
            names::ACTIVITY_RETRIES,
            &[("workflow", "retrying"), ("activity", "flaky")]
        ),
        2
    );

    match seen.get(&(
        names::COMMIT_DURATION.to_owned(),
        labels(&[("workflow", "saga")]),
    )) {
        Some(DebugValue::Histogram(samples)) => assert!(samples.len() >= 6, "{samples:?}"),
        other => panic!("no commit latency: {other:?}"),
    }
    match seen.get(&(
        names::ACTIVITY_DURATION.to_owned(),
        labels(&[
            ("workflow", "saga"),
            ("activity", "book"),
            ("outcome", "succeeded"),
        ]),
    )) {
        Some(DebugValue::Histogram(samples)) => assert_eq!(samples.len(), 1),
        other => panic!("no activity latency: {other:?}"),
    }
    // Read on the worker's clock; both runs have settled by now.
    assert!(
        matches!(
            seen.get(&(names::RUNS_IN_FLIGHT.to_owned(), Vec::new())),
            Some(DebugValue::Gauge(_))
        ),
        "{seen:?}"
    );
    assert!(seen.contains_key(&(names::TIMERS_DUE.to_owned(), Vec::new())));
    match seen.get(&(
        names::RUNS_DRIVING.to_owned(),
        labels(&[("queue", "default")]),
    )) {
        Some(DebugValue::Gauge(g)) => assert_eq!(g.into_inner(), 0.0, "every drive ended"),
        other => panic!("no driving gauge: {other:?}"),
    }
}

/// The store-wide gauges on Redis: runs in flight, and the age of the
/// oldest task no worker has been given yet (before the queue's consumer
/// group exists, and after).
#[tokio::test]
async fn redis_reports_runs_in_flight_and_queue_lag() {
    use steadfast::Store;
    let server = support::redis_server::RedisServer::start();
    let store = support::redis_store(&server).await;
    let client = steadfast::Client::new(store.clone());
    let queues = vec!["default".to_owned()];
    let now = || steadfast::wall_clock_ms();

    let empty = store
        .gauges(&queues, now())
        .await
        .expect("reads")
        .expect("reported");
    assert_eq!((empty.runs_in_flight, empty.timers_due), (0, 0));
    assert_eq!(
        empty.queue_lag,
        vec![("default".to_owned(), Duration::ZERO)]
    );

    client
        .start::<retrying>("lag-1", (0, false))
        .await
        .expect("starts");
    tokio::time::sleep(Duration::from_millis(60)).await;
    let waiting = store
        .gauges(&queues, now())
        .await
        .expect("reads")
        .expect("reported");
    assert_eq!(waiting.runs_in_flight, 1);
    assert!(
        waiting.queue_lag[0].1 >= Duration::from_millis(50),
        "{waiting:?}"
    );

    // A worker takes the task: nothing waits any more, though the run is
    // still in flight (its task stays in the stream until it is released).
    let taken = store
        .poll("lag-worker", &queues, 10, Duration::from_millis(100))
        .await
        .expect("polls");
    assert_eq!(taken.len(), 1);
    let delivered = store
        .gauges(&queues, now())
        .await
        .expect("reads")
        .expect("reported");
    assert_eq!(delivered.runs_in_flight, 1);
    assert_eq!(delivered.queue_lag[0].1, Duration::ZERO, "{delivered:?}");

    client
        .start::<retrying>("lag-2", (0, false))
        .await
        .expect("starts");
    tokio::time::sleep(Duration::from_millis(60)).await;
    let again = store
        .gauges(&queues, now())
        .await
        .expect("reads")
        .expect("reported");
    assert_eq!(again.runs_in_flight, 2);
    assert!(
        again.queue_lag[0].1 >= Duration::from_millis(50),
        "{again:?}"
    );
    assert!(
        again.queue_lag[0].1 < Duration::from_secs(5),
        "only the new task waits: {again:?}"
    );
}
