//! The rules of a run's life, in one pure function: no I/O, no clock
//! reads, no tokio. Given a record, an input and the time, [`decide`]
//! returns the next record, its history entry and the effects a store
//! applies with it — or refuses the input.

mod forward;
mod messages;
mod unwind;

use std::collections::BTreeMap;
use std::time::Duration;

use forward::{attempt_failed, migrated, outcome_recorded, stepped};
use messages::{remove_signal, request_stop, resume};
use unwind::{compensated, compensation_gave_up, compensations_done, park, stopped, yielded};

use super::decision::{Decision, Effect, FollowUp, Notice, Refusal, RunIndex, Write};
use super::input::{Cause, Command, Input, StepOutcome, Stop};
use super::{
    CompensationEntry, Ending, HistoryEntry, Interrupt, Outcome, ParkKind, Phase, RunRecord,
    StateSnapshot, Status, TIMED_OUT, Wait, Work,
};

/// Decides what `input` does to `record` at `now_ms` (milliseconds since
/// the Unix epoch).
///
/// A transition increments `seq` by one and comes with one history entry;
/// a message (a signal buffered, a stop request recorded, a lease given
/// up) writes no record and no history. Inputs that do not apply to the
/// record's phase are refused, and nothing is written.
///
/// ```
/// use steadfast_runtime::core::{decide, Input, Phase, RunRecord, StateSnapshot, Status};
///
/// let start = StateSnapshot::new("start", "fp", serde_json::json!({"start": {}}));
/// let run = RunRecord::new_run("order-42", "order", "orders", serde_json::json!("order-42"), start, 1_000);
/// let decision = decide(&run, Input::Park { reason: "state does not decode".into() }, 2_000)
///     .expect("a running run can be parked");
/// let parked = decision.record().expect("parking writes the record");
/// assert_eq!(parked.status(), Status::Parked);
/// assert_eq!(parked.seq, 1);
/// assert!(matches!(&parked.phase, Phase::Parked { resume_to: Some(_), .. }));
/// ```
pub fn decide(record: &RunRecord, input: Input, now_ms: u64) -> Result<Decision, Refusal> {
    match input {
        Input::Stepped {
            cause,
            step,
            queries,
        } => stepped(record, cause, step, queries, now_ms),
        Input::OutcomeRecorded { cause } => outcome_recorded(record, cause, now_ms),
        Input::AttemptFailed {
            attempt,
            message,
            retry_in,
        } => attempt_failed(record, attempt, message, retry_in, now_ms),
        Input::Compensated => compensated(record, now_ms),
        Input::CompensationGaveUp { attempts, message } => {
            compensation_gave_up(record, attempts, &message, now_ms)
        }
        Input::CompensationsDone => compensations_done(record, now_ms),
        Input::Stop(stop) => stopped(record, stop, now_ms),
        Input::Yield {
            wake_at_ms,
            dispatch,
            await_signal,
        } => Ok(yielded(record, wake_at_ms, dispatch, await_signal)),
        Input::Migrated {
            step,
            fingerprint,
            json,
            migration,
        } => migrated(record, step, fingerprint, json, &migration, now_ms),
        Input::Park { reason } => park(record, &reason, now_ms),
        Input::Resume { note } => resume(record, &note, now_ms),
        Input::RemoveSignal { nonce, note } => remove_signal(record, nonce, &note, now_ms),
        Input::SendSignal { signal, bound } => {
            refuse_if_settled(record)?;
            let mut d = Decision::nothing();
            let bound = record.signal_bound.unwrap_or(bound);
            let wake = Effect::WakeIfWaiting {
                queue: record.queue.clone(),
                signal: signal.name.clone(),
            };
            d.effects.push(Effect::AppendSignal { signal, bound });
            d.effects.push(wake);
            Ok(d)
        }
        Input::RequestStop(interrupt) => request_stop(record, interrupt, now_ms),
        Input::Wake => Ok(match record.phase {
            Phase::Settled { .. } | Phase::Parked { .. } => Decision::nothing(),
            _ => {
                let mut d = Decision::nothing();
                d.effects.push(dispatch_own(record));
                d
            }
        }),
    }
}

