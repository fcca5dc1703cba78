//! Interrupt-everywhere on the in-memory store: crash at every transition,
//! before and after its checkpoint, resume on a fresh worker, and end
//! exactly like the uninterrupted run.

mod support;

use std::sync::Arc;
use std::time::Duration;

use steadfast::testing::InterruptEverywhere;
use steadfast::{MemoryStore, Status, Store};
use support::Journal;
use support::workflows::*;

fn store() -> Arc<dyn Store> {
    Arc::new(MemoryStore::with_reclaim_after(Duration::from_millis(150)))
}

/// Every worker of a test shares the activities' outside world.
fn configure() -> impl Fn(steadfast::WorkerBuilder) -> steadfast::WorkerBuilder + Send + Sync {
    let journal = Journal::default();
    move |b| register(b).resource(journal.clone())
}

#[tokio::test]
async fn branches_and_loops_survive_a_crash_anywhere() {
    let report = InterruptEverywhere::<branchy>::new(store(), 3)
        .configure(configure())
        .lease(Duration::from_millis(150))
        .run()
        .await
        .expect("every interrupted run ends like the uninterrupted one");
    assert_eq!(report.baseline.status, Status::Completed);
    assert!(report.transitions >= 15, "{report:?}");
    assert_eq!(report.scenarios as u64, 2 * report.transitions);
}

#[tokio::test]
async fn compensation_survives_a_crash_anywhere() {
    let names = vec!["a".to_owned(), "b".to_owned()];
    let report = InterruptEverywhere::<saga>::new(store(), (names, true))
        .configure(configure())
        .lease(Duration::from_millis(150))
        .run()
        .await
        .expect("every interrupted run ends like the uninterrupted one");
    assert_eq!(report.baseline.status, Status::Failed);
    let events: Vec<&str> = report
        .baseline
        .transitions
        .iter()
        .map(|t| t.3.as_str())
        .collect();
    assert!(
        events.iter().any(|e| e.contains("compensation undo")),
        "{events:?}"
    );
}

#[tokio::test]
async fn retries_survive_a_crash_anywhere() {
    let report = InterruptEverywhere::<retrying>::new(store(), (2, false))
        .configure(configure())
        .lease(Duration::from_millis(150))
        .run()
        .await
        .expect("every interrupted run ends like the uninterrupted one");
    assert_eq!(report.baseline.output, Some(serde_json::json!(3)));
}

/// Timers and signal timeouts: a crash before or after the transition that
/// starts a wait, or the one its end resumes, changes nothing.
#[tokio::test]
async fn waits_survive_a_crash_anywhere() {
    let journal = Journal::default();
    let report = InterruptEverywhere::<support::lifecycle::dozer>::new(store(), "cat".to_owned())
        .configure(move |b| support::lifecycle::register(b).resource(journal.clone()))
        .lease(Duration::from_millis(150))
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
