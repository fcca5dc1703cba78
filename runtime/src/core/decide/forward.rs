//! Forward transitions: the step function ran, an activity finished
//! elsewhere, an attempt failed.

use super::*;

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

pub(super) fn stepped(
    record: &RunRecord,
    cause: Cause,
    step: StepOutcome,
    queries: std::collections::BTreeMap<String, serde_json::Value>,
    now_ms: u64,
) -> Result<Decision, Refusal> {
    let (_, mut event) = resumed_by(record, &cause)?;
    // Every outcome of a step replaces the phase (and the queries).
    let mut next = next_of_new_phase(record, now_ms);
    next.queries = queries;
    next.compensations.extend(owed(record, &cause));
    let mut consumed = Vec::new();
    if matches!(record.phase, Phase::Waiting { .. }) {
        // A wait's timer (a signal's deadline, a child's recheck) has no
        // more business waking the run.
        consumed.push(Effect::ClearTimer {
            queue: record.queue.clone(),
        });
    }
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

pub(super) fn outcome_recorded(
    record: &RunRecord,
    cause: Cause,
    now_ms: u64,
) -> Result<Decision, Refusal> {
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

pub(super) fn attempt_failed(
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

/// A state of older code migrated to this code's layout: the state is
/// replaced (and the step named in the pending work or wait with it); the
/// pending activity keeps its idempotency key.
pub(super) fn migrated(
    record: &RunRecord,
    step: String,
    fingerprint: String,
    json: serde_json::Value,
    migration: &str,
    now_ms: u64,
) -> Result<Decision, Refusal> {
    let Some(from) = record.phase.state().filter(|_| record.phase.is_forward()) else {
        return Err(impossible(record, "a migration"));
    };
    let event = format!(
        "migrated state `{}` (layout {}) to `{step}` (layout {fingerprint}) with `{migration}`",
        from.step, from.fingerprint
    );
    let mut next = record.clone();
    next.seq += 1;
    next.updated_at_ms = now_ms;
    let snapshot = StateSnapshot::new(step.clone(), fingerprint, json);
    match &mut next.phase {
        Phase::Running { state, work } => {
            *state = snapshot;
            if let Work::Activity { step: s, .. } = work {
                s.clone_from(&step);
            }
        }
        Phase::Waiting { state, wait } => {
            *state = snapshot;
            match wait {
                Wait::Timer { step: s, .. }
                | Wait::Signal { step: s, .. }
                | Wait::Child { step: s, .. } => s.clone_from(&step),
            }
        }
        _ => return Err(impossible(record, "a migration")),
    }
    Ok(transition(next, event, vec![Effect::KeepLease]))
}
