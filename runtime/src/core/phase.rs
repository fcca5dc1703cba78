//! Where a run is in its life: its typed phase, and the one-word status
//! derived from it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
/// Where a run is in its life, as one word: the `status` field operators
/// read in Redis. Derived from the [`Phase`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Status {
    /// Moving forward through its states, or waiting for a timer, a signal
    /// or a child.
    Running,
    /// Its compensations are running, last completed step first.
    Compensating,
    /// Returned `Ok`.
    Completed,
    /// Returned `Err`, and every compensation ran.
    Failed,
    /// A compensation failed for good; kept, with its remaining
    /// compensations, for an operator.
    CompensationFailed,
    /// The run cannot go on (a state that no longer decodes, an unknown
    /// workflow type, a panic); kept as it was, for an operator.
    Parked,
    /// Cancelled on request: stopped at a suspension point, compensations run.
    Cancelled,
    /// Terminated by an operator: stopped at once, no compensation run.
    Terminated,
    /// Its execution timeout passed: stopped, compensations run.
    TimedOut,
}

impl Status {
    /// Every status, in declaration order.
    pub const ALL: [Status; 9] = [
        Status::Running,
        Status::Compensating,
        Status::Completed,
        Status::Failed,
        Status::CompensationFailed,
        Status::Parked,
        Status::Cancelled,
        Status::Terminated,
        Status::TimedOut,
    ];

    /// The name stored in records (`running`, `compensation_failed`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Compensating => "compensating",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::CompensationFailed => "compensation_failed",
            Status::Parked => "parked",
            Status::Cancelled => "cancelled",
            Status::Terminated => "terminated",
            Status::TimedOut => "timed_out",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether no worker moves the run any more: it settled for good, or it
    /// waits for an operator (parked, compensation failed).
    pub fn is_settled(self) -> bool {
        !matches!(self, Status::Running | Status::Compensating)
    }

    /// Whether the run waits for an operator (parked, compensation failed).
    pub fn needs_attention(self) -> bool {
        matches!(self, Status::Parked | Status::CompensationFailed)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state a running or waiting run is in: the workflow's state enum,
/// encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StateSnapshot {
    /// The state's stable name (`start`, `charge_card#0`).
    pub step: String,
    /// The fingerprint of the state's layout.
    pub fingerprint: String,
    /// The state enum as JSON (`{"charge_card#0": {"order_id": ..}}`).
    pub json: Value,
}

impl StateSnapshot {
    /// A snapshot.
    pub fn new(step: impl Into<String>, fingerprint: impl Into<String>, json: Value) -> Self {
        StateSnapshot {
            step: step.into(),
            fingerprint: fingerprint.into(),
            json,
        }
    }
}

/// Work a worker does for a running run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Work {
    /// Run the workflow from its start state.
    Start,
    /// Run an activity; its arguments and key were frozen by the checkpoint.
    Activity {
        /// The activity's registered name.
        activity: String,
        /// The state waiting for it.
        step: String,
        /// The arguments, as JSON.
        input: Value,
        /// The idempotency key of this call.
        key: String,
        /// The task queue of the workers that run it, when it is not the
        /// worker driving the workflow.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        /// Its outcome, recorded by a worker of `queue` and waiting to be
        /// fed to the workflow (JSON of `Result<Output, ActivityError>`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<Value>,
    },
}

/// Something outside the worker a run waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Wait {
    /// A time (a durable timer).
    Timer {
        /// The state waiting.
        step: String,
        /// When to resume, milliseconds since the Unix epoch.
        until_ms: u64,
    },
    /// A signal, until `deadline_ms` if given.
    Signal {
        /// The state waiting.
        step: String,
        /// The signal's name.
        name: String,
        /// When to give up waiting, milliseconds since the Unix epoch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline_ms: Option<u64>,
    },
    /// A child run to settle (started by the worker if it does not exist).
    Child {
        /// The state waiting.
        step: String,
        /// The child's workflow type.
        workflow: String,
        /// The child's workflow id.
        id: String,
        /// The child's arguments.
        input: Value,
        /// The child's start state (JSON).
        start_state: Value,
        /// The fingerprint of the child's start state.
        start_fp: String,
        /// The child's task queue.
        queue: String,
        /// The patches the child's code knows.
        #[serde(default)]
        patches: Vec<String>,
    },
}

impl Wait {
    /// The waiting state's name.
    pub fn step(&self) -> &str {
        match self {
            Wait::Timer { step, .. } | Wait::Signal { step, .. } | Wait::Child { step, .. } => step,
        }
    }

    /// What the run waits for, for people: `timer:<UTC time>`,
    /// `signal:<name>`, `child:<id>` (the `waiting` field).
    pub fn describe(&self) -> String {
        match self {
            Wait::Timer { until_ms, .. } => format!("timer:{}", utc_millis(*until_ms)),
            Wait::Signal { name, .. } => format!("signal:{name}"),
            Wait::Child { id, .. } => format!("child:{id}"),
        }
    }
}

/// `2026-12-07T08:00:00.000Z`, for people reading the store.
pub(crate) fn utc_millis(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// How a run that is unwinding its compensations ends once they have run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Ending {
    /// The workflow returned this error: the run ends failed.
    Failed {
        /// The workflow's error, as JSON.
        error: Value,
        /// Its text.
        message: String,
    },
    /// Cancelled on request.
    Cancelled {
        /// Why, as the requester gave it.
        reason: String,
    },
    /// Its execution timeout passed.
    TimedOut,
}

