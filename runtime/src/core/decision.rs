//! What [`decide`](crate::core::decide) returns: the next record, one
//! history entry, and the effects a store applies with it, atomically.
//!
//! Effects are data. The memory store and the Redis apply script interpret
//! the same list, so they cannot disagree about policy: a store only
//! checks its [`Guard`] and carries out what it is told.

use serde::Serialize;

use super::{HistoryEntry, Interrupt, RunRecord, SignalEntry, Status};

/// One decided transition (or, without a history entry, a change that is
/// not a transition: a signal buffered, a lease released).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Decision {
    /// What to write to the run's record.
    pub write: Write,
    /// The history entry of the transition, if it is one.
    pub history: Option<HistoryEntry>,
    /// What the store does besides writing the record, in this order.
    pub effects: Vec<Effect>,
    /// Effects on other runs, which live under other keys (on Redis
    /// Cluster, in other slots): carried out by the caller after the
    /// decision is applied, at least once.
    pub follow_ups: Vec<FollowUp>,
    /// The store must refuse the decision while a worker holds a valid
    /// lease on the run (operator actions).
    pub exclusive: bool,
}

impl Decision {
    /// A decision that writes nothing and has no effect.
    pub(crate) fn nothing() -> Self {
        Decision {
            write: Write::Nothing,
            history: None,
            effects: Vec::new(),
            follow_ups: Vec::new(),
            exclusive: false,
        }
    }

    /// The record this decision writes, if it writes a whole one.
    pub fn record(&self) -> Option<&RunRecord> {
        match &self.write {
            Write::Record(r) => Some(r),
            _ => None,
        }
    }

    /// Whether the worker keeps the run after this decision (it has more
    /// work to do), unless a buffered signal it awaits keeps it anyway.
    pub fn keeps_lease(&self) -> bool {
        self.effects.iter().any(|e| matches!(e, Effect::KeepLease))
    }

    /// Whether the decision starts a new generation (continue-as-new) or a
    /// new run: the generation's fields (input, patches) are written too.
    pub fn new_generation(&self) -> bool {
        self.effects
            .iter()
            .any(|e| matches!(e, Effect::TrimHistory))
    }
}

/// What a decision writes to the run's record.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Write {
    /// Nothing: the record stays as it is.
    Nothing,
    /// The whole record (its `interrupt` and `signals` excepted: they
    /// belong to senders and are changed only by effects).
    Record(Box<RunRecord>),
    /// A record that does not read gets a new status (parked, or
    /// terminated by an operator): only its status, reason, sequence number
    /// and update time are written; every other field is left as it is, for
    /// an operator to repair.
    Status {
        /// The new status.
        status: Status,
        /// Why.
        reason: String,
        /// The sequence number to store (one past the last the store or its
        /// history shows).
        seq: u64,
        /// The update time, milliseconds since the Unix epoch.
        updated_at_ms: u64,
    },
}

/// What a store does besides writing the record. Named, so adding one
/// never shifts another's position.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Effect {
    /// Extend the lease of the worker applying the decision.
    KeepLease,
    /// Give the lease up and acknowledge (delete) the task it was taken for.
    Release,
    /// Queue a task for the run on this queue.
    Dispatch {
        /// The queue.
        queue: String,
    },
    /// Queue a task for the run on this queue if, as stored when the
    /// decision is applied, the run waits for this signal (a sender's
    /// decision does not hold the run, which may start waiting meanwhile).
    WakeIfWaiting {
        /// The queue.
        queue: String,
        /// The signal's name.
        signal: String,
    },
    /// Wake the run at this time (replaces any earlier timer of the run).
    ArmTimer {
        /// The queue the timer's task goes to.
        queue: String,
        /// When, milliseconds since the Unix epoch.
        at_ms: u64,
    },
    /// Remove the run's timer.
    ClearTimer {
        /// The queue of the timer.
        queue: String,
    },
    /// The run waits for this signal: if one is buffered, keep the lease
    /// instead of releasing it, arm no timer, and report the signal.
    AwaitSignal {
        /// The signal's name.
        name: String,
    },
    /// Remove the buffered signal with this nonce.
    ConsumeSignal {
        /// Its nonce.
        nonce: u64,
    },
    /// Buffer a signal, unless `bound` signals already wait (then the
    /// decision is refused, nothing written).
    AppendSignal {
        /// The signal.
        signal: SignalEntry,
        /// How many may wait at once.
        bound: u32,
    },
    /// Drop every buffered signal.
    DropSignals,
    /// Drop the buffered signals whose stored entry does not read.
    DropUnreadableSignals,
    /// Record a stop request. A cancel does not replace a stored terminate
    /// (the harder stop stands).
    SetInterrupt {
        /// The request.
        interrupt: Interrupt,
    },
    /// Clear this stop request, if it is still the stored one (a newer one
    /// stays).
    ClearInterrupt {
        /// The request acted on.
        interrupt: Interrupt,
    },
    /// Drop the history before this decision's entry.
    TrimHistory,
    /// List the run in this index (and in no other).
    Index {
        /// The index.
        index: RunIndex,
        /// Its score there, milliseconds since the Unix epoch.
        score_ms: u64,
        /// The index it was listed in; `None` when not known (it is then
        /// removed from every other).
        from: Option<RunIndex>,
    },
    /// Delete the run's record and history once the store's retention time
    /// has passed.
    Expire,
    /// Tell clients waiting on the run.
    Publish {
        /// What to tell.
        notice: Notice,
    },
}

