//! Stopping, unwinding compensations, yielding, parking.

use super::*;

/// The ending of a compensating run and the top of its stack.
fn unwinding(record: &RunRecord) -> Option<(&Ending, Option<&CompensationEntry>)> {
    match &record.phase {
        Phase::Compensating { ending } => Some((ending, record.compensations.last())),
        _ => None,
    }
}

/// A cancel that arrives while compensating changes nothing: the
/// compensations run anyway. It is cleared with the next transition.
fn clear_cancel(record: &RunRecord, effects: &mut Vec<Effect>) {
    if let Some(i @ Interrupt::Cancel { .. }) = &record.interrupt {
        effects.push(Effect::ClearInterrupt {
            interrupt: i.clone(),
        });
    }
}

pub(super) fn compensated(record: &RunRecord, now_ms: u64) -> Result<Decision, Refusal> {
    let Some((ending, Some(top))) = unwinding(record) else {
        return Err(impossible(record, "a finished compensation"));
    };
    let event = format!("compensation {} for {} completed", top.activity, top.step);
    let mut next = next_of(record, now_ms);
    next.compensations.pop();
    if next.compensations.is_empty() {
        return Ok(settle(record, next, ending.outcome(), event));
    }
    let mut effects = Vec::new();
    clear_cancel(record, &mut effects);
    effects.push(Effect::KeepLease);
    if let Some(Interrupt::Cancel { .. }) = &next.interrupt {
        next.interrupt = None;
    }
    Ok(transition(next, event, effects))
}

pub(super) fn compensation_gave_up(
    record: &RunRecord,
    attempts: u32,
    message: &str,
    now_ms: u64,
) -> Result<Decision, Refusal> {
    let Some((ending, Some(top))) = unwinding(record) else {
        return Err(impossible(record, "a failed compensation"));
    };
    let reason = format!(
        "compensation `{}` for step `{}` failed after {attempts} attempt(s): {message}",
        top.activity, top.step
    );
    let next = next_of(record, now_ms);
    let mut extra = Vec::new();
    clear_cancel(record, &mut extra);
    let resume_to = Phase::Compensating {
        ending: ending.clone(),
    };
    Ok(park_next(
        record,
        next,
        ParkKind::CompensationFailed,
        reason.clone(),
        resume_to,
        reason,
        extra,
    ))
}

pub(super) fn compensations_done(record: &RunRecord, now_ms: u64) -> Result<Decision, Refusal> {
    let Some((ending, None)) = unwinding(record) else {
        return Err(impossible(record, "the end of the compensations"));
    };
    let next = next_of(record, now_ms);
    Ok(settle(
        record,
        next,
        ending.outcome(),
        "compensations done".to_owned(),
    ))
}

pub(super) fn stopped(record: &RunRecord, stop: Stop, now_ms: u64) -> Result<Decision, Refusal> {
    let forward = record.phase.is_forward();
    if !forward && !matches!(record.phase, Phase::Compensating { .. }) {
        return Err(impossible(record, "a stop"));
    }
    let child = match record.wait() {
        Some(Wait::Child { id, .. }) => Some(id.clone()),
        _ => None,
    };
    let stop_child = |interrupt: Interrupt| {
        child
            .clone()
            .map(|child| FollowUp::StopChild { child, interrupt })
    };
    let next = next_of(record, now_ms);
    let (ending, event, follow) = match stop {
        Stop::Terminate { reason } => {
            let event = format!("terminated: {reason}");
            let follow = stop_child(Interrupt::Terminate {
                reason: format!("parent `{}` terminated: {reason}", record.id),
            });
            let mut d = settle(record, next, Outcome::Terminated { reason }, event);
            d.follow_ups.extend(follow);
            return Ok(d);
        }
        _ if !forward => return Err(impossible(record, "a cancel or timeout while compensating")),
        Stop::Cancel { reason } => (
            Ending::Cancelled {
                reason: reason.clone(),
            },
            format!("cancelled: {reason}"),
            stop_child(Interrupt::Cancel {
                reason: format!("parent `{}` cancelled: {reason}", record.id),
            }),
        ),
        Stop::DeadlinePassed => (
            Ending::TimedOut,
            TIMED_OUT.to_owned(),
            stop_child(Interrupt::Cancel {
                reason: format!("parent `{}` timed out", record.id),
            }),
        ),
    };
    let mut d = if next.compensations.is_empty() {
        settle(record, next, ending.outcome(), event)
    } else {
        let mut next = next;
        next.phase = Phase::Compensating { ending };
        next.interrupt = None;
        let mut effects = Vec::new();
        clear_interrupt(record, &mut effects);
        effects.extend([
            Effect::ClearTimer {
                queue: record.queue.clone(),
            },
            Effect::KeepLease,
        ]);
        transition(next, event, effects)
    };
    d.follow_ups.extend(follow);
    Ok(d)
}

pub(super) fn yielded(
    record: &RunRecord,
    wake_at_ms: Option<u64>,
    dispatch: Option<String>,
    await_signal: Option<String>,
) -> Decision {
    let mut d = Decision::nothing();
    if let Some(name) = await_signal {
        d.effects.push(Effect::AwaitSignal { name });
    }
    d.effects.push(Effect::Release);
    if let Some(queue) = dispatch {
        d.effects.push(Effect::Dispatch { queue });
    }
    if let Some(at_ms) = wake_at_ms {
        d.effects.push(Effect::ArmTimer {
            queue: record.queue.clone(),
            at_ms,
        });
    }
    d
}

pub(super) fn park(record: &RunRecord, reason: &str, now_ms: u64) -> Result<Decision, Refusal> {
    match &record.phase {
        Phase::Settled { .. } | Phase::Parked { .. } => Err(impossible(record, "a park")),
        phase => {
            let mut next = record.clone();
            next.seq += 1;
            next.updated_at_ms = now_ms;
            Ok(park_next(
                record,
                next,
                ParkKind::Stuck,
                reason.to_owned(),
                phase.clone(),
                format!("parked: {reason}"),
                Vec::new(),
            ))
        }
    }
}
