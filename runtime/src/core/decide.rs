//! The rules of a run's life, in one pure function: no I/O, no clock
//! reads, no tokio. Given a record, an input and the time, [`decide`]
//! returns the next record, its history entry and the effects a store
//! applies with it — or refuses the input.

use std::time::Duration;

use super::decision::{Decision, Effect, FollowUp, Notice, Refusal, RunIndex, Write};
use super::input::{Cause, Command, Input, StepOutcome, Stop};
use super::record::{
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
        } => Ok(yielded(record, wake_at_ms, dispatch)),
        Input::Park { reason } => park(record, &reason, now_ms),
        Input::Resume { note } => resume(record, &note, now_ms),
        Input::RemoveSignal { nonce, note } => remove_signal(record, nonce, &note, now_ms),
        Input::SendSignal { signal, bound } => {
            refuse_if_settled(record)?;
            let waits =
                matches!(record.wait(), Some(Wait::Signal { name, .. }) if *name == signal.name);
            let mut d = Decision::nothing();
            let bound = record.signal_bound.unwrap_or(bound);
            d.effects.push(Effect::AppendSignal { signal, bound });
            if waits {
                d.effects.push(dispatch_own(record));
            }
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
        Effect::Index {
            index: RunIndex::Active,
            score_ms: record.created_at_ms,
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
        write: Write::ParkUnreadable {
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
            },
            Effect::Publish {
                notice: Notice::Settled,
            },
        ],
        follow_ups: Vec::new(),
        exclusive: false,
    }
}

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

/// Checks that `cause` can resume the record's phase; returns the state's
/// name and the history text of the cause.
fn resumed_by(record: &RunRecord, cause: &Cause) -> Result<(String, String), Refusal> {
    let bad = || impossible(record, "a step resumed by this cause");
    let (state, text) = match (&record.phase, cause) {
        (
            Phase::Running {
                state,
                work: Work::Start,
            },
            Cause::Started,
        ) => (state, "started".to_owned()),
        (
            Phase::Running {
                state,
                work:
                    Work::Activity {
                        step,
                        outcome: None,
                        ..
                    },
            },
            Cause::ActivitySucceeded { .. },
        ) => (state, format!("{step} completed")),
        (
            Phase::Running {
                state,
                work:
                    Work::Activity {
                        step,
                        outcome: None,
                        ..
                    },
            },
            Cause::ActivityGaveUp {
                attempts, message, ..
            },
        ) => (
            state,
            format!("{step} failed after {attempts} attempt(s): {message}"),
        ),
        (
            Phase::Running {
                state,
                work:
                    Work::Activity {
                        step,
                        outcome: Some(_),
                        ..
                    },
            },
            Cause::OutcomeDelivered,
        ) => (state, format!("{step} completed")),
        (
            Phase::Waiting {
                state,
                wait: Wait::Timer { step, .. },
            },
            Cause::TimerFired,
        ) => (state, format!("{step} timer fired")),
        (
            Phase::Waiting {
                state,
                wait: Wait::Signal { step, name, .. },
            },
            Cause::SignalReceived { nonce },
        ) => {
            if !record
                .signals
                .iter()
                .any(|s| s.nonce == *nonce && s.name == *name)
            {
                return Err(bad());
            }
            (state, format!("{step} received signal {name}"))
        }
        (
            Phase::Waiting {
                state,
                wait: Wait::Signal { step, name, .. },
            },
            Cause::SignalTimedOut,
        ) => (state, format!("{step} gave up waiting for signal {name}")),
        (
            Phase::Waiting {
                state,
                wait: Wait::Child { step, .. },
            },
            Cause::ChildSettled { what },
        ) => (state, format!("{step}: {what}")),
        _ => return Err(bad()),
    };
    Ok((state.step.clone(), text))
}

/// The compensation an activity's success makes owed.
fn owed(record: &RunRecord, cause: &Cause) -> Option<CompensationEntry> {
    let (
        Cause::ActivitySucceeded {
            compensation: Some((activity, input)),
            ..
        },
        Some(Work::Activity { step, key, .. }),
    ) = (cause, record.work())
    else {
        return None;
    };
    Some(CompensationEntry {
        step: step.clone(),
        activity: activity.clone(),
        input: input.clone(),
        key: format!("{key}/undo"),
    })
}

