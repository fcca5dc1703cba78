//! The checkpoint of one run: everything a worker needs to resume it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Status {
    /// Moving forward through its states.
    Running,
    /// The workflow returned an error; its compensations are running, last
    /// completed step first.
    Compensating,
    /// Returned `Ok`.
    Completed,
    /// Returned `Err`, and every compensation ran.
    Failed,
    /// A compensation failed for good. The run is kept, with its remaining
    /// compensations and the error, for an operator.
    CompensationFailed,
    /// The run cannot go on (a state that no longer decodes, an unknown
    /// workflow type, a panic). Its data is left as it was.
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

    /// The name stored in checkpoints (`running`, `compensation_failed`, ...).
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

    /// Whether the run has stopped: nothing more happens without an operator.
    pub fn is_settled(self) -> bool {
        !matches!(self, Status::Running | Status::Compensating)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a running workflow does next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Pending {
    /// Run the workflow from its start state.
    Start,
    /// Run an activity; the arguments were frozen by the checkpoint.
    Activity {
        /// The activity's registered name.
        activity: String,
        /// The state waiting for it.
        step: String,
        /// The arguments, as JSON.
        input: Value,
        /// The idempotency key of this call.
        key: String,
        /// The task queue of the workers that run it, when it is not run by
        /// the worker driving the workflow.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
    },
    /// Wait until a time (a durable timer).
    Timer {
        /// The state waiting.
        step: String,
        /// When to resume, milliseconds since the Unix epoch.
        until_ms: u64,
    },
    /// Wait for a signal, until `deadline_ms` if given.
    Signal {
        /// The state waiting.
        step: String,
        /// The signal's name.
        name: String,
        /// When to give up waiting, milliseconds since the Unix epoch.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline_ms: Option<u64>,
    },
    /// Wait for a child run to settle (starting it if needed).
    Child {
        /// The state waiting.
        step: String,
        /// The child's workflow type.
        workflow: String,
        /// The child's workflow id.
        id: String,
        /// The child's arguments.
        input: Value,
        /// The child's start state (JSON) and its fingerprint.
        start_state: Value,
        /// The fingerprint of the child's start state.
        start_fp: String,
        /// The child's task queue.
        queue: String,
        /// The child's patches.
        #[serde(default)]
        patches: Vec<String>,
    },
}

impl Pending {
    /// The state that waits, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            Pending::Start => None,
            Pending::Activity { step, .. }
            | Pending::Timer { step, .. }
            | Pending::Signal { step, .. }
            | Pending::Child { step, .. } => Some(step),
        }
    }

    /// What the run waits for outside the worker, for the `waiting` field:
    /// `timer:<UTC time>`, `signal:<name>`, `child:<id>`; `None` for work a
    /// worker does.
    pub fn waiting(&self) -> Option<String> {
        match self {
            Pending::Timer { until_ms, .. } => Some(format!("timer:{}", utc_millis(*until_ms))),
            Pending::Signal { name, .. } => Some(format!("signal:{name}")),
            Pending::Child { id, .. } => Some(format!("child:{id}")),
            Pending::Start | Pending::Activity { .. } => None,
        }
    }
}

/// `2026-12-07T08:00:00.000Z`, for people reading the store.
fn utc_millis(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// A request from outside to stop a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Interrupt {
    /// Stop at the next suspension point and run the compensations.
    Cancel {
        /// Why, as given by the requester.
        reason: String,
    },
    /// Stop at once, without compensating.
    Terminate {
        /// Why, as given by the requester.
        reason: String,
    },
}

/// A signal waiting in a run's buffer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalEntry {
    /// The signal's name.
    pub name: String,
    /// Its payload.
    pub payload: Value,
    /// When it was sent, milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
    /// A nonce, so that two equal signals stay two entries.
    pub nonce: u64,
}

/// A compensation waiting to run if the workflow fails: pushed when the
/// step it undoes succeeded, in the same checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompensationEntry {
    /// The step it undoes (`charge_card#0`).
    pub step: String,
    /// The compensating activity's name.
    pub activity: String,
    /// Its arguments, as JSON.
    pub input: Value,
    /// Its idempotency key: the undone call's key with `/undo` appended.
    pub key: String,
}

