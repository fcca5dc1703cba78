//! Operator repair: a run that stopped for an operator — a compensation that
//! failed for good, or a run parked because its record no longer read — is
//! put back to work with `Client::resume` once the cause is fixed, and goes
//! on from its checkpoint with nothing lost and nothing run twice.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use steadfast::AdminStore as _;

use steadfast::prelude::*;
use steadfast::{ResumeError, Status};
use support::Journal;
use support::rig::Rig;
use support::workflows::TestError;

/// Whether the warehouse system that releases stock is down.
#[derive(Clone, Default)]
struct WarehouseDown(Arc<AtomicBool>);

impl WarehouseDown {
    fn set(&self, down: bool) {
        self.0.store(down, Ordering::SeqCst);
    }
}

#[activity(retry(max_attempts = 1), compensate = release_stock)]
async fn hold_stock(ctx: &ActivityContext, order: String) -> Result<String, TestError> {
    ctx.resource::<Journal>().record(format!("hold {order}"));
    Ok(format!("hold-{order}"))
}

#[activity(retry(max_attempts = 2, initial_interval = "10ms"))]
async fn release_stock(ctx: &ActivityContext, hold: String) -> Result<(), TestError> {
    if ctx.resource::<WarehouseDown>().0.load(Ordering::SeqCst) {
        return Err(TestError::Failed("the warehouse is down".into()));
    }
    ctx.resource::<Journal>()
        .record(format!("release {hold} {}", ctx.idempotency_key()));
    Ok(())
}

#[activity(retry(max_attempts = 1))]
async fn dispatch(ctx: &ActivityContext, order: String, fail: bool) -> Result<String, TestError> {
    ctx.resource::<Journal>()
        .record(format!("dispatch {order}"));
    if fail {
        return Err(TestError::Permanent(format!("no courier for {order}")));
    }
    Ok(format!("parcel-{order}"))
}

/// Holds stock, then dispatches; a failed dispatch releases the stock.
#[workflow]
async fn fulfil(order: String, fail: bool) -> Result<String, TestError> {
    let hold = hold_stock(order.clone()).await?;
    let parcel = dispatch(order, fail).await?;
    Ok(format!("{hold}/{parcel}"))
}

fn spawn_worker(rig: &mut Rig, down: &WarehouseDown) {
    let b = rig.builder().register::<fulfil>().resource(down.clone());
    rig.spawn(b);
}

/// A history with one entry per transition, in order.
async fn assert_clean_history(rig: &Rig, id: &str) -> Vec<String> {
    let history = rig.client.history(id).await.expect("reads the history");
    let seqs: Vec<u64> = history.iter().map(|h| h.seq).collect();
    let want: Vec<u64> = (0..history.len() as u64).collect();
    assert_eq!(seqs, want, "{id}: history {history:#?}");
    history.into_iter().map(|h| h.event).collect()
}

async fn a_failed_compensation_runs_again_once_fixed(mut rig: Rig) {
    let down = WarehouseDown::default();
    down.set(true);
    spawn_worker(&mut rig, &down);
    let run = rig
        .client
        .start::<fulfil>("f-1", ("f-1".to_owned(), true))
        .await
        .expect("starts");
    let stuck = rig
        .wait_for("f-1", "compensation_failed", |e| {
            e.status() == Status::CompensationFailed
        })
        .await;
    assert_eq!(stuck.compensations.len(), 1, "the release is still owed");
    assert!(
        stuck
            .reason()
            .as_deref()
            .is_some_and(|r| r.contains("the warehouse is down")),
        "{stuck:#?}"
    );

    // Resuming while the cause is still there fails the same way, and is
    // resumable again.
    let status = rig.client.resume("f-1", "first try").await;
    assert_eq!(status.expect("resumes"), Status::Compensating);
    rig.wait_for("f-1", "compensation_failed again", |e| {
        e.status() == Status::CompensationFailed && e.seq > stuck.seq + 1
    })
    .await;

    down.set(false);
    let status = rig
        .client
        .resume("f-1", "warehouse back up")
        .await
        .expect("resumes");
    assert_eq!(status, Status::Compensating);
    match run.result().await {
        Err(RunError::Failed(TestError::Step(e))) => assert!(e.contains("no courier"), "{e}"),
        other => panic!("expected the workflow's own error, got {other:?}"),
    }
    let env = rig.describe("f-1").await;
    assert_eq!(env.status(), Status::Failed);
    assert!(env.compensations.is_empty());
    assert_eq!(env.reason(), None, "the resolved reason is cleared");
    assert_eq!(
        rig.journal.count("release hold-f-1"),
        1,
        "{:?}",
        rig.journal.lines()
    );
    assert_eq!(rig.journal.count("hold f-1"), 1);
    assert_eq!(rig.journal.count("dispatch f-1"), 1);

    let events = assert_clean_history(&rig, "f-1").await;
    for note in ["first try", "warehouse back up"] {
        let line = format!("resumed by an operator: {note}");
        assert!(events.contains(&line), "{line} in {events:#?}");
    }

    // A settled run is not resumed.
    match rig.client.resume("f-1", "again").await {
        Err(ResumeError::NotStopped { status, .. }) => assert_eq!(status, Status::Failed),
        other => panic!("expected a refusal, got {other:?}"),
    }
    rig.stop().await;
}