fn stepped(
    record: &RunRecord,
    cause: Cause,
    step: StepOutcome,
    queries: std::collections::BTreeMap<String, serde_json::Value>,
    now_ms: u64,
) -> Result<Decision, Refusal> {
    let (_, mut event) = resumed_by(record, &cause)?;
    let mut next = next_of(record, now_ms);
    next.queries = queries;
    next.compensations.extend(owed(record, &cause));
    let mut consumed = Vec::new();
    if let Cause::SignalReceived { nonce } = cause {
        next.signals.retain(|s| s.nonce != nonce);
        consumed.push(Effect::ConsumeSignal { nonce });
    }
    let decision = match step {
        StepOutcome::Suspend {
            step: name,
            fingerprint,
            json,
            command,
        } => {
            let state = StateSnapshot::new(name.clone(), fingerprint, json);
            let mut effects = consumed;
            next.phase = match command {
                Command::Activity {
                    activity,
                    input,
                    queue,
                } => {
                    effects.push(Effect::KeepLease);
                    Phase::Running {
                        state,
                        work: Work::Activity {
                            key: format!("{}/{name}/{}", record.id, next.seq),
                            activity,
                            step: name.clone(),
                            input,
                            queue,
                            outcome: None,
                        },
                    }
                }
                Command::Sleep { duration } => {
                    let until_ms = after(now_ms, duration);
                    effects.push(Effect::Release);
                    if let Some(at_ms) = before_deadline(record, Some(until_ms)) {
                        effects.push(Effect::ArmTimer {
                            queue: record.queue.clone(),
                            at_ms,
                        });
                    }
                    Phase::Waiting {
                        state,
                        wait: Wait::Timer {
                            step: name.clone(),
                            until_ms,
                        },
                    }
                }
                Command::Signal {
                    name: signal,
                    timeout,
                } => {
                    let deadline_ms = timeout.map(|t| after(now_ms, t));
                    effects.push(Effect::AwaitSignal {
                        name: signal.clone(),
                    });
                    effects.push(Effect::Release);
                    if let Some(at_ms) = before_deadline(record, deadline_ms) {
                        effects.push(Effect::ArmTimer {
                            queue: record.queue.clone(),
                            at_ms,
                        });
                    }
                    Phase::Waiting {
                        state,
                        wait: Wait::Signal {
                            step: name.clone(),
                            name: signal,
                            deadline_ms,
                        },
                    }
                }
                Command::Child {
                    workflow,
                    id,
                    input,
                    start_state,
                    start_fp,
                    queue,
                    patches,
                } => {
                    // The worker looks for the child next, still holding the run.
                    effects.push(Effect::KeepLease);
                    Phase::Waiting {
                        state,
                        wait: Wait::Child {
                            step: name.clone(),
                            workflow,
                            id,
                            input,
                            start_state,
                            start_fp,
                            queue,
                            patches,
                        },
                    }
                }
            };
            event.push_str(&format!("; next {name}"));
            transition(next, event, effects)
        }
        StepOutcome::Completed { output } => {
            next.compensations.clear();
            event.push_str("; completed");
            let mut d = settle(record, next, Outcome::Completed { output }, event);
            d.effects.splice(0..0, consumed);
            d
        }
        StepOutcome::Failed { error, message } => {
            event.push_str(&format!("; returned an error: {message}"));
            if next.compensations.is_empty() {
                let mut d = settle(record, next, Outcome::Failed { error, message }, event);
                d.effects.splice(0..0, consumed);
                d
            } else {
                next.phase = Phase::Compensating {
                    ending: Ending::Failed { error, message },
                };
                let mut effects = consumed;
                effects.push(Effect::KeepLease);
                transition(next, event, effects)
            }
        }
        StepOutcome::ContinueAsNew {
            input,
            step: name,
            fingerprint,
            json,
            patches,
        } => {
            next.generation += 1;
            next.input = input;
            next.patches = patches;
            next.phase = Phase::Running {
                state: StateSnapshot::new(name, fingerprint, json),
                work: Work::Start,
            };
            let event = format!("{event}; continued as new (generation {})", next.generation);
            let mut effects = consumed;
            effects.extend([Effect::TrimHistory, Effect::KeepLease]);
            transition(next, event, effects)
        }
    };
    Ok(decision)
}

