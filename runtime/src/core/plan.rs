//! What a worker holding a run does next: the other pure half of the core.
//! [`plan`] looks at the record and says which I/O comes before the next
//! [`decide`](crate::core::decide): run an activity, run the workflow's
//! step function, look at a child — or nothing, and decide at once.

use std::time::Duration;

use serde_json::{Value, json};

use super::input::{Cause, Input, Stop};
use super::{CompensationEntry, Interrupt, Outcome, Phase, RunRecord, StateSnapshot, Wait, Work};
use crate::workflow::Resume;

/// How long a parent waiting for a child sleeps before looking again, in
/// case the child's wake-up was lost.
pub const CHILD_RECHECK: Duration = Duration::from_secs(60);

/// What the worker holding the run can do.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities<'a> {
    /// Whether it has the run's workflow type registered.
    pub knows_workflow: bool,
    /// The task queues it serves.
    pub queues: &'a [String],
    /// The queue of the task it took the run for.
    pub task_queue: &'a str,
    /// The workflow types it knows, for messages.
    pub known_workflows: &'a [&'a str],
}

/// The next thing a worker does with a run it holds.
// Made once per transition and consumed at once (see `Input`).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Action {
    /// Nothing to carry out first: decide this input now.
    Decide(Input),
    /// Run the workflow's step function with `resume`, then decide
    /// [`Input::Stepped`] with `cause`.
    Step {
        /// What resumes the state (for the history).
        cause: Cause,
        /// What the step function is fed.
        resume: Resume,
    },
    /// Run the pending activity (attempts, retries), then decide its end.
    RunActivity {
        /// Its registered name.
        activity: String,
        /// The state waiting for it.
        step: String,
        /// Its frozen arguments.
        input: Value,
        /// Its idempotency key.
        key: String,
    },
    /// Run the compensation on top of the stack, then decide its end.
    RunCompensation {
        /// The compensation.
        entry: CompensationEntry,
    },
    /// Read the child run the state waits for, then [`child_settled`].
    CheckChild {
        /// The child's id.
        id: String,
    },
}

/// The stop the run must act on now, if any.
pub fn stop_due(record: &RunRecord, now_ms: u64) -> Option<Stop> {
    let forward = record.phase.is_forward();
    let live = forward || matches!(record.phase, Phase::Compensating { .. });
    match &record.interrupt {
        Some(Interrupt::Terminate { reason }) if live => {
            return Some(Stop::Terminate {
                reason: reason.clone(),
            });
        }
        Some(Interrupt::Cancel { reason }) if forward => {
            return Some(Stop::Cancel {
                reason: reason.clone(),
            });
        }
        _ => {}
    }
    let late = record.deadline_ms.is_some_and(|d| now_ms >= d);
    (forward && late).then_some(Stop::DeadlinePassed)
}

/// The earlier of `at` and the run's execution deadline.
fn before_deadline(record: &RunRecord, at: Option<u64>) -> Option<u64> {
    match (at, record.deadline_ms) {
        (Some(a), Some(d)) => Some(a.min(d)),
        (a, d) => a.or(d),
    }
}

fn release_until(record: &RunRecord, at: Option<u64>) -> Action {
    Action::Decide(Input::Yield {
        wake_at_ms: before_deadline(record, at),
        dispatch: None,
        await_signal: None,
    })
}

/// Gives the run up until what it waits for comes: its timer (capped at
/// the execution deadline), a signal (if one came meanwhile the worker
/// keeps the run), a child's recheck.
fn release_while_waiting(record: &RunRecord, wait: &Wait, now_ms: u64) -> Action {
    let (at, await_signal) = match wait {
        Wait::Timer { until_ms, .. } => (Some(*until_ms), None),
        Wait::Signal {
            name, deadline_ms, ..
        } => (*deadline_ms, Some(name.clone())),
        Wait::Child { .. } => (Some(child_recheck(now_ms)), None),
    };
    Action::Decide(Input::Yield {
        wake_at_ms: before_deadline(record, at),
        dispatch: None,
        await_signal,
    })
}