impl Ending {
    /// The status the run settles with.
    pub fn status(&self) -> Status {
        match self {
            Ending::Failed { .. } => Status::Failed,
            Ending::Cancelled { .. } => Status::Cancelled,
            Ending::TimedOut => Status::TimedOut,
        }
    }

    /// The outcome the run settles with.
    pub fn outcome(&self) -> Outcome {
        match self.clone() {
            Ending::Failed { error, message } => Outcome::Failed { error, message },
            Ending::Cancelled { reason } => Outcome::Cancelled { reason },
            Ending::TimedOut => Outcome::TimedOut,
        }
    }

    /// Why the run was stopped, for a cancel or a timeout
    /// (`cancelled: customer asked`).
    pub fn stopped(&self) -> Option<String> {
        match self {
            Ending::Failed { .. } => None,
            Ending::Cancelled { reason } => Some(format!("cancelled: {reason}")),
            Ending::TimedOut => Some(TIMED_OUT.to_owned()),
        }
    }
}

/// The text of an execution timeout, in `reason` and the history.
pub(crate) const TIMED_OUT: &str = "timed out: the execution timeout passed";

/// How a run ended for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The workflow returned `Ok`.
    Completed {
        /// Its return value, as JSON.
        output: Value,
    },
    /// The workflow returned `Err`, and every compensation ran.
    Failed {
        /// The workflow's error, as JSON.
        error: Value,
        /// Its text.
        message: String,
    },
    /// Cancelled on request; its compensations ran.
    Cancelled {
        /// Why, as the requester gave it.
        reason: String,
    },
    /// Terminated: stopped at once, no compensation ran.
    Terminated {
        /// Why, as the requester gave it.
        reason: String,
    },
    /// Its execution timeout passed; its compensations ran.
    TimedOut,
}

impl Outcome {
    /// The status of a run that ended this way.
    pub fn status(&self) -> Status {
        match self {
            Outcome::Completed { .. } => Status::Completed,
            Outcome::Failed { .. } => Status::Failed,
            Outcome::Cancelled { .. } => Status::Cancelled,
            Outcome::Terminated { .. } => Status::Terminated,
            Outcome::TimedOut => Status::TimedOut,
        }
    }

    /// Why a cancelled, terminated or timed-out run was stopped
    /// (`terminated: duplicate order`).
    pub fn stopped(&self) -> Option<String> {
        match self {
            Outcome::Completed { .. } | Outcome::Failed { .. } => None,
            Outcome::Cancelled { reason } => Some(format!("cancelled: {reason}")),
            Outcome::Terminated { reason } => Some(format!("terminated: {reason}")),
            Outcome::TimedOut => Some(TIMED_OUT.to_owned()),
        }
    }
}

/// Why a run waits for an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ParkKind {
    /// It cannot go on: a record or state that does not read, an unknown
    /// workflow type, a panic (status `parked`).
    Stuck,
    /// A compensation failed for good (status `compensation_failed`).
    CompensationFailed,
}

/// Where a run is in its life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// Moving forward: a worker has work to do.
    Running {
        /// The workflow's state.
        state: StateSnapshot,
        /// What the worker does next.
        work: Work,
    },
    /// Waiting for something outside the worker; no worker holds it.
    Waiting {
        /// The workflow's state.
        state: StateSnapshot,
        /// What it waits for.
        wait: Wait,
    },
    /// Unwinding the compensation stack, last pushed first.
    Compensating {
        /// How the run ends once the stack is empty.
        ending: Ending,
    },
    /// Ended for good.
    Settled {
        /// How.
        outcome: Outcome,
    },
    /// Waiting for an operator to repair and resume it.
    Parked {
        /// Stuck, or a failed compensation.
        kind: ParkKind,
        /// Why, for the operator.
        reason: String,
        /// The phase a resume puts the run back in; `None` when the stored
        /// record does not read far enough to know (repair it first).
        resume_to: Option<Box<Phase>>,
    },
}

impl Phase {
    /// The one-word status of this phase.
    pub fn status(&self) -> Status {
        match self {
            Phase::Running { .. } | Phase::Waiting { .. } => Status::Running,
            Phase::Compensating { .. } => Status::Compensating,
            Phase::Settled { outcome } => outcome.status(),
            Phase::Parked {
                kind: ParkKind::Stuck,
                ..
            } => Status::Parked,
            Phase::Parked {
                kind: ParkKind::CompensationFailed,
                ..
            } => Status::CompensationFailed,
        }
    }

    /// The workflow's state, while it has one.
    pub fn state(&self) -> Option<&StateSnapshot> {
        match self {
            Phase::Running { state, .. } | Phase::Waiting { state, .. } => Some(state),
            Phase::Parked {
                resume_to: Some(p), ..
            } => p.state(),
            _ => None,
        }
    }

    /// The phase's ending, while compensating (or parked while compensating).
    pub fn ending(&self) -> Option<&Ending> {
        match self {
            Phase::Compensating { ending } => Some(ending),
            Phase::Parked {
                resume_to: Some(p), ..
            } => p.ending(),
            _ => None,
        }
    }

    /// Whether the run moves forward (running or waiting).
    pub fn is_forward(&self) -> bool {
        matches!(self, Phase::Running { .. } | Phase::Waiting { .. })
    }
}
