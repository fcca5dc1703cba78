//! Leases, fences, sequence numbers, records deleted or broken by hand,
//! releases, timers, settling, history, deletion.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use super::{Ctx, LEASE, Outcome, Scenario, ensure};
use crate::core::{
    Cause, Command, Decision, Input, Outcome as RunOutcome, Phase, RunRecord, Status, StepOutcome,
    create, decide, park_unreadable,
};
use crate::store::{Acquired, RunList, Started, StoreError};

pub(super) const ALL: &[Scenario] = &[
    ("creation is idempotent", |c| {
        Box::pin(creation_is_idempotent(c))
    }),
    ("two workers race for one run", |c| {
        Box::pin(two_workers_race(c))
    }),
    ("a stale fence writes nothing", |c| Box::pin(stale_fence(c))),
    ("a stale seq writes nothing", |c| Box::pin(stale_seq(c))),
    ("an abandoned task is delivered again", |c| {
        Box::pin(redelivery(c))
    }),
    ("a record deleted by hand", |c| Box::pin(deleted_record(c))),
    ("a record deleted while a worker holds it", |c| {
        Box::pin(deleted_while_held(c))
    }),
    (
        "a corrupt record parks without going back in history",
        |c| Box::pin(corrupt_record(c)),
    ),
    ("a release dispatches to the queue named", |c| {
        Box::pin(release_dispatches(c))
    }),
    ("a timer fires onto the run's queue", |c| {
        Box::pin(timers(c))
    }),
    ("a settled run is done", |c| Box::pin(settled(c))),
    ("continue-as-new trims the history", |c| {
        Box::pin(trims_history(c))
    }),
    ("an operator's decision waits for the holder", |c| {
        Box::pin(exclusive(c))
    }),
    ("deleting a run removes all of it", |c| Box::pin(deletes(c))),
];

/// A step to an activity, as the worker decides it after `cause`.
pub(super) fn to_activity(record: &RunRecord, now: u64) -> Decision {
    let cause = match record.work() {
        Some(crate::core::Work::Start) => Cause::Started,
        _ => Cause::ActivitySucceeded {
            outcome: json!({"Ok": 1}),
            compensation: None,
        },
    };
    step_with(record, cause, activity("charge"), now)
}

pub(super) fn activity(name: &str) -> Command {
    Command::Activity {
        activity: name.into(),
        input: json!(1),
        queue: None,
    }
}

pub(super) fn step_with(record: &RunRecord, cause: Cause, command: Command, now: u64) -> Decision {
    let input = Input::Stepped {
        cause,
        step: StepOutcome::Suspend {
            step: "s#0".into(),
            fingerprint: "fp".into(),
            json: json!({"s#0": {}}),
            command,
        },
        queries: BTreeMap::new(),
    };
    decide(record, input, now).unwrap_or_else(|r| panic!("a valid step: {r}"))
}

async fn creation_is_idempotent(c: &Ctx<'_>) -> Outcome {
    let id = c.id("idempotent");
    let first = c.store.create(&create(c.run(&id, 1_000))).await;
    ensure!(
        matches!(first, Ok(Started::Created)),
        "first creation: {first:?}"
    );
    let mut other = c.run(&id, 2_000);
    other.workflow = "another".into();
    let second = c.store.create(&create(other)).await;
    let Ok(Started::Existing(existing)) = second else {
        return Err(format!("second creation: {second:?}"));
    };
    ensure!(
        existing.workflow == "conformance" && existing.created_at_ms == 1_000,
        "the existing run was changed: {existing:?}"
    );
    ensure!(c.seqs(&id).await? == [0], "one `created` entry");
    let task = c.task(&id).await?;
    ensure!(
        c.poll(&id, Duration::from_millis(50)).await?.is_none(),
        "one task for one run, got another besides {task:?}"
    );
    Ok(())
}

async fn two_workers_race(c: &Ctx<'_>) -> Outcome {
    let id = c.id("race");
    c.store
        .create(&create(c.run(&id, 1_000)))
        .await
        .map_err(|e| e.to_string())?;
    let task = c.task(&id).await?;
    let (a, b) = tokio::join!(
        c.acquire(&task, "worker-a", LEASE),
        c.acquire(&task, "worker-b", LEASE)
    );
    let held = [a?, b?]
        .into_iter()
        .filter(|x| matches!(x, Acquired::Held(..)))
        .count();
    ensure!(held == 1, "{held} workers hold the run");
    Ok(())
}