async fn only_stopped_runs_resume(mut rig: Rig) {
    let down = WarehouseDown::default();
    match rig.client.resume("nobody", "").await {
        Err(ResumeError::NotFound(id)) => assert_eq!(id, "nobody"),
        other => panic!("expected not found, got {other:?}"),
    }
    // Not yet picked up by any worker: running, so not resumable.
    rig.client
        .start::<fulfil>("f-2", ("f-2".to_owned(), false))
        .await
        .expect("starts");
    match rig.client.resume("f-2", "").await {
        Err(e @ ResumeError::NotStopped { .. }) => {
            assert!(e.to_string().contains("is running"), "{e}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    spawn_worker(&mut rig, &down);
    let out = rig
        .client
        .handle::<fulfil>("f-2")
        .result()
        .await
        .expect("completes");
    assert_eq!(out, "hold-f-2/parcel-f-2");
    rig.stop().await;
}

#[tokio::test]
async fn a_failed_compensation_runs_again_once_fixed_in_memory() {
    a_failed_compensation_runs_again_once_fixed(Rig::memory()).await;
}

#[tokio::test]
async fn a_failed_compensation_runs_again_once_fixed_on_redis() {
    a_failed_compensation_runs_again_once_fixed(Rig::redis().await).await;
}

#[tokio::test]
async fn only_stopped_runs_resume_in_memory() {
    only_stopped_runs_resume(Rig::memory()).await;
}

#[tokio::test]
async fn only_stopped_runs_resume_on_redis() {
    only_stopped_runs_resume(Rig::redis().await).await;
}

/// A run parked because an edit broke its state is repaired by hand in
/// Redis, resumed, and finishes from the same checkpoint.
#[tokio::test]
async fn a_parked_run_resumes_after_its_record_is_repaired() {
    let mut rig = Rig::redis().await;
    let down = WarehouseDown::default();
    let (server, store) = rig.redis_parts().expect("a Redis rig");
    let key = store.run_key("p-1");
    rig.client
        .start::<fulfil>("p-1", ("p-1".to_owned(), false))
        .await
        .expect("starts");
    let good_state = server.cli(&["HGET", &key, "state"]).trim().to_owned();
    assert!(good_state.starts_with(r#"{"start":"#), "{good_state}");
    server.cli(&["HSET", &key, "state", r#"{"start":{"order":42}}"#]);

    spawn_worker(&mut rig, &down);
    let parked = rig
        .wait_for("p-1", "parked", |e| e.status() == Status::Parked)
        .await;
    assert!(
        parked
            .reason()
            .as_deref()
            .is_some_and(|r| r.contains("does not decode")),
        "{parked:#?}"
    );
    assert_eq!(rig.journal.count("hold p-1"), 0, "nothing ran on bad data");
    let (server, store) = rig.redis_parts().expect("a Redis rig");
    let attention = store
        .list_runs(steadfast::RunList::Attention, usize::MAX)
        .await
        .expect("lists");
    assert_eq!(attention, vec!["p-1".to_owned()]);

    // The operator puts the state back and resumes the run.
    server.cli(&["HSET", &key, "state", &good_state]);
    let status = rig
        .client
        .resume("p-1", "state restored")
        .await
        .expect("resumes");
    assert_eq!(status, Status::Running);
    let out = rig
        .client
        .handle::<fulfil>("p-1")
        .result()
        .await
        .expect("completes");
    assert_eq!(out, "hold-p-1/parcel-p-1");
    let (_, store) = rig.redis_parts().expect("a Redis rig");
    assert!(
        store
            .list_runs(steadfast::RunList::Attention, usize::MAX)
            .await
            .expect("lists")
            .is_empty()
    );
    assert!(
        store
            .list_runs(steadfast::RunList::Active, usize::MAX)
            .await
            .expect("lists")
            .is_empty()
    );
    let events = assert_clean_history(&rig, "p-1").await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("parked: ") && e.contains("does not decode")),
        "{events:#?}"
    );
    assert!(
        events.contains(&"resumed by an operator: state restored".to_owned()),
        "{events:#?}"
    );
    assert_eq!(rig.journal.count("hold p-1"), 1);
    rig.stop().await;
}

/// A signal whose payload does not fit the type the workflow awaits parks
/// the run. The operator sends the right one (a parked run takes signals),
/// removes the bad one by its nonce, and resumes the run, which goes on
/// with the right one. Nothing else is lost.
async fn a_bad_signal_is_removed_and_the_run_goes_on(mut rig: Rig) {
    use support::lifecycle::{Item, collector};
    rig.spawn(support::lifecycle::register(rig.builder()));
    let run = rig
        .client
        .start::<collector>("c-1", 2)
        .await
        .expect("starts");
    rig.client.signal("c-1", Item(7)).await.expect("sends");
    rig.client
        .signal_json("c-1", "item", serde_json::json!("not a number"))
        .await
        .expect("a payload is not checked by the sender");
    let reason = match run.result_within(std::time::Duration::from_secs(10)).await {
        Err(RunError::Parked { reason }) => reason,
        other => panic!("a bad payload parks the run: {other:?}"),
    };
    assert!(reason.contains("does not decode"), "{reason}");
    let parked = rig.describe("c-1").await;
    let bad = parked
        .signals
        .iter()
        .find(|s| s.payload == serde_json::json!("not a number"))
        .expect("the bad signal is still buffered")
        .nonce;
    rig.client
        .signal("c-1", Item(8))
        .await
        .expect("a parked run takes the corrected signal");
    rig.client
        .remove_signal("c-1", bad, "payload of the wrong type")
        .await
        .expect("removes the bad signal");
    assert_eq!(
        rig.client
            .resume("c-1", "bad signal removed")
            .await
            .expect("resumes"),
        Status::Running
    );
    assert_eq!(
        run.result_within(std::time::Duration::from_secs(10))
            .await
            .expect("completes"),
        vec![7, 8]
    );
    let events: Vec<String> = rig
        .client
        .history("c-1")
        .await
        .expect("history")
        .into_iter()
        .map(|h| h.event)
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e.contains("removed by an operator: payload of the wrong type")),
        "{events:?}"
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_bad_signal_is_removed_and_the_run_goes_on_in_memory() {
    a_bad_signal_is_removed_and_the_run_goes_on(Rig::memory()).await;
}

#[tokio::test]
async fn a_bad_signal_is_removed_and_the_run_goes_on_on_redis() {
    a_bad_signal_is_removed_and_the_run_goes_on(Rig::redis().await).await;
}

/// A run whose record was deleted by hand leaves its history and index
/// entry behind; listing shows it as missing, `delete_run` removes what is
/// left, and starting the id again begins a fresh history.
#[tokio::test]
async fn a_record_deleted_by_hand_is_listed_and_cleaned_up() {
    let mut rig = Rig::redis().await;
    rig.spawn(support::lifecycle::register(rig.builder()));
    rig.client
        .start::<support::lifecycle::collector>("gone", 5)
        .await
        .expect("starts");
    rig.wait_for("gone", "its signal wait", |r| r.wait().is_some())
        .await;
    let (server, store) = rig.redis_parts().expect("a Redis rig");
    server.cli(&["DEL", &store.run_key("gone")]);
    let admin = rig.client.store().admin().expect("an admin side");
    let active = admin
        .list_runs(steadfast::RunList::Active, 100)
        .await
        .expect("lists");
    assert!(
        active.contains(&"gone".to_owned()),
        "still indexed: {active:?}"
    );
    assert!(rig.client.describe("gone").await.expect("reads").is_none());
    assert!(admin.delete_run("gone").await.expect("deletes"));
    assert!(
        rig.client
            .history("gone")
            .await
            .expect("history")
            .is_empty(),
        "the history is gone too"
    );
    rig.client
        .start::<support::lifecycle::collector>("gone", 1)
        .await
        .expect("starts again");
    let history = rig.client.history("gone").await.expect("history");
    assert_eq!(history.first().map(|h| h.seq), Some(0));
    assert!(
        history.iter().all(|h| h.seq <= 2),
        "a fresh history: {history:?}"
    );
    rig.stop().await;
}