fn child_recheck(now_ms: u64) -> u64 {
    now_ms.saturating_add(u64::try_from(CHILD_RECHECK.as_millis()).unwrap_or(0))
}

/// What the worker does next with `record`, which it holds.
pub fn plan(record: &RunRecord, caps: &Capabilities<'_>, now_ms: u64) -> Action {
    if let Some(stop) = stop_due(record, now_ms) {
        return Action::Decide(Input::Stop(stop));
    }
    let serves = |queue: &Option<String>| {
        queue
            .as_deref()
            .is_none_or(|q| caps.queues.iter().any(|s| s == q))
    };
    match &record.phase {
        Phase::Settled { .. } | Phase::Parked { .. } => Action::Decide(Input::Yield {
            wake_at_ms: None,
            dispatch: None,
            await_signal: None,
        }),
        Phase::Compensating { .. } => match record.compensations.last() {
            Some(top) => Action::RunCompensation { entry: top.clone() },
            None => Action::Decide(Input::CompensationsDone),
        },
        Phase::Running {
            work:
                Work::Activity {
                    activity,
                    step,
                    input,
                    key,
                    queue,
                    outcome: None,
                },
            ..
        } => {
            if serves(queue) {
                Action::RunActivity {
                    activity: activity.clone(),
                    step: step.clone(),
                    input: input.clone(),
                    key: key.clone(),
                }
            } else {
                // The activity runs on another queue's workers; the run's
                // execution deadline still wakes it here.
                Action::Decide(Input::Yield {
                    wake_at_ms: record.deadline_ms,
                    dispatch: Some(queue.clone().unwrap_or_default()),
                    await_signal: None,
                })
            }
        }
        _ if !caps.knows_workflow => not_here(record, caps, now_ms),
        Phase::Running { work, .. } => match work {
            Work::Start => Action::Step {
                cause: Cause::Started,
                resume: Resume::Start,
            },
            Work::Activity { outcome, .. } => Action::Step {
                cause: Cause::OutcomeDelivered,
                resume: Resume::Activity(outcome.clone().unwrap_or(Value::Null)),
            },
        },
        Phase::Waiting { wait, .. } => match wait {
            Wait::Timer { until_ms, .. } => {
                if now_ms >= *until_ms {
                    Action::Step {
                        cause: Cause::TimerFired,
                        resume: Resume::Timer,
                    }
                } else {
                    release_until(record, Some(*until_ms))
                }
            }
            Wait::Signal {
                name, deadline_ms, ..
            } => {
                if let Some(signal) = record.signals.iter().find(|s| s.name == *name) {
                    Action::Step {
                        cause: Cause::SignalReceived {
                            nonce: signal.nonce,
                        },
                        resume: Resume::Signal(Some(signal.payload.clone())),
                    }
                } else if deadline_ms.is_some_and(|d| now_ms >= d) {
                    Action::Step {
                        cause: Cause::SignalTimedOut,
                        resume: Resume::Signal(None),
                    }
                } else {
                    release_while_waiting(record, wait, now_ms)
                }
            }
            Wait::Child { id, .. } => Action::CheckChild { id: id.clone() },
        },
    }
}

/// A run whose workflow this worker does not know: released, its waits
/// re-armed, when nothing is due that needs the workflow (a timer not yet
/// due, a signal not yet there, a child); released as well when the task
/// came from another queue (an activity queue's stale task); parked when it
/// came from the workflow's own queue and must step (the worker is
/// misconfigured).
fn not_here(record: &RunRecord, caps: &Capabilities<'_>, now_ms: u64) -> Action {
    if let Some(wait) = record.wait() {
        let due = match wait {
            Wait::Timer { until_ms, .. } => now_ms >= *until_ms,
            Wait::Signal {
                name, deadline_ms, ..
            } => {
                record.signals.iter().any(|s| s.name == *name)
                    || deadline_ms.is_some_and(|d| now_ms >= d)
            }
            Wait::Child { .. } => false,
        };
        if !due || caps.task_queue != record.queue {
            return release_while_waiting(record, wait, now_ms);
        }
    }
    if caps.task_queue == record.queue {
        Action::Decide(Input::Park {
            reason: format!(
                "workflow type `{}` is not registered on this worker (it knows: {})",
                record.workflow,
                caps.known_workflows.join(", ")
            ),
        })
    } else {
        Action::Decide(Input::Yield {
            wake_at_ms: None,
            dispatch: None,
            await_signal: None,
        })
    }
}

