//! Messages: signal buffers and their bound, waking a waiting run, stop
//! requests.

use std::time::Duration;

use serde_json::json;

use super::scenarios::step_with;
use super::{Ctx, LEASE, Outcome, Scenario, ensure};
use crate::core::{Cause, Command, Input, Interrupt, RunRecord, SignalEntry, Status, Stop, decide};
use crate::store::{Acquired, StoreError};

pub(super) const ALL: &[Scenario] = &[
    ("signals are bounded per run", |c| Box::pin(bounded(c))),
    ("a signal wakes only a run waiting for it", |c| {
        Box::pin(wakes(c))
    }),
    ("a buffered signal keeps the lease", |c| {
        Box::pin(keeps_lease(c))
    }),
    ("consuming removes exactly one signal", |c| {
        Box::pin(consumes_one(c))
    }),
    ("an operator removes a signal from a parked run", |c| {
        Box::pin(removes_from_parked(c))
    }),
    ("stop requests are kept, reported and cleared", |c| {
        Box::pin(stop_requests(c))
    }),
    ("a message reaches a run that commits meanwhile", |c| {
        Box::pin(busy_run(c))
    }),
    ("a cancel does not replace a terminate", |c| {
        Box::pin(terminate_stands(c))
    }),
    ("signals that do not read are removed", |c| {
        Box::pin(unreadable_signals(c))
    }),
];

fn signal(name: &str, nonce: u64) -> SignalEntry {
    SignalEntry {
        name: name.into(),
        payload: json!({"same": "payload"}),
        sent_at_ms: 1_000,
        nonce,
    }
}

/// Sends a signal as a client does: decide on the record as read, apply on
/// top of its `seq`.
async fn send(c: &Ctx<'_>, id: &str, s: SignalEntry) -> Result<(), StoreError> {
    let record = c
        .store
        .load(id)
        .await?
        .ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
    let decision = decide(
        &record,
        Input::SendSignal {
            signal: s,
            bound: 100,
        },
        2_000,
    )
    .map_err(|r| StoreError::Backend(r.to_string()))?;
    c.apply_current(id, record.seq, &decision).await.map(|_| ())
}

/// A run waiting for signal `name` (released by its worker).
async fn waiting_for(c: &Ctx<'_>, name: &str, key: &str) -> Result<RunRecord, String> {
    let (lease, record) = c.started(&c.id(key)).await?;
    let wait = Command::Signal {
        name: name.into(),
        timeout: None,
    };
    let decision = step_with(&record, Cause::Started, wait, 2_000);
    let applied = c
        .apply_held(&lease, Some(record.seq), &decision)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(applied.signal.is_none(), "a signal nobody sent was found");
    decision
        .record()
        .cloned()
        .ok_or_else(|| "a wait writes a record".to_owned())
}

async fn bounded(c: &Ctx<'_>) -> Outcome {
    let (_, record) = c.started(&c.id("bounded")).await?;
    let id = record.id.clone();
    for nonce in 1..=3 {
        send(c, &id, signal("note", nonce))
            .await
            .map_err(|e| e.to_string())?;
    }
    let full = send(c, &id, signal("note", 4)).await;
    ensure!(
        matches!(full, Err(StoreError::BufferFull { bound: 3, .. })),
        "a fourth signal past the run's bound of 3: {full:?}"
    );
    let nonces: Vec<u64> = c.load(&id).await?.signals.iter().map(|s| s.nonce).collect();
    ensure!(nonces == [1, 2, 3], "buffered, oldest first: {nonces:?}");
    Ok(())
}

async fn wakes(c: &Ctx<'_>) -> Outcome {
    let record = waiting_for(c, "go", "wakes").await?;
    send(c, &record.id, signal("other", 1))
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        c.poll(&record.id, Duration::from_millis(50))
            .await?
            .is_none(),
        "a signal the run does not wait for woke it"
    );
    send(c, &record.id, signal("go", 2))
        .await
        .map_err(|e| e.to_string())?;
    let task = c.task(&record.id).await?;
    let (_, woken) = c.take(&task, "worker-b", LEASE).await?;
    ensure!(
        woken.signals.len() == 2,
        "read with its signals: {:?}",
        woken.signals
    );
    Ok(())
}