/// The indexes runs are listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunIndex {
    /// Not settled, scored by creation time.
    Active,
    /// Settled for good, scored by when.
    Done,
    /// Waiting for an operator, scored by when.
    Attention,
}

impl RunIndex {
    /// The index a run with this status belongs in.
    pub fn of(status: Status) -> RunIndex {
        if status.needs_attention() {
            RunIndex::Attention
        } else if status.is_settled() {
            RunIndex::Done
        } else {
            RunIndex::Active
        }
    }

    /// Every index.
    pub const ALL: [RunIndex; 3] = [RunIndex::Active, RunIndex::Done, RunIndex::Attention];
}

/// What clients waiting on a run are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Notice {
    /// The run settled (or stopped for an operator): here is its record.
    Settled,
    /// An operator resumed it: a settle seen before is stale.
    Resumed,
}

/// Effects on other runs, carried out after the decision is applied.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FollowUp {
    /// A child settled: wake its parent so it sees the outcome.
    WakeParent {
        /// The parent's id.
        parent: String,
    },
    /// The parent stops: stop the child it waits for the same way.
    StopChild {
        /// The child's id.
        child: String,
        /// The request.
        interrupt: Interrupt,
    },
}

/// The condition under which a store applies a decision. Checked before
/// anything is written; a decision whose guard fails changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Guard {
    /// The run does not exist (a start).
    Absent,
    /// The caller holds the lease with this fence, and the record is at
    /// `seq` (unchecked when `None`: a record whose `seq` does not read).
    Held {
        /// The lease holder.
        worker: String,
        /// The lease's fence.
        fence: u64,
        /// The record's sequence number the decision builds on.
        seq: Option<u64>,
        /// The task the lease was taken for (acknowledged on release).
        receipt: String,
        /// The queue of that task.
        task_queue: String,
        /// How long a kept lease lasts from now, in milliseconds.
        lease_ms: u64,
    },
    /// The run exists; nothing else is checked. Only for waking a run whose
    /// record does not read, so that a worker parks it.
    Exists,
    /// The run exists and has not ended (completed, failed, cancelled,
    /// terminated, timed out; a parked run has not), whoever holds it: for
    /// messages that write no record (a signal, a stop request, a wake-up).
    /// Refused with the status found.
    Unended,
    /// The record is at `seq`, whoever holds it (a client's message). With
    /// an [`exclusive`](Decision::exclusive) decision, also: no worker holds
    /// a valid lease.
    Current {
        /// The record's sequence number the decision builds on.
        seq: u64,
    },
}

/// Why [`decide`](crate::core::decide) refuses an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The run has settled; it takes no more messages.
    #[error("run `{id}` has settled ({status}); it takes no more messages")]
    Settled {
        /// The run.
        id: String,
        /// Its status.
        status: Status,
    },
    /// Only parked runs and failed compensations can be resumed.
    #[error(
        "run `{id}` is {status}; only parked runs and failed compensations (compensation_failed) can be resumed"
    )]
    NotStopped {
        /// The run.
        id: String,
        /// Its status.
        status: Status,
    },
    /// A parked run whose record does not read far enough to know where it
    /// resumes.
    #[error(
        "run `{id}` is parked and its record does not read ({reason}); repair the record first"
    )]
    Unrepaired {
        /// The run.
        id: String,
        /// Why it was parked.
        reason: String,
    },
    /// No buffered signal has this nonce.
    #[error("run `{id}` has no buffered signal with nonce {nonce}")]
    NoSuchSignal {
        /// The run.
        id: String,
        /// The nonce asked for.
        nonce: u64,
    },
    /// A parked run cannot be cancelled: nothing runs its compensations.
    #[error(
        "run `{id}` is {status}; resume it (its compensations then run if it was unwinding) or terminate it"
    )]
    CannotCancel {
        /// The run.
        id: String,
        /// Its status.
        status: Status,
    },
    /// The input does not apply to the run's phase: a worker's bug, or a
    /// record changed under it.
    #[error("run `{id}`: {input} does not apply while the run is {status}")]
    Impossible {
        /// The run.
        id: String,
        /// Its status.
        status: Status,
        /// The input, in words.
        input: &'static str,
    },
}
