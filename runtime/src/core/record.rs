//! The run record: everything a worker needs to resume a run, typed so that
//! impossible combinations (running without a state, settled with work
//! left, compensating with a pending activity) cannot be written down.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::telemetry::TraceContext;

use super::phase::{Ending, Outcome, Phase, StateSnapshot, Status, Wait, Work};

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
    /// Tells two equal signals apart; below 2^53, so it survives JSON
    /// numbers everywhere (Lua reads it as a double).
    pub nonce: u64,
}

/// A compensation owed if the workflow fails: pushed when the step it
/// undoes succeeded, in the same checkpoint.
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

/// The record of one run.
///
/// Every transition replaces it as a whole, through a
/// [`Decision`](crate::core::Decision) applied under the lease's fence and
/// compare-and-set on [`seq`](Self::seq). `interrupt` and `signals` belong
/// to the senders: transitions read them and never write them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunRecord {
    /// The workflow id (the idempotency key of the run).
    pub id: String,
    /// The workflow's registered name.
    pub workflow: String,
    /// The task queue the run is served on.
    pub queue: String,
    /// How many transitions were committed.
    pub seq: u64,
    /// Where the run is in its life.
    pub phase: Phase,
    /// Compensations of completed steps, oldest first; they run last first.
    pub compensations: Vec<CompensationEntry>,
    /// The arguments of the current generation.
    pub input: Value,
    /// Failed attempts of the activity or compensation now pending.
    pub attempts: u32,
    /// The last failed attempt's error, as text.
    pub last_error: Option<String>,
    /// A stop requested from outside, not yet acted on.
    pub interrupt: Option<Interrupt>,
    /// When the run times out, milliseconds since the Unix epoch.
    pub deadline_ms: Option<u64>,
    /// How many signals may wait, unconsumed, in the buffer (set at start).
    pub signal_bound: Option<u32>,
    /// The values the workflow exposes to queries (`ctx.set_query`).
    pub queries: BTreeMap<String, Value>,
    /// The patches the code that started the generation knew.
    pub patches: Vec<String>,
    /// The parent run, for a child run.
    pub parent: Option<String>,
    /// How many times the run continued as new.
    pub generation: u64,
    /// Signals sent and not yet consumed, oldest first.
    pub signals: Vec<SignalEntry>,
    /// The W3C trace context of the span that started the run (a client's
    /// start, a parent run's transition): every worker that drives the
    /// run continues that trace. Written at creation, never changed.
    pub trace: Option<TraceContext>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Time of the last transition, milliseconds since the Unix epoch.
    pub updated_at_ms: u64,
}

impl RunRecord {
    /// A new run in its start state, before its first transition.
    pub fn new_run(
        id: impl Into<String>,
        workflow: impl Into<String>,
        queue: impl Into<String>,
        input: Value,
        start: StateSnapshot,
        now_ms: u64,
    ) -> Self {
        RunRecord {
            id: id.into(),
            workflow: workflow.into(),
            queue: queue.into(),
            seq: 0,
            phase: Phase::Running {
                state: start,
                work: Work::Start,
            },
            compensations: Vec::new(),
            input,
            attempts: 0,
            last_error: None,
            interrupt: None,
            deadline_ms: None,
            signal_bound: None,
            queries: BTreeMap::new(),
            patches: Vec::new(),
            parent: None,
            generation: 0,
            signals: Vec::new(),
            trace: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        }
    }

    /// The one-word status.
    pub fn status(&self) -> Status {
        self.phase.status()
    }

    /// The current state's name; empty once the run has no state.
    pub fn step(&self) -> &str {
        self.phase.state().map_or("", |s| s.step.as_str())
    }

    /// The return value, once completed.
    pub fn output(&self) -> Option<&Value> {
        match &self.phase {
            Phase::Settled {
                outcome: Outcome::Completed { output },
            } => Some(output),
            _ => None,
        }
    }

    /// The workflow's error and its text, once it returned `Err` (also
    /// while its compensations run, and when one of them failed).
    pub fn error(&self) -> Option<(&Value, &str)> {
        match &self.phase {
            Phase::Settled {
                outcome: Outcome::Failed { error, message },
            } => Some((error, message)),
            other => match other.ending() {
                Some(Ending::Failed { error, message }) => Some((error, message)),
                _ => None,
            },
        }
    }

    /// Why the run is parked, why its compensation failed, or why it was
    /// stopped (`cancelled: customer asked`).
    pub fn reason(&self) -> Option<String> {
        match &self.phase {
            Phase::Parked { reason, .. } => Some(reason.clone()),
            Phase::Settled { outcome } => outcome.stopped(),
            Phase::Compensating { ending } => ending.stopped(),
            _ => None,
        }
    }

    /// Why a cancelled, terminated or timed-out run was stopped: kept while
    /// its compensations run, and when one of them fails.
    pub fn stopped(&self) -> Option<String> {
        match &self.phase {
            Phase::Settled { outcome } => outcome.stopped(),
            other => other.ending().and_then(Ending::stopped),
        }
    }

    /// The reason a cancelled or terminated run's requester gave, without
    /// the `cancelled: ` or `terminated: ` it is stored with.
    pub fn stop_reason(&self) -> String {
        match &self.phase {
            Phase::Settled {
                outcome: Outcome::Cancelled { reason } | Outcome::Terminated { reason },
            } => reason.clone(),
            other => match other.ending() {
                Some(Ending::Cancelled { reason }) => reason.clone(),
                _ => self.reason().unwrap_or_default(),
            },
        }
    }

    /// The work a running run does next.
    pub fn work(&self) -> Option<&Work> {
        match &self.phase {
            Phase::Running { work, .. } => Some(work),
            _ => None,
        }
    }

    /// What a waiting run waits for.
    pub fn wait(&self) -> Option<&Wait> {
        match &self.phase {
            Phase::Waiting { wait, .. } => Some(wait),
            _ => None,
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
    /// What happened, e.g. `charge_card#0 completed; next reserve_inventory#0`.
    pub event: String,
    /// Commit time, milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl HistoryEntry {
    /// An entry for a transition that left the run as `record`.
    pub fn of(record: &RunRecord, event: String) -> Self {
        HistoryEntry {
            seq: record.seq,
            step: record.step().to_owned(),
            status: record.status(),
            event,
            at_ms: record.updated_at_ms,
        }
    }

    /// An entry; for stores reading their history back.
    pub fn new(seq: u64, step: String, status: Status, event: String, at_ms: u64) -> Self {
        HistoryEntry {
            seq,
            step,
            status,
            event,
            at_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ParkKind;

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
        assert!(Status::CompensationFailed.needs_attention());
        assert!(!Status::Failed.needs_attention());
    }

    #[test]
    fn a_parked_run_reports_the_phase_it_resumes_to() {
        let mut run = RunRecord::new_run(
            "o-1",
            "order",
            "orders",
            Value::Null,
            StateSnapshot::new("start", "fp", serde_json::json!({"start": {}})),
            0,
        );
        run.phase = Phase::Parked {
            kind: ParkKind::CompensationFailed,
            reason: "refund failed".into(),
            resume_to: Some(Box::new(Phase::Compensating {
                ending: Ending::Cancelled {
                    reason: "customer asked".into(),
                },
            })),
        };
        assert_eq!(run.status(), Status::CompensationFailed);
        assert_eq!(run.reason().as_deref(), Some("refund failed"));
        assert_eq!(run.stopped().as_deref(), Some("cancelled: customer asked"));
        assert_eq!(run.stop_reason(), "customer asked");
        assert_eq!(run.step(), "");
    }
}