/// The decision that creates `record`, a new run at seq 0: written only
/// where no run has its id, with a `created` history entry, its first task
/// queued, and whatever an earlier run of that id left behind (a history, a
/// signal buffer) dropped.
pub fn create(record: RunRecord) -> Decision {
    let history = HistoryEntry::of(&record, "created".to_owned());
    let effects = vec![
        Effect::TrimHistory,
        Effect::DropSignals,
        Effect::Dispatch {
            queue: record.queue.clone(),
        },
        // An earlier run of this id may still be listed as settled.
        Effect::Index {
            index: RunIndex::Active,
            score_ms: record.created_at_ms,
            from: None,
        },
    ];
    Decision {
        write: Write::Record(Box::new(record)),
        history: Some(history),
        effects,
        follow_ups: Vec::new(),
        exclusive: false,
    }
}

/// The decision that parks a run whose stored record does not read:
/// status, reason, `seq` and update time are written, everything else is
/// left for an operator. The new `seq` is one past the highest of the
/// stored one (when it reads) and the history's last, so the history never
/// goes backwards, even when `seq` itself is what does not read.
pub fn park_unreadable(
    reason: &str,
    stored_seq: Option<u64>,
    last_history_seq: Option<u64>,
    now_ms: u64,
) -> Decision {
    let seq = stored_seq.max(last_history_seq).map_or(1, |s| s + 1);
    let reason = format!("the stored record cannot be read: {reason}");
    let history = HistoryEntry::new(
        seq,
        String::new(),
        Status::Parked,
        format!("parked: {reason}"),
        now_ms,
    );
    Decision {
        write: Write::Status {
            status: Status::Parked,
            reason,
            seq,
            updated_at_ms: now_ms,
        },
        history: Some(history),
        effects: vec![
            Effect::Release,
            Effect::Index {
                index: RunIndex::Attention,
                score_ms: now_ms,
                from: None,
            },
            Effect::Publish {
                notice: Notice::Settled,
            },
        ],
        follow_ups: Vec::new(),
        exclusive: false,
    }
}

/// The name a buffered signal whose stored entry does not read is shown
/// with (its text is its payload, its nonce 0).
pub const UNREADABLE_SIGNAL: &str = "(unreadable)";

/// The decision that wakes a run whose record does not read (applied under
/// [`Guard::Exists`](super::Guard::Exists)): a task on `queue`, so that a
/// worker acquires it and parks it with the reason.
pub fn wake_unreadable(queue: &str) -> Decision {
    let mut d = Decision::nothing();
    d.effects.push(Effect::Dispatch {
        queue: queue.to_owned(),
    });
    d
}

/// The next record of a transition: `seq` one up, the attempt count of the
/// finished work cleared.
fn next_of(record: &RunRecord, now_ms: u64) -> RunRecord {
    let mut next = record.clone();
    next.seq += 1;
    next.updated_at_ms = now_ms;
    next.attempts = 0;
    next.last_error = None;
    next
}

/// Like [`next_of`], for a transition that replaces the phase: the old
/// phase (with its state, which can be large) is not copied. The phase
/// is a placeholder the caller overwrites.
fn next_of_new_phase(record: &RunRecord, now_ms: u64) -> RunRecord {
    RunRecord {
        id: record.id.clone(),
        workflow: record.workflow.clone(),
        queue: record.queue.clone(),
        seq: record.seq + 1,
        phase: Phase::Settled {
            outcome: Outcome::TimedOut,
        },
        compensations: record.compensations.clone(),
        input: record.input.clone(),
        attempts: 0,
        last_error: None,
        interrupt: record.interrupt.clone(),
        deadline_ms: record.deadline_ms,
        signal_bound: record.signal_bound,
        queries: BTreeMap::new(),
        patches: record.patches.clone(),
        parent: record.parent.clone(),
        generation: record.generation,
        signals: record.signals.clone(),
        trace: record.trace.clone(),
        created_at_ms: record.created_at_ms,
        updated_at_ms: now_ms,
    }
}

