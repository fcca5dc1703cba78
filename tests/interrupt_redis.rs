//! Interrupt-everywhere on Redis: the same crash-at-every-transition test as
//! on the in-memory store, against a real, private redis-server.

mod support;

use std::sync::Arc;
use std::time::Duration;

use steadfast::testing::InterruptEverywhere;
use steadfast::{RedisStore, Status, Store};
use support::Journal;
use support::redis_server::RedisServer;
use support::workflows::*;

async fn store(server: &RedisServer) -> Arc<dyn Store> {
    Arc::new(
        RedisStore::builder(server.url())
            .reclaim_after(Duration::from_millis(200))
            .check_persistence(false)
            .connect()
            .await
            .expect("connects"),
    )
}

fn configure() -> impl Fn(steadfast::WorkerBuilder) -> steadfast::WorkerBuilder + Send + Sync {
    let journal = Journal::default();
    move |b| register(b).resource(journal.clone())
}

#[tokio::test]
async fn branches_and_loops_survive_a_crash_anywhere_on_redis() {
    let server = RedisServer::start();
    let report = InterruptEverywhere::<branchy>::new(store(&server).await, 3)
        .configure(configure())
        .lease(Duration::from_millis(200))
        .run()
        .await
        .expect("every interrupted run ends like the uninterrupted one");
    assert_eq!(report.baseline.status, Status::Completed);
    assert!(report.transitions >= 15, "{report:?}");
}

#[tokio::test]
async fn compensation_survives_a_crash_anywhere_on_redis() {
    let server = RedisServer::start();
    let names = vec!["a".to_owned(), "b".to_owned()];
    let report = InterruptEverywhere::<saga>::new(store(&server).await, (names, true))
        .configure(configure())
        .lease(Duration::from_millis(200))
        .run()
        .await
        .expect("every interrupted run ends like the uninterrupted one");
    assert_eq!(report.baseline.status, Status::Failed);
}

#[tokio::test]
async fn retries_survive_a_crash_anywhere_on_redis() {
    let server = RedisServer::start();
    let report = InterruptEverywhere::<retrying>::new(store(&server).await, (2, false))
        .configure(configure())
        .lease(Duration::from_millis(200))
        .run()
        .await
        .expect("every interrupted run ends like the uninterrupted one");
    assert_eq!(report.baseline.output, Some(serde_json::json!(3)));
}

/// Timers and signal timeouts: a crash before or after the transition that
/// starts a wait, or the one its end resumes, changes nothing.
#[tokio::test]
async fn waits_survive_a_crash_anywhere_on_redis() {
    let server = RedisServer::start();
    let journal = Journal::default();
    let report = InterruptEverywhere::<support::lifecycle::dozer>::new(
        store(&server).await,
        "cat".to_owned(),
    )
    .configure(move |b| support::lifecycle::register(b).resource(journal.clone()))
    .lease(Duration::from_millis(200))
    .run()
    .await
    .expect("every interrupted run ends like the uninterrupted one");
    assert_eq!(report.baseline.status, Status::Completed);
    let events: Vec<&str> = report
        .baseline
        .transitions
        .iter()
        .map(|t| t.3.as_str())
        .collect();
    assert!(
        events.iter().any(|e| e.contains("sleep#0 timer fired")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.contains("gave up waiting for signal item")),
        "{events:?}"
    );
    assert_eq!(report.scenarios as u64, 2 * report.transitions);
}
