//! The checkpoint of one run: everything a worker needs to resume it.

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
}

impl Status {
    /// Every status, in declaration order.
    pub const ALL: [Status; 6] = [
        Status::Running,
        Status::Compensating,
        Status::Completed,
        Status::Failed,
        Status::CompensationFailed,
        Status::Parked,
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
    },
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
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Time of the last commit, milliseconds since the Unix epoch.
    pub updated_at_ms: u64,
}

impl Envelope {
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
        };
        let v = serde_json::to_value(&p).expect("pending encodes");
        assert_eq!(v["kind"], "activity");
        assert_eq!(serde_json::from_value::<Pending>(v).expect("decodes"), p);
    }
}