/// The checkpoint of one run.
///
/// Every transition replaces it as a whole, fenced and compare-and-set on
/// [`seq`](Self::seq). Fields are public so that stores and tools can read
/// them; change them only through a [`Store`](crate::Store) commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Envelope {
    /// The workflow id (the idempotency key of the run).
    pub id: String,
    /// The workflow's registered name.
    pub workflow: String,
    /// The task queue the run is served on.
    pub queue: String,
    /// Where the run is in its life.
    pub status: Status,
    /// How many transitions were committed.
    pub seq: u64,
    /// The name of the current state (`start`, `charge_card#0`), empty once
    /// the run has returned.
    pub step: String,
    /// The fingerprint of the current state's layout.
    pub state_fp: String,
    /// The state enum, as JSON (`{"charge_card#0": {"order_id": ..}}`);
    /// `null` once the run has returned.
    pub state: Value,
    /// What the run does next, while running.
    pub pending: Option<Pending>,
    /// Compensations of completed steps, oldest first; they run last first.
    pub compensations: Vec<CompensationEntry>,
    /// The arguments the run started with.
    pub input: Value,
    /// The workflow's return value, once completed.
    pub output: Option<Value>,
    /// The workflow's error, once it returned `Err`.
    pub error: Option<Value>,
    /// The workflow's error as text.
    pub error_message: Option<String>,
    /// Failed attempts of the activity or compensation now pending.
    pub attempts: u32,
    /// The last failed attempt's error, as text.
    pub last_error: Option<String>,
    /// Why the run was parked or why its compensation failed.
    pub reason: Option<String>,
    /// Why a cancelled, terminated or timed-out run was stopped
    /// (`cancelled: <the requester's reason>`), kept while its compensations
    /// run, even when a failing one takes [`reason`](Self::reason) over.
    pub stopped: Option<String>,
    /// The status the run takes once its compensations have run: failed,
    /// cancelled or timed out.
    pub ending: Option<Status>,
    /// A stop requested from outside, not yet acted on.
    pub interrupt: Option<Interrupt>,
    /// When the run times out, milliseconds since the Unix epoch.
    pub deadline_ms: Option<u64>,
    /// How many signals may wait, unconsumed, in the run's buffer; set when
    /// the run starts. `None`: the sender's bound applies.
    pub signal_bound: Option<u32>,
    /// The values the workflow exposes to queries (`ctx.set_query`).
    pub queries: BTreeMap<String, Value>,
    /// The patches the code that started the run knew (`ctx.patched`).
    pub patches: Vec<String>,
    /// The parent run, for a child run.
    pub parent: Option<String>,
    /// An activity's outcome recorded by a worker of the activity's queue,
    /// waiting to be fed to the workflow.
    pub outcome: Option<Value>,
    /// How many times the run continued as new.
    pub generation: u64,
    /// Signals sent to the run and not yet consumed, oldest first. Read with
    /// the run; changed only by signal sends and by the transitions that
    /// consume them.
    pub signals: Vec<SignalEntry>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Time of the last commit, milliseconds since the Unix epoch.
    pub updated_at_ms: u64,
}

impl Envelope {
    /// Why a cancelled or terminated run stopped, as its requester gave it
    /// ([`reason`](Self::reason) without the `cancelled: ` or
    /// `terminated: ` it is stored with); empty when no reason is stored.
    pub fn stop_reason(&self) -> &str {
        let reason = self
            .stopped
            .as_deref()
            .or(self.reason.as_deref())
            .unwrap_or_default();
        ["cancelled: ", "terminated: "]
            .iter()
            .find_map(|p| reason.strip_prefix(p))
            .unwrap_or(reason)
    }

    /// A new run in its start state, before its first transition.
    pub fn new_run(
        id: String,
        workflow: String,
        queue: String,
        input: Value,
        start_state: Value,
        start_fp: String,
        now_ms: u64,
    ) -> Self {
        Envelope {
            id,
            workflow,
            queue,
            status: Status::Running,
            seq: 0,
            step: "start".to_owned(),
            state_fp: start_fp,
            state: start_state,
            pending: Some(Pending::Start),
            compensations: Vec::new(),
            input,
            output: None,
            error: None,
            error_message: None,
            attempts: 0,
            last_error: None,
            reason: None,
            stopped: None,
            ending: None,
            interrupt: None,
            deadline_ms: None,
            signal_bound: None,
            queries: BTreeMap::new(),
            patches: Vec::new(),
            parent: None,
            outcome: None,
            generation: 0,
            signals: Vec::new(),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }
}

/// One committed transition, as kept in a run's bounded history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// The sequence number the transition committed.
    pub seq: u64,
    /// The state the run was in after it.
    pub step: String,
    /// The status after it.
    pub status: Status,
    /// What happened, e.g. `activity charge_card#0 completed`.
    pub event: String,
    /// Commit time, milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl HistoryEntry {
    /// An entry for the commit of `envelope` (after the transition).
    pub fn of(envelope: &Envelope, event: String) -> Self {
        HistoryEntry {
            seq: envelope.seq,
            step: envelope.step.clone(),
            status: envelope.status,
            event,
            at_ms: envelope.updated_at_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for st in Status::ALL {
            assert_eq!(Status::parse(st.as_str()), Some(st));
            let json = serde_json::to_string(&st).expect("status encodes");
            assert_eq!(json, format!("\"{}\"", st.as_str()));
        }
        assert_eq!(Status::parse("sleeping"), None);
        assert!(!Status::Running.is_settled());
        assert!(Status::CompensationFailed.is_settled());
    }

    #[test]
    fn pending_is_tagged_by_kind() {
        let p = Pending::Activity {
            activity: "ship".into(),
            step: "ship#0".into(),
            input: serde_json::json!({"order_id": "o-1"}),
            key: "o-1/ship#0/3".into(),
            queue: None,
        };
        let v = serde_json::to_value(&p).expect("pending encodes");
        assert_eq!(v["kind"], "activity");
        assert_eq!(serde_json::from_value::<Pending>(v).expect("decodes"), p);
    }
}
