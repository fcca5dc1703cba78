//! What operators and clients ask of a run: resume it, remove a signal,
//! stop it.

use super::*;

fn operator_event(what: &str, note: &str) -> String {
    if note.is_empty() {
        format!("{what} by an operator")
    } else {
        format!("{what} by an operator: {note}")
    }
}

pub(super) fn resume(record: &RunRecord, note: &str, now_ms: u64) -> Result<Decision, Refusal> {
    let resume_to = match &record.phase {
        Phase::Parked {
            resume_to: Some(p), ..
        } => (**p).clone(),
        Phase::Parked {
            resume_to: None,
            reason,
            ..
        } => {
            return Err(Refusal::Unrepaired {
                id: record.id.clone(),
                reason: reason.clone(),
            });
        }
        _ => {
            return Err(Refusal::NotStopped {
                id: record.id.clone(),
                status: record.status(),
            });
        }
    };
    let mut next = next_of(record, now_ms);
    next.phase = resume_to;
    let effects = vec![
        dispatch_own(record),
        Effect::Index {
            index: RunIndex::Active,
            score_ms: record.created_at_ms,
            from: Some(RunIndex::Attention),
        },
        Effect::Publish {
            notice: Notice::Resumed,
        },
    ];
    let mut d = transition(next, operator_event("resumed", note), effects);
    d.exclusive = true;
    Ok(d)
}

pub(super) fn remove_signal(
    record: &RunRecord,
    nonce: u64,
    note: &str,
    now_ms: u64,
) -> Result<Decision, Refusal> {
    refuse_if_settled(record)?;
    let Some(signal) = record.signals.iter().find(|s| s.nonce == nonce) else {
        return Err(Refusal::NoSuchSignal {
            id: record.id.clone(),
            nonce,
        });
    };
    // An entry that does not read is shown with nonce 0 and cannot be
    // matched by its nonce: every such entry goes.
    let (what, effect) = if signal.name == UNREADABLE_SIGNAL {
        (
            "buffered signals that do not read removed".to_owned(),
            Effect::DropUnreadableSignals,
        )
    } else {
        (
            format!("signal `{}` (nonce {nonce}) removed", signal.name),
            Effect::ConsumeSignal { nonce },
        )
    };
    let mut next = record.clone();
    next.seq += 1;
    next.updated_at_ms = now_ms;
    next.signals.retain(|s| s.nonce != nonce);
    let mut d = transition(next, operator_event(&what, note), vec![effect]);
    d.exclusive = true;
    Ok(d)
}

pub(super) fn request_stop(
    record: &RunRecord,
    interrupt: Interrupt,
    now_ms: u64,
) -> Result<Decision, Refusal> {
    refuse_if_settled(record)?;
    match (&record.phase, interrupt) {
        // Nothing drives a parked run: a terminate ends it here and now.
        (Phase::Parked { resume_to, .. }, Interrupt::Terminate { reason }) => {
            let next = next_of(record, now_ms);
            let event = format!("terminated: {reason}");
            let outcome = Outcome::Terminated {
                reason: reason.clone(),
            };
            let mut d = settle(record, next, outcome, event);
            if resume_to.is_none() {
                // Its record does not read: what was guessed of it is not
                // written back, only the new status.
                d.write = Write::Status {
                    status: Status::Terminated,
                    reason: format!("terminated: {reason}"),
                    seq: record.seq + 1,
                    updated_at_ms: now_ms,
                };
            }
            d.exclusive = true;
            Ok(d)
        }
        (Phase::Parked { .. }, Interrupt::Cancel { .. }) => Err(Refusal::CannotCancel {
            id: record.id.clone(),
            status: record.status(),
        }),
        (_, interrupt) => {
            let mut d = Decision::nothing();
            d.effects.push(Effect::SetInterrupt { interrupt });
            d.effects.push(dispatch_own(record));
            Ok(d)
        }
    }
}