async fn keeps_lease(c: &Ctx<'_>) -> Outcome {
    let (lease, record) = c.started(&c.id("keeps")).await?;
    send(c, &record.id, signal("go", 9))
        .await
        .map_err(|e| e.to_string())?;
    let wait = Command::Signal {
        name: "go".into(),
        timeout: Some(Duration::from_secs(60)),
    };
    let decision = step_with(&record, Cause::Started, wait, 2_000);
    let applied = c
        .apply_held(&lease, Some(record.seq), &decision)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        applied.signal.as_ref().map(|s| s.nonce) == Some(9),
        "the buffered signal was not reported: {applied:?}"
    );
    ensure!(
        matches!(
            c.acquire(&lease.task, "worker-b", LEASE).await?,
            Acquired::Busy
        ),
        "the lease was released although a signal was buffered"
    );
    let fired = c
        .store
        .fire_timers(u64::MAX / 2, std::slice::from_ref(&record.id), 10)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        fired == 0,
        "a timer was armed although a signal was buffered"
    );
    Ok(())
}

async fn consumes_one(c: &Ctx<'_>) -> Outcome {
    let record = waiting_for(c, "go", "consumes").await?;
    let id = record.id.clone();
    send(c, &id, signal("go", 11))
        .await
        .map_err(|e| e.to_string())?;
    send(c, &id, signal("go", 12))
        .await
        .map_err(|e| e.to_string())?;
    let task = c.task(&id).await?;
    let (lease, record) = c.take(&task, "worker-b", LEASE).await?;
    // Waits again on the same signal, to see what is left.
    let again = Command::Signal {
        name: "go".into(),
        timeout: None,
    };
    let decision = step_with(&record, Cause::SignalReceived { nonce: 11 }, again, 3_000);
    let applied = c
        .apply_held(&lease, Some(record.seq), &decision)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        applied.signal.as_ref().map(|s| s.nonce) == Some(12),
        "the other signal, equal in all but its nonce, should be next: {applied:?}"
    );
    let left: Vec<u64> = c.load(&id).await?.signals.iter().map(|s| s.nonce).collect();
    ensure!(left == [12], "left in the buffer: {left:?}");
    Ok(())
}

async fn removes_from_parked(c: &Ctx<'_>) -> Outcome {
    let (lease, record) = c.started(&c.id("remove")).await?;
    let id = record.id.clone();
    send(c, &id, signal("bad", 21))
        .await
        .map_err(|e| e.to_string())?;
    let park = decide(
        &record,
        Input::Park {
            reason: "a signal does not decode".into(),
        },
        2_000,
    )
    .map_err(|r| r.to_string())?;
    c.apply_held(&lease, Some(record.seq), &park)
        .await
        .map_err(|e| e.to_string())?;
    send(c, &id, signal("good", 22))
        .await
        .map_err(|e| format!("a parked run refused a signal: {e}"))?;
    let parked = c.load(&id).await?;
    let remove = decide(
        &parked,
        Input::RemoveSignal {
            nonce: 21,
            note: "wrong type".into(),
        },
        3_000,
    )
    .map_err(|r| r.to_string())?;
    c.apply_current(&id, parked.seq, &remove)
        .await
        .map_err(|e| e.to_string())?;
    let after = c.load(&id).await?;
    let left: Vec<u64> = after.signals.iter().map(|s| s.nonce).collect();
    ensure!(left == [22], "left in the buffer: {left:?}");
    ensure!(
        after.status() == Status::Parked && after.seq == parked.seq + 1,
        "{after:?}"
    );
    let history = c.store.history(&id).await.map_err(|e| e.to_string())?;
    ensure!(
        history
            .last()
            .is_some_and(|h| h.event.contains("removed by an operator: wrong type")),
        "the removal is not in the history: {history:?}"
    );
    Ok(())
}

async fn stop_requests(c: &Ctx<'_>) -> Outcome {
    let cancel = |reason: &str| Interrupt::Cancel {
        reason: reason.into(),
    };
    for (key, acted_on, kept) in [("stops", "asked", false), ("newer", "earlier", true)] {
        let (lease, record) = c.started(&c.id(key)).await?;
        let id = record.id.clone();
        let request = decide(&record, Input::RequestStop(cancel("asked")), 2_000)
            .map_err(|r| r.to_string())?;
        c.apply_current(&id, record.seq, &request)
            .await
            .map_err(|e| e.to_string())?;
        let seen = c
            .store
            .renew(&lease, LEASE)
            .await
            .map_err(|e| e.to_string())?;
        ensure!(seen == Some(cancel("asked")), "renewal reported {seen:?}");
        // The worker acts on the request it saw; a newer one stays.
        let mut current = record.clone();
        current.interrupt = Some(cancel(acted_on));
        let stop = decide(
            &current,
            Input::Stop(Stop::Cancel {
                reason: acted_on.into(),
            }),
            3_000,
        )
        .map_err(|r| r.to_string())?;
        let applied = c
            .apply_held(&lease, Some(current.seq), &stop)
            .await
            .map_err(|e| e.to_string())?;
        let expected = kept.then(|| cancel("asked"));
        ensure!(
            applied.interrupt == expected,
            "after acting on `{acted_on}`: {applied:?}"
        );
        ensure!(
            c.load(&id).await?.status() == Status::Cancelled,
            "not cancelled"
        );
    }
    Ok(())
}