fn impossible(record: &RunRecord, input: &'static str) -> Refusal {
    Refusal::Impossible {
        id: record.id.clone(),
        status: record.status(),
        input,
    }
}

fn refuse_if_settled(record: &RunRecord) -> Result<(), Refusal> {
    match &record.phase {
        Phase::Settled { outcome } => Err(Refusal::Settled {
            id: record.id.clone(),
            status: outcome.status(),
        }),
        _ => Ok(()),
    }
}

fn dispatch_own(record: &RunRecord) -> Effect {
    Effect::Dispatch {
        queue: record.queue.clone(),
    }
}

/// A transition's decision: the record, its history entry, the effects.
fn transition(next: RunRecord, event: String, effects: Vec<Effect>) -> Decision {
    let history = HistoryEntry::of(&next, event);
    Decision {
        write: Write::Record(Box::new(next)),
        history: Some(history),
        effects,
        follow_ups: Vec::new(),
        exclusive: false,
    }
}

/// The earlier of `at` and the run's execution deadline.
fn before_deadline(record: &RunRecord, at: Option<u64>) -> Option<u64> {
    match (at, record.deadline_ms) {
        (Some(a), Some(d)) => Some(a.min(d)),
        (a, d) => a.or(d),
    }
}

fn after(now_ms: u64, d: Duration) -> u64 {
    now_ms.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Clears a stop request the transition acted on (or that no longer
/// matters because the run ends).
fn clear_interrupt(record: &RunRecord, effects: &mut Vec<Effect>) {
    if let Some(interrupt) = &record.interrupt {
        effects.push(Effect::ClearInterrupt {
            interrupt: interrupt.clone(),
        });
    }
}

/// Ends `next` with `outcome`; returns the decision of that transition.
fn settle(record: &RunRecord, mut next: RunRecord, outcome: Outcome, event: String) -> Decision {
    next.phase = Phase::Settled { outcome };
    let now_ms = next.updated_at_ms;
    let mut effects = vec![Effect::Release];
    clear_interrupt(record, &mut effects);
    effects.extend([
        Effect::ClearTimer {
            queue: record.queue.clone(),
        },
        Effect::DropSignals,
        Effect::Index {
            index: RunIndex::Done,
            score_ms: now_ms,
            from: Some(RunIndex::of(record.status())),
        },
        Effect::Expire,
        Effect::Publish {
            notice: Notice::Settled,
        },
    ]);
    next.signals.clear();
    next.interrupt = None;
    let parent = next.parent.clone();
    let mut d = transition(next, event, effects);
    if let Some(parent) = parent {
        d.follow_ups.push(FollowUp::WakeParent { parent });
    }
    d
}

/// Parks `next` for an operator.
fn park_next(
    record: &RunRecord,
    mut next: RunRecord,
    kind: ParkKind,
    reason: String,
    resume_to: Phase,
    event: String,
    extra: Vec<Effect>,
) -> Decision {
    next.phase = Phase::Parked {
        kind,
        reason,
        resume_to: Some(Box::new(resume_to)),
    };
    let now_ms = next.updated_at_ms;
    let mut effects = vec![Effect::Release];
    effects.extend(extra);
    effects.extend([
        Effect::ClearTimer {
            queue: record.queue.clone(),
        },
        Effect::Index {
            index: RunIndex::Attention,
            score_ms: now_ms,
            from: Some(RunIndex::of(record.status())),
        },
        Effect::Publish {
            notice: Notice::Settled,
        },
    ]);
    let parent = next.parent.clone();
    let mut d = transition(next, event, effects);
    if let Some(parent) = parent {
        d.follow_ups.push(FollowUp::WakeParent { parent });
    }
    d
}
