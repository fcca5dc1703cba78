//! Everything that can happen to a run: the inputs of
//! [`decide`](crate::core::decide).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::{Interrupt, SignalEntry};

/// Something that happened to a run, or that someone asks of it.
// One input is made per transition and consumed at once: its size does not
// matter, and boxing the step would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Input {
    // -- From the worker holding the run --------------------------------
    /// The workflow's step function ran, resumed by `cause`.
    Stepped {
        /// What resumed the state.
        cause: Cause,
        /// What the step function returned.
        step: StepOutcome,
        /// The query values after the step.
        queries: BTreeMap<String, Value>,
    },
    /// An activity that runs on another queue's workers finished there: its
    /// outcome is recorded for the workflow's own worker.
    OutcomeRecorded {
        /// How the activity ended.
        cause: Cause,
    },
    /// An attempt of the pending activity or compensation failed and will
    /// be tried again after `retry_in`.
    AttemptFailed {
        /// The attempt that failed (1 for the first).
        attempt: u32,
        /// Its error, as text.
        message: String,
        /// The backoff before the next attempt.
        retry_in: Duration,
    },
    /// The compensation on top of the stack ran.
    Compensated,
    /// The compensation on top of the stack failed for good.
    CompensationGaveUp {
        /// How many attempts it had.
        attempts: u32,
        /// The last error, as text.
        message: String,
    },
    /// The compensation stack is empty: the run ends.
    CompensationsDone,
    /// A stop request, or the execution deadline, is acted on.
    Stop(Stop),
    /// The worker gives the run up without a transition: it waits for
    /// something not there yet, or its work belongs to another queue.
    Yield {
        /// Wake the run at this time (a durable timer).
        wake_at_ms: Option<u64>,
        /// Queue a task for the run on this queue.
        dispatch: Option<String>,
        /// The signal the run waits for: if one came meanwhile, the worker
        /// keeps the run instead.
        await_signal: Option<String>,
    },
    /// A state checkpointed by older code was migrated to this code's
    /// layout (see [`Migration`](crate::Migration)).
    Migrated {
        /// The new state's name.
        step: String,
        /// Its layout fingerprint.
        fingerprint: String,
        /// The new state, as JSON.
        json: Value,
        /// The migration's name, for the history.
        migration: String,
    },
    /// The run cannot go on: park it for an operator.
    Park {
        /// Why, for the operator.
        reason: String,
    },

    // -- From clients and operators --------------------------------------
    /// An operator puts a parked run or a failed compensation back to work.
    Resume {
        /// Why, for the history.
        note: String,
    },
    /// An operator removes a buffered signal (one that parks the run, say).
    RemoveSignal {
        /// The signal's nonce.
        nonce: u64,
        /// Why, for the history.
        note: String,
    },
    /// A client sends a signal.
    SendSignal {
        /// The signal.
        signal: SignalEntry,
        /// The sender's bound on waiting signals, for a run started without
        /// one of its own.
        bound: u32,
    },
    /// A client asks the run to stop (cancel or terminate).
    RequestStop(Interrupt),
    /// Something the run may wait for changed (a child settled): look again.
    Wake,
}

/// Why a run stops before its workflow returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stop {
    /// Cancelled on request: compensate, end cancelled.
    Cancel {
        /// Why, as the requester gave it.
        reason: String,
    },
    /// Terminated on request: end at once, no compensation.
    Terminate {
        /// Why, as the requester gave it.
        reason: String,
    },
    /// The execution deadline passed: compensate, end timed out.
    DeadlinePassed,
}

/// What resumed a state.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Cause {
    /// The run started (or continued as new).
    Started,
    /// The pending activity succeeded.
    ActivitySucceeded {
        /// Its outcome (JSON of `Ok(output)`).
        outcome: Value,
        /// The compensation its success makes owed: activity name and input.
        compensation: Option<(String, Value)>,
    },
    /// The pending activity failed for good.
    ActivityGaveUp {
        /// Its outcome (JSON of `Err(ActivityError)`).
        outcome: Value,
        /// How many attempts it had.
        attempts: u32,
        /// The last error, as text.
        message: String,
    },
    /// The outcome recorded by another queue's worker is fed to the workflow.
    OutcomeDelivered,
    /// The timer is due.
    TimerFired,
    /// A buffered signal the state waits for arrived.
    SignalReceived {
        /// The signal's nonce (consumed by this transition).
        nonce: u64,
    },
    /// The signal wait's deadline passed.
    SignalTimedOut,
    /// The child run settled, or its id belongs to another workflow type.
    ChildSettled {
        /// What happened, for the history (`child c-1 completed`).
        what: String,
    },
}

/// What a workflow's step function returned, as data.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StepOutcome {
    /// The workflow suspended in a new state, with a command.
    Suspend {
        /// The new state's name.
        step: String,
        /// Its layout fingerprint.
        fingerprint: String,
        /// The state, as JSON.
        json: Value,
        /// What it waits for.
        command: Command,
    },
    /// The workflow returned `Ok`.
    Completed {
        /// The return value, as JSON.
        output: Value,
    },
    /// The workflow returned `Err`.
    Failed {
        /// The error, as JSON.
        error: Value,
        /// Its text.
        message: String,
    },
    /// The workflow continues as a new generation.
    ContinueAsNew {
        /// The new generation's input.
        input: Value,
        /// Its start state's name.
        step: String,
        /// Its start state's fingerprint.
        fingerprint: String,
        /// Its start state, as JSON.
        json: Value,
        /// The patches the code knows.
        patches: Vec<String>,
    },
}

/// What a suspended state waits for, as data (the owned form of
/// [`crate::Command`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Command {
    /// Run an activity.
    Activity {
        /// Its registered name.
        activity: String,
        /// Its arguments, as JSON.
        input: Value,
        /// The queue of the workers that run it, if not the workflow's.
        queue: Option<String>,
    },
    /// Sleep.
    Sleep {
        /// How long.
        duration: Duration,
    },
    /// Wait for a signal.
    Signal {
        /// Its name.
        name: String,
        /// How long at most.
        timeout: Option<Duration>,
    },
    /// Start a child run and wait for it to settle.
    Child {
        /// Its workflow type.
        workflow: String,
        /// Its workflow id.
        id: String,
        /// Its arguments.
        input: Value,
        /// Its start state, as JSON.
        start_state: Value,
        /// Its start state's fingerprint.
        start_fp: String,
        /// Its task queue.
        queue: String,
        /// The patches its code knows.
        patches: Vec<String>,
    },
}

impl From<crate::workflow::Command> for Command {
    fn from(c: crate::workflow::Command) -> Self {
        use crate::workflow::Command as C;
        match c {
            C::Activity {
                activity,
                input,
                queue,
                ..
            } => Command::Activity {
                activity: activity.to_owned(),
                input,
                queue: queue.map(str::to_owned),
            },
            C::Sleep { duration, .. } => Command::Sleep { duration },
            C::Signal { name, timeout, .. } => Command::Signal {
                name: name.to_owned(),
                timeout,
            },
            C::Child {
                workflow,
                id,
                input,
                start_state,
                start_fp,
                queue,
                patches,
                ..
            } => Command::Child {
                workflow: workflow.to_owned(),
                id,
                input,
                start_state,
                start_fp: start_fp.to_owned(),
                queue: queue.to_owned(),
                patches: patches.iter().map(|p| (*p).to_owned()).collect(),
            },
        }
    }
}