/// A message decided on a run as read is applied although a worker
/// committed meanwhile (it writes no record): a busy run is not starved of
/// its messages. One for a run that ended meanwhile is refused.
async fn busy_run(c: &Ctx<'_>) -> Outcome {
    let (lease, record) = c.started(&c.id("busy")).await?;
    let id = record.id.clone();
    let send = decide(
        &record,
        Input::SendSignal {
            signal: signal("go", 31),
            bound: 100,
        },
        2_000,
    )
    .map_err(|r| r.to_string())?;
    let stop = decide(
        &record,
        Input::RequestStop(Interrupt::Cancel { reason: "c".into() }),
        2_000,
    )
    .map_err(|r| r.to_string())?;
    // The worker commits a transition after the messages were decided.
    c.apply_held(
        &lease,
        Some(record.seq),
        &super::scenarios::to_activity(&record, 3_000),
    )
    .await
    .map_err(|e| e.to_string())?;
    for (what, decision) in [("signal", &send), ("stop request", &stop)] {
        c.store
            .apply(&id, &crate::core::Guard::Unended, decision)
            .await
            .map_err(|e| format!("the {what} was refused on a busy run: {e}"))?;
    }
    let now = c.load(&id).await?;
    ensure!(now.signals.len() == 1, "signals: {:?}", now.signals);
    ensure!(now.interrupt.is_some(), "the stop request is not stored");
    let finished = decide(
        &now,
        Input::Stop(Stop::Cancel { reason: "c".into() }),
        4_000,
    )
    .map_err(|r| r.to_string())?;
    c.apply_held(&lease, Some(now.seq), &finished)
        .await
        .map_err(|e| e.to_string())?;
    let late = c
        .store
        .apply(&id, &crate::core::Guard::Unended, &send)
        .await;
    ensure!(
        matches!(late, Err(StoreError::Ended { .. })),
        "a message for an ended run: {late:?}"
    );
    Ok(())
}

async fn terminate_stands(c: &Ctx<'_>) -> Outcome {
    let (_, record) = c.started(&c.id("terminate")).await?;
    for stop in [
        Interrupt::Terminate { reason: "t".into() },
        Interrupt::Cancel { reason: "c".into() },
    ] {
        let d = decide(&record, Input::RequestStop(stop), 2_000).map_err(|r| r.to_string())?;
        c.store
            .apply(&record.id, &crate::core::Guard::Unended, &d)
            .await
            .map_err(|e| e.to_string())?;
    }
    let stored = c.load(&record.id).await?.interrupt;
    ensure!(
        matches!(stored, Some(Interrupt::Terminate { .. })),
        "a later cancel replaced the terminate: {stored:?}"
    );
    Ok(())
}

async fn unreadable_signals(c: &Ctx<'_>) -> Outcome {
    let (lease, record) = c.started(&c.id("garbage")).await?;
    let id = record.id.clone();
    c.harness.push_raw_signal(&id, "{not a signal").await;
    send(c, &id, signal("good", 41))
        .await
        .map_err(|e| e.to_string())?;
    let park = decide(
        &record,
        Input::Park {
            reason: "test".into(),
        },
        2_000,
    )
    .map_err(|r| r.to_string())?;
    c.apply_held(&lease, Some(record.seq), &park)
        .await
        .map_err(|e| e.to_string())?;
    let parked = c.load(&id).await?;
    let bad = parked
        .signals
        .iter()
        .find(|s| s.name == crate::core::UNREADABLE_SIGNAL)
        .ok_or("the entry that does not read is not shown")?
        .nonce;
    let remove = decide(
        &parked,
        Input::RemoveSignal {
            nonce: bad,
            note: String::new(),
        },
        3_000,
    )
    .map_err(|r| r.to_string())?;
    c.apply_current(&id, parked.seq, &remove)
        .await
        .map_err(|e| e.to_string())?;
    let left: Vec<String> = c
        .load(&id)
        .await?
        .signals
        .iter()
        .map(|s| s.name.clone())
        .collect();
    ensure!(left == ["good"], "left in the buffer: {left:?}");
    Ok(())
}
