//! Items used by code that `#[workflow]` and `#[activity]` generate. Not a
//! public API: it changes without notice.

use std::time::Duration;

pub use serde;
pub use serde_json;

pub use crate::activity::{Activity, ActivityContext, ActivityError, CompensationCall};
pub use crate::context::WorkflowContext;
pub use crate::options::{ActivityOptions, RetryPolicy};
pub use crate::registry::Registry;
pub use crate::workflow::{Command, Resume, StateInfo, StepError, Transition, Workflow, WorkflowInfo};

use serde::de::DeserializeOwned;

/// Splits an activity's return type into its `Ok` and `Err` types, so that
/// aliases such as `type Result<T> = std::result::Result<T, MyError>` work.
pub trait ActivityResult {
    /// The success type.
    type Ok;
    /// The error type.
    type Err;
}

impl<T, E> ActivityResult for Result<T, E> {
    type Ok = T;
    type Err = E;
}

/// Splits a workflow's return type into its `Ok` and `Err` types.
pub trait WorkflowResult {
    /// The success type.
    type Ok;
    /// The error type.
    type Err;
}

impl<T, E> WorkflowResult for Result<T, E> {
    type Ok = T;
    type Err = E;
}

/// The outcome type of awaiting activity `A` in a workflow.
pub type ActivityOutcome<A> =
    Result<<A as Activity>::Output, ActivityError<<A as Activity>::Error>>;

/// Takes a local out of its slot between two blocks of a step function.
#[inline]
#[track_caller]
pub fn slot<T>(slot: &mut Option<T>) -> T {
    match slot.take() {
        Some(v) => v,
        // The liveness analysis guarantees the slot is full here; reaching
        // this is a bug in steadfast, and the run is parked with it.
        None => panic!("steadfast bug: a workflow local was read before it was stored"),
    }
}

/// Checks that a run in its start state is resumed with `Resume::Start`.
pub fn expect_start(state: &'static str, resume: Resume) -> Result<(), StepError> {
    match resume {
        Resume::Start => Ok(()),
        other => Err(StepError::WrongResume {
            state,
            expected: "start",
            got: other.kind(),
        }),
    }
}

/// Decodes the outcome of activity `A` for the state that waited for it.
pub fn activity_outcome<A: Activity>(
    state: &'static str,
    resume: Resume,
) -> Result<ActivityOutcome<A>, StepError> {
    match resume {
        Resume::Activity(json) => decode(state, json),
        other => Err(StepError::WrongResume {
            state,
            expected: "an activity outcome",
            got: other.kind(),
        }),
    }
}

fn decode<T: DeserializeOwned>(state: &'static str, json: serde_json::Value) -> Result<T, StepError> {
    serde_json::from_value(json).map_err(|source| StepError::BadOutcome { state, source })
}

/// Freezes an activity call into the command a state waits for.
pub fn activity_command<A: Activity>(call: &A, step: &'static str) -> Result<Command, StepError> {
    let input = serde_json::to_value(call).map_err(|source| StepError::Encode {
        what: format!("the arguments of activity `{}`", A::NAME),
        source,
    })?;
    Ok(Command::Activity {
        activity: A::NAME,
        step,
        input,
    })
}

/// Activity options from the values of `#[activity(..)]`.
pub fn activity_options(
    timeout_ms: u64,
    max_attempts: u32,
    initial_interval_ms: u64,
    backoff_coefficient: f64,
    max_interval_ms: u64,
) -> ActivityOptions {
    ActivityOptions::new(
        Duration::from_millis(timeout_ms),
        RetryPolicy::new(
            max_attempts,
            Duration::from_millis(initial_interval_ms),
            backoff_coefficient,
            Duration::from_millis(max_interval_ms),
        ),
    )
}

/// The iterator a `for` loop with an await inside keeps in its state: the
/// remaining items, in order.
pub type ForItems<T> = std::collections::VecDeque<T>;

/// Collects what a `for` loop iterates over into [`ForItems`].
pub fn for_items<I: IntoIterator>(iter: I) -> ForItems<I::Item> {
    iter.into_iter().collect()
}