/// What the parent does once it has read the child it waits for.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ChildCheck {
    /// The child settled (or its id is taken): step with this.
    Step {
        /// For the history.
        cause: Cause,
        /// The child's outcome, for the workflow.
        resume: Resume,
    },
    /// The child does not exist yet: create it, then yield until the
    /// recheck time.
    Start {
        /// The child's first record.
        child: Box<RunRecord>,
        /// Then decide this.
        then: Input,
    },
    /// The child runs: yield until it wakes the parent, or the recheck.
    Wait(Input),
}

/// What a parent waiting on a child does, given the child's record as read
/// (`None`: no such run).
pub fn child_settled(record: &RunRecord, child: Option<&RunRecord>, now_ms: u64) -> ChildCheck {
    let wait = Input::Yield {
        wake_at_ms: before_deadline(record, Some(child_recheck(now_ms))),
        dispatch: None,
        await_signal: None,
    };
    let Some(Wait::Child {
        workflow,
        id,
        input,
        start_state,
        start_fp,
        queue,
        patches,
        ..
    }) = record.wait()
    else {
        return ChildCheck::Wait(wait);
    };
    match child {
        Some(c) if c.workflow != *workflow => {
            let taken = format!(
                "run `{id}` is a `{}` workflow, not a `{workflow}`",
                c.workflow
            );
            ChildCheck::Step {
                cause: Cause::ChildSettled {
                    what: "child id taken".to_owned(),
                },
                resume: Resume::Child(json!({ "Err": { "id_taken": taken } })),
            }
        }
        Some(c) if c.status().is_settled() => ChildCheck::Step {
            cause: Cause::ChildSettled {
                what: format!("child {id} {}", c.status()),
            },
            resume: Resume::Child(child_outcome(c)),
        },
        Some(_) => ChildCheck::Wait(wait),
        None => {
            let start = StateSnapshot::new("start", start_fp.clone(), start_state.clone());
            let mut run = RunRecord::new_run(
                id.clone(),
                workflow.clone(),
                queue.clone(),
                input.clone(),
                start,
                now_ms,
            );
            run.parent = Some(record.id.clone());
            run.patches.clone_from(patches);
            ChildCheck::Start {
                child: Box::new(run),
                then: wait,
            }
        }
    }
}

/// The JSON of `Result<Output, ChildError<Error>>` for a settled child.
fn child_outcome(child: &RunRecord) -> Value {
    match &child.phase {
        Phase::Settled { outcome } => match outcome {
            Outcome::Completed { output } => json!({ "Ok": output }),
            Outcome::Failed { error, .. } => json!({ "Err": { "failed": error } }),
            Outcome::Cancelled { reason } => json!({ "Err": { "cancelled": reason } }),
            Outcome::Terminated { reason } => json!({ "Err": { "terminated": reason } }),
            Outcome::TimedOut => json!({ "Err": "timed_out" }),
        },
        Phase::Parked { reason, .. } => json!({ "Err": { "stuck": reason } }),
        _ => json!({ "Err": { "stuck": child.reason().unwrap_or_default() } }),
    }
}

/// The park a run gets when its task was delivered more than `max` times:
/// every worker that took it died while driving it.
pub fn poisoned(deliveries: u32, max: u32) -> Option<Input> {
    (deliveries > max).then(|| Input::Park {
        reason: format!(
            "its task was delivered {deliveries} times without the run making progress: every \
             worker that took it died (a crash, an out-of-memory kill?); inspect it before \
             resuming it"
        ),
    })
}