async fn stale_fence(c: &Ctx<'_>) -> Outcome {
    let id = c.id("fence");
    c.store
        .create(&create(c.run(&id, 1_000)))
        .await
        .map_err(|e| e.to_string())?;
    let task = c.task(&id).await?;
    let (lease_a, record_a) = c
        .take(&task, "worker-a", Duration::from_millis(100))
        .await?;
    ensure!(
        matches!(c.acquire(&task, "worker-b", LEASE).await?, Acquired::Busy),
        "B took a run A holds"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (lease_b, record_b) = c.take(&task, "worker-b", LEASE).await?;
    ensure!(lease_b.fence > lease_a.fence, "the fence did not move");
    c.apply_held(&lease_b, Some(record_b.seq), &to_activity(&record_b, 2_000))
        .await
        .map_err(|e| format!("B applies: {e}"))?;
    let late = c
        .apply_held(&lease_a, Some(record_a.seq), &to_activity(&record_a, 3_000))
        .await;
    ensure!(
        matches!(late, Err(StoreError::Fenced { .. })),
        "A's late decision: {late:?}"
    );
    ensure!(c.seqs(&id).await? == [0, 1], "A wrote a history entry");
    ensure!(
        c.load(&id).await?.updated_at_ms == 2_000,
        "A's record was written"
    );
    Ok(())
}

async fn stale_seq(c: &Ctx<'_>) -> Outcome {
    let (lease, record) = c.started(&c.id("seq")).await?;
    let decision = to_activity(&record, 2_000);
    c.apply_held(&lease, Some(record.seq), &decision)
        .await
        .map_err(|e| format!("first apply: {e}"))?;
    let again = c.apply_held(&lease, Some(record.seq), &decision).await;
    ensure!(
        matches!(&again, Err(StoreError::Stale { found, .. }) if found == "1"),
        "the same transition applied twice: {again:?}"
    );
    ensure!(
        c.seqs(&lease.workflow_id).await? == [0, 1],
        "a second entry was written"
    );
    Ok(())
}

async fn redelivery(c: &Ctx<'_>) -> Outcome {
    let id = c.id("redelivery");
    c.store
        .create(&create(c.run(&id, 1_000)))
        .await
        .map_err(|e| e.to_string())?;
    let first = c.task(&id).await?;
    ensure!(
        first.deliveries == 1,
        "first delivery counted {}",
        first.deliveries
    );
    // Nobody acknowledges or renews it: after the reclaim time a later poll
    // delivers it again.
    let deadline =
        tokio::time::Instant::now() + c.harness.reclaim_after() * 4 + Duration::from_secs(2);
    let again = loop {
        if let Some(task) = c.poll(&id, Duration::from_millis(100)).await? {
            break task;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the abandoned task was not delivered again"
        );
    };
    ensure!(
        again.receipt == first.receipt && again.deliveries == 2,
        "redelivered as {again:?}"
    );
    Ok(())
}

/// A record deleted by hand under the worker that holds it: the worker's
/// next step is refused as missing and writes nothing (no history entry,
/// no fields that would make a record of their own).
async fn deleted_while_held(c: &Ctx<'_>) -> Outcome {
    let (lease, record) = c.started(&c.id("deleted-held")).await?;
    c.harness.delete_record(&lease.workflow_id).await;
    let step = c
        .apply_held(&lease, Some(record.seq), &to_activity(&record, 2_000))
        .await;
    ensure!(
        matches!(step, Err(StoreError::NotFound(_))),
        "a step on a deleted run: {step:?}"
    );
    ensure!(
        c.store
            .load(&lease.workflow_id)
            .await
            .map_err(|e| e.to_string())?
            .is_none(),
        "the step wrote a record"
    );
    Ok(())
}

async fn deleted_record(c: &Ctx<'_>) -> Outcome {
    let id = c.id("deleted");
    c.store
        .create(&create(c.run(&id, 1_000)))
        .await
        .map_err(|e| e.to_string())?;
    let task = c.task(&id).await?;
    c.harness.delete_record(&id).await;
    let got = c.acquire(&task, "worker-a", LEASE).await?;
    ensure!(
        matches!(got, Acquired::Missing),
        "acquired a deleted run: {got:?}"
    );
    ensure!(
        c.store
            .load(&id)
            .await
            .map_err(|e| e.to_string())?
            .is_none(),
        "it still loads"
    );
    let again = c.store.create(&create(c.run(&id, 5_000))).await;
    ensure!(
        matches!(again, Ok(Started::Created)),
        "starting the id again: {again:?}"
    );
    let history = c.store.history(&id).await.map_err(|e| e.to_string())?;
    ensure!(
        history.len() == 1 && history[0].at_ms == 5_000,
        "the new run's history holds the old one's: {history:?}"
    );
    Ok(())
}

async fn corrupt_record(c: &Ctx<'_>) -> Outcome {
    let (lease, record) = c.started(&c.id("corrupt")).await?;
    let id = lease.workflow_id.clone();
    c.apply_held(&lease, Some(record.seq), &to_activity(&record, 2_000))
        .await
        .map_err(|e| e.to_string())?;
    c.harness.set_field(&id, "seq", Some("not-a-number")).await;
    c.harness.set_field(&id, "state", Some("{broken")).await;
    let task = lease.task.clone();
    let (lease, unreadable) = match c.acquire(&task, "worker-a", LEASE).await? {
        Acquired::Held(l, Err(u)) => (l, u),
        other => return Err(format!("a corrupt record was read as {other:?}")),
    };
    ensure!(
        unreadable.seq.is_none(),
        "a corrupt seq read as {:?}",
        unreadable.seq
    );
    ensure!(
        unreadable.reason.contains("seq"),
        "the reason names the field: {}",
        unreadable.reason
    );
    let last = c.seqs(&id).await?.last().copied();
    let park = park_unreadable(&unreadable.reason, unreadable.seq, last, 3_000);
    c.apply_held(&lease, None, &park)
        .await
        .map_err(|e| format!("parking: {e}"))?;
    ensure!(
        c.seqs(&id).await? == [0, 1, 2],
        "the history went backwards or jumped"
    );
    let shown = c.load(&id).await?;
    ensure!(
        shown.status() == Status::Parked,
        "shown as {:?}",
        shown.status()
    );
    let listed = c
        .store
        .admin()
        .map(|a| a.list_runs(RunList::Attention, 10_000));
    if let Some(listed) = listed {
        let ids = listed.await.map_err(|e| e.to_string())?;
        ensure!(
            ids.contains(&id),
            "a parked run is not listed for attention"
        );
    }
    ensure!(
        matches!(
            c.acquire(&task, "worker-c", LEASE).await?,
            Acquired::Settled
        ),
        "a parked run was acquired again"
    );
    Ok(())
}

async fn release_dispatches(c: &Ctx<'_>) -> Outcome {
    let (lease, record) = c.started(&c.id("release")).await?;
    let other = format!("{}-elsewhere", lease.workflow_id);
    let decision = decide(
        &record,
        Input::Yield {
            wake_at_ms: None,
            dispatch: Some(other.clone()),
            await_signal: None,
        },
        2_000,
    )
    .map_err(|r| r.to_string())?;
    c.apply_held(&lease, Some(record.seq), &decision)
        .await
        .map_err(|e| e.to_string())?;
    let task = c.task(&other).await?;
    ensure!(task.workflow_id == lease.workflow_id, "dispatched {task:?}");
    let (lease_b, _) = c.take(&task, "worker-b", LEASE).await?;
    ensure!(
        lease_b.fence > lease.fence,
        "the released lease was not given up"
    );
    ensure!(
        c.poll(&lease.workflow_id, Duration::from_millis(50))
            .await?
            .is_none(),
        "the released task came back on its own queue"
    );
    Ok(())
}

async fn timers(c: &Ctx<'_>) -> Outcome {
    let (lease, record) = c.started(&c.id("timer")).await?;
    let sleep = Command::Sleep {
        duration: Duration::from_millis(500),
    };
    let decision = step_with(&record, Cause::Started, sleep, 10_000);
    c.apply_held(&lease, Some(record.seq), &decision)
        .await
        .map_err(|e| e.to_string())?;
    let queues = [lease.workflow_id.clone()];
    let early = c
        .store
        .fire_timers(10_499, &queues, 10)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(early == 0, "a timer fired early");
    let fired = c
        .store
        .fire_timers(10_500, &queues, 10)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(fired == 1, "{fired} timers fired");
    let task = c.task(&lease.workflow_id).await?;
    let (_, waiting) = c.take(&task, "worker-b", LEASE).await?;
    ensure!(
        matches!(waiting.phase, Phase::Waiting { .. }),
        "woken in phase {:?}",
        waiting.phase
    );
    let again = c
        .store
        .fire_timers(20_000, &queues, 10)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(again == 0, "a timer fired twice");
    Ok(())
}

async fn settled(c: &Ctx<'_>) -> Outcome {
    let (lease, record) = c.started(&c.id("settled")).await?;
    let done = decide(
        &record,
        Input::Stepped {
            cause: Cause::Started,
            step: StepOutcome::Completed { output: json!(42) },
            queries: BTreeMap::new(),
        },
        2_000,
    )
    .map_err(|r| r.to_string())?;
    c.apply_held(&lease, Some(record.seq), &done)
        .await
        .map_err(|e| e.to_string())?;
    let seen = c
        .store
        .wait_settled(&lease.workflow_id, Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the settled run is gone")?;
    ensure!(
        matches!(&seen.phase, Phase::Settled { outcome: RunOutcome::Completed { output } } if *output == json!(42)),
        "waited for {:?}",
        seen.phase
    );
    ensure!(
        matches!(
            c.acquire(&lease.task, "worker-b", LEASE).await?,
            Acquired::Settled
        ),
        "a settled run was acquired"
    );
    if let Some(admin) = c.store.admin() {
        let finished = admin
            .list_runs(RunList::Finished, 10_000)
            .await
            .map_err(|e| e.to_string())?;
        let active = admin
            .list_runs(RunList::Active, 10_000)
            .await
            .map_err(|e| e.to_string())?;
        ensure!(
            finished.contains(&lease.workflow_id) && !active.contains(&lease.workflow_id),
            "indexes: finished {finished:?}, active {active:?}"
        );
    }
    Ok(())
}

async fn trims_history(c: &Ctx<'_>) -> Outcome {
    let (lease, record) = c.started(&c.id("trim")).await?;
    let first = to_activity(&record, 2_000);
    c.apply_held(&lease, Some(record.seq), &first)
        .await
        .map_err(|e| e.to_string())?;
    let record = first.record().cloned().ok_or("a step writes a record")?;
    let again = decide(
        &record,
        Input::Stepped {
            cause: Cause::ActivitySucceeded {
                outcome: json!({"Ok": 1}),
                compensation: None,
            },
            step: StepOutcome::ContinueAsNew {
                input: json!(2),
                step: "start".into(),
                fingerprint: "fp".into(),
                json: json!({"start": {"n": 2}}),
                patches: vec!["p".into()],
            },
            queries: BTreeMap::new(),
        },
        3_000,
    )
    .map_err(|r| r.to_string())?;
    c.apply_held(&lease, Some(record.seq), &again)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        c.seqs(&lease.workflow_id).await? == [2],
        "the history was not trimmed"
    );
    let stored = c.load(&lease.workflow_id).await?;
    ensure!(
        stored.generation == 1 && stored.input == json!(2) && stored.patches == ["p"],
        "the new generation's fields: {stored:?}"
    );
    Ok(())
}

async fn exclusive(c: &Ctx<'_>) -> Outcome {
    let (lease, record) = c.started(&c.id("exclusive")).await?;
    let park = decide(
        &record,
        Input::Park {
            reason: "test".into(),
        },
        2_000,
    )
    .map_err(|r| r.to_string())?;
    let mut parked = park.record().cloned().ok_or("a park writes a record")?;
    // A worker still holds the lease (the park's release not applied yet):
    // write the parked record with the lease kept, then try to resume.
    let mut kept = park.clone();
    kept.effects
        .retain(|e| !matches!(e, crate::core::Effect::Release));
    kept.effects.push(crate::core::Effect::KeepLease);
    c.apply_held(&lease, Some(record.seq), &kept)
        .await
        .map_err(|e| e.to_string())?;
    parked.signals.clear();
    let resume = decide(
        &parked,
        Input::Resume {
            note: String::new(),
        },
        3_000,
    )
    .map_err(|r| r.to_string())?;
    let refused = c
        .apply_current(&lease.workflow_id, parked.seq, &resume)
        .await;
    ensure!(
        matches!(refused, Err(StoreError::Held(_))),
        "resumed under a held lease: {refused:?}"
    );
    ensure!(
        c.load(&lease.workflow_id).await?.status() == Status::Parked,
        "the refused resume wrote"
    );
    Ok(())
}

async fn deletes(c: &Ctx<'_>) -> Outcome {
    let (lease, record) = c.started(&c.id("delete")).await?;
    let id = lease.workflow_id.clone();
    let sleep = Command::Sleep {
        duration: Duration::from_secs(3600),
    };
    c.apply_held(
        &lease,
        Some(record.seq),
        &step_with(&record, Cause::Started, sleep, 2_000),
    )
    .await
    .map_err(|e| e.to_string())?;
    let Some(admin) = c.store.admin() else {
        return Ok(());
    };
    ensure!(
        admin.delete_run(&id).await.map_err(|e| e.to_string())?,
        "nothing was deleted"
    );
    ensure!(
        c.store
            .load(&id)
            .await
            .map_err(|e| e.to_string())?
            .is_none(),
        "the record stayed"
    );
    ensure!(c.seqs(&id).await?.is_empty(), "the history stayed");
    let active = admin
        .list_runs(RunList::Active, 10_000)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(!active.contains(&id), "the index entry stayed");
    let fired = c
        .store
        .fire_timers(u64::MAX / 2, std::slice::from_ref(&id), 10)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(fired == 0, "the timer stayed");
    ensure!(
        !admin.delete_run(&id).await.map_err(|e| e.to_string())?,
        "deleted twice"
    );
    Ok(())
}