fn outcome_recorded(record: &RunRecord, cause: Cause, now_ms: u64) -> Result<Decision, Refusal> {
    let outcome = match &cause {
        Cause::ActivitySucceeded { outcome, .. } | Cause::ActivityGaveUp { outcome, .. } => {
            outcome.clone()
        }
        _ => return Err(impossible(record, "an outcome that is not an activity's")),
    };
    let (_, event) = resumed_by(record, &cause)?;
    let mut next = next_of(record, now_ms);
    next.compensations.extend(owed(record, &cause));
    if let Phase::Running {
        work: Work::Activity { outcome: slot, .. },
        ..
    } = &mut next.phase
    {
        *slot = Some(outcome);
    }
    let back = record.queue.clone();
    let event = format!("{event}; outcome sent to queue {back}");
    Ok(transition(
        next,
        event,
        vec![Effect::Release, Effect::Dispatch { queue: back }],
    ))
}

fn attempt_failed(
    record: &RunRecord,
    attempt: u32,
    message: String,
    retry_in: Duration,
    now_ms: u64,
) -> Result<Decision, Refusal> {
    let label = match (&record.phase, record.compensations.last()) {
        (
            Phase::Running {
                work:
                    Work::Activity {
                        step,
                        outcome: None,
                        ..
                    },
                ..
            },
            _,
        ) => step.clone(),
        (Phase::Compensating { .. }, Some(top)) => {
            format!("compensation {} for {}", top.activity, top.step)
        }
        _ => return Err(impossible(record, "a failed attempt")),
    };
    let mut next = next_of(record, now_ms);
    next.attempts = attempt;
    let event = format!("{label} attempt {attempt} failed: {message}; retrying in {retry_in:?}");
    next.last_error = Some(message);
    Ok(transition(next, event, vec![Effect::KeepLease]))
}

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

fn compensated(record: &RunRecord, now_ms: u64) -> Result<Decision, Refusal> {
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

fn compensation_gave_up(
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

fn compensations_done(record: &RunRecord, now_ms: u64) -> Result<Decision, Refusal> {
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

fn stopped(record: &RunRecord, stop: Stop, now_ms: u64) -> Result<Decision, Refusal> {
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

fn yielded(record: &RunRecord, wake_at_ms: Option<u64>, dispatch: Option<String>) -> Decision {
    let mut d = Decision::nothing();
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

fn park(record: &RunRecord, reason: &str, now_ms: u64) -> Result<Decision, Refusal> {
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

fn operator_event(what: &str, note: &str) -> String {
    if note.is_empty() {
        format!("{what} by an operator")
    } else {
        format!("{what} by an operator: {note}")
    }
}

fn resume(record: &RunRecord, note: &str, now_ms: u64) -> Result<Decision, Refusal> {
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
        },
        Effect::Publish {
            notice: Notice::Resumed,
        },
    ];
    let mut d = transition(next, operator_event("resumed", note), effects);
    d.exclusive = true;
    Ok(d)
}

fn remove_signal(
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
    let what = format!("signal `{}` (nonce {nonce}) removed", signal.name);
    let mut next = record.clone();
    next.seq += 1;
    next.updated_at_ms = now_ms;
    next.signals.retain(|s| s.nonce != nonce);
    let mut d = transition(
        next,
        operator_event(&what, note),
        vec![Effect::ConsumeSignal { nonce }],
    );
    d.exclusive = true;
    Ok(d)
}

fn request_stop(
    record: &RunRecord,
    interrupt: Interrupt,
    now_ms: u64,
) -> Result<Decision, Refusal> {
    refuse_if_settled(record)?;
    match (&record.phase, interrupt) {
        // Nothing drives a parked run: a terminate ends it here and now.
        (Phase::Parked { .. }, Interrupt::Terminate { reason }) => {
            let next = next_of(record, now_ms);
            let event = format!("terminated: {reason}");
            let mut d = settle(record, next, Outcome::Terminated { reason }, event);
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
