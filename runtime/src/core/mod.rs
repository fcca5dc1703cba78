//! The rules of a run's life, decided once.
//!
//! ```text
//! worker:   acquire ─→ plan ─→ act (activity, step function, child) ─→ decide ─→ apply
//! client:              load ──────────────────────────────────────→ decide ─→ apply
//! ```
//!
//! - [`RunRecord`] is a run, with a typed [`Phase`]: running, waiting on a
//!   timer, a signal or a child, compensating, settled, or parked with the
//!   phase it resumes to.
//! - [`plan`] says what a worker holding a run does next (run an activity,
//!   call the step function, read a child, or nothing).
//! - [`decide`] turns a record and an [`Input`] into a [`Decision`]: the
//!   next record, its history entry, and a list of named [`Effect`]s.
//! - [`Limits`] bound the data a run holds and is sent: a decision over
//!   them is not written, the run is parked with the size and the limit.
//! - A [`Store`](crate::Store) applies a decision atomically under its
//!   [`Guard`] (the lease's fence and a compare-and-set on `seq`) and holds
//!   no policy of its own: the memory store and the Redis apply script
//!   carry out the same effects.
//!
//! Nothing here does I/O or reads a clock, so the rules are unit- and
//! property-tested without a store.

mod decide;
mod decision;
mod input;
mod limits;
mod phase;
mod plan;
mod record;
#[cfg(test)]
mod tests;

pub use decide::{UNREADABLE_SIGNAL, create, decide, park_unreadable, wake_unreadable};
pub use decision::{Decision, Effect, FollowUp, Guard, Notice, Refusal, RunIndex, Write};
pub use input::{Cause, Command, Input, StepOutcome, Stop};
pub use limits::{Limits, Oversize, SizeUnit, encoded_len};
pub(crate) use phase::TIMED_OUT;
pub use phase::{Ending, Outcome, ParkKind, Phase, StateSnapshot, Status, Wait, Work};
pub use plan::{
    Action, CHILD_RECHECK, Capabilities, ChildCheck, child_settled, plan, poisoned, stop_due,
};
pub use record::{CompensationEntry, HistoryEntry, Interrupt, RunRecord, SignalEntry};
