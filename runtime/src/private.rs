//! Items used by code that `#[workflow]` and `#[activity]` generate. Not a
//! public API: it changes without notice.

pub use serde;
pub use serde_json;

pub use crate::activity::{Activity, ActivityContext, ActivityError, CompensationCall};
pub use crate::context::{ChildStart, ContinueAsNew, SignalWait, Sleep, WorkflowContext};
pub use crate::migration::Migration;
pub use crate::options::{ActivityOptions, RetryPolicy};
pub use crate::registry::Registry;
pub use crate::workflow::{
    ChildError, Command, InfoCell, Resume, Signal, StateInfo, StepError, TracedState, Transition,
    Workflow, WorkflowInfo,
};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Splits an activity's return type into its `Ok` and `Err` types, so that
/// aliases such as `type Result<T> = std::result::Result<T, MyError>` work.
#[diagnostic::on_unimplemented(
    message = "an activity must return `Result<T, E>`, not `{Self}`",
    label = "this return type"
)]
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
#[diagnostic::on_unimplemented(
    message = "a workflow must return `Result<T, E>`, not `{Self}`",
    label = "this return type"
)]
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

/// A compile-time probe of a stored local's type `T`, for autoref
/// specialization: a method call on `&Probe<T>` picks [`ProbeStored`] when
/// `T` is `Serialize + DeserializeOwned` and [`ProbeNotStored`] otherwise.
/// The state enum encodes its fields through it, so a type without serde
/// makes exactly one error: the assertion at the local's declaration
/// ([`assert_storable`]), not one per derive of the enum.
pub struct Probe<T>(std::marker::PhantomData<fn() -> T>);

impl<T> Probe<T> {
    /// A probe.
    pub const fn new() -> Self {
        Probe(std::marker::PhantomData)
    }
}

impl<T> Default for Probe<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Marks a type that can be kept in a checkpoint.
pub struct Storable;
/// Marks a type that cannot be kept in a checkpoint.
pub struct NotStorable;

/// The probe's methods for a serializable type.
pub trait ProbeStored<T> {
    /// [`Storable`].
    fn storable(&self) -> Storable {
        Storable
    }
    /// Encodes `value`.
    fn serialize_stored<S: serde::Serializer>(&self, value: &T, s: S) -> Result<S::Ok, S::Error>;
    /// Decodes a value.
    fn deserialize_stored<'de, D: serde::Deserializer<'de>>(&self, d: D) -> Result<T, D::Error>;
    /// The serde layout of `T`, for the state's fingerprint.
    fn layout(&self) -> String;
}

impl<T: Serialize + DeserializeOwned> ProbeStored<T> for Probe<T> {
    fn serialize_stored<S: serde::Serializer>(&self, value: &T, s: S) -> Result<S::Ok, S::Error> {
        value.serialize(s)
    }
    fn deserialize_stored<'de, D: serde::Deserializer<'de>>(&self, d: D) -> Result<T, D::Error> {
        T::deserialize(d)
    }
    fn layout(&self) -> String {
        crate::layout::or_type_name::<T>()
    }
}

/// The probe's methods for any other type; never run, since
/// [`assert_storable`] rejects the workflow at compile time.
pub trait ProbeNotStored<T> {
    /// [`NotStorable`].
    fn storable(&self) -> NotStorable {
        NotStorable
    }
    /// Fails.
    fn serialize_stored<S: serde::Serializer>(&self, _: &T, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this type cannot be stored"))
    }
    /// Fails.
    fn deserialize_stored<'de, D: serde::Deserializer<'de>>(&self, _: D) -> Result<T, D::Error> {
        Err(serde::de::Error::custom("this type cannot be stored"))
    }
    /// Nothing.
    fn layout(&self) -> String {
        String::new()
    }
}

impl<T> ProbeNotStored<T> for &Probe<T> {}

/// The probe's `Debug` for a type that has it.
pub trait ProbeDebug<T> {
    /// `value` itself.
    fn debug_stored<'a>(&self, value: &'a T) -> &'a dyn std::fmt::Debug;
}

impl<T: std::fmt::Debug> ProbeDebug<T> for Probe<T> {
    fn debug_stored<'a>(&self, value: &'a T) -> &'a dyn std::fmt::Debug {
        value
    }
}

/// The probe's `Debug` for a type that has none: a placeholder.
pub trait ProbeNoDebug<T> {
    /// `..`.
    fn debug_stored<'a>(&self, _: &'a T) -> &'a dyn std::fmt::Debug {
        &Opaque
    }
}

impl<T> ProbeNoDebug<T> for &Probe<T> {}

struct Opaque;

impl std::fmt::Debug for Opaque {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

/// Holds for [`Storable`] only.
#[diagnostic::on_unimplemented(
    message = "`{T}` cannot be kept across an await: a workflow stores the locals it needs after an await in its checkpoint, so they must implement `Serialize` and `Deserialize`",
    label = "stored in the checkpoint",
    note = "derive `serde::Serialize` and `serde::Deserialize` for it, or stop using it after the await"
)]
pub trait StorableCheck<T> {}

impl<T> StorableCheck<T> for Storable {}

/// Fails to compile, with one error, unless `T` can be stored.
pub fn assert_storable<T, M: StorableCheck<T>>(_: M) {}

/// The parameter types of an activity as a tuple, so a compensation's
/// arguments are checked against them as one known type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an activity: a compensation must be an `#[activity]` function",
    label = "not an activity"
)]
pub trait ActivityArgs: Sized {
    /// `(P1, P2, ..)`.
    type Args;
    /// The call with these arguments.
    fn from_args(args: Self::Args) -> Self;
}

/// Holds when a compensation is given arguments of the types it takes.
#[diagnostic::on_unimplemented(
    message = "the compensation takes `{Args}`, but `compensate = ..` gives it `{Self}`",
    label = "the compensation's parameters do not fit",
    note = "a compensation receives the activity's output (and the arguments named in `compensate = f(output, ..)`)"
)]
pub trait CompensationInput<Args> {
    /// The arguments.
    fn into_args(self) -> Args;
}

impl<T> CompensationInput<T> for T {
    fn into_args(self) -> T {
        self
    }
}

/// The arguments of compensation `A`, checked: `given` must have the types
/// of `A`'s parameters.
pub fn compensation_args<A: ActivityArgs, T: CompensationInput<A::Args>>(given: T) -> A::Args {
    given.into_args()
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

fn decode<T: DeserializeOwned>(
    state: &'static str,
    json: serde_json::Value,
) -> Result<T, StepError> {
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
        queue: A::QUEUE,
    })
}

/// The outcome type of awaiting a child run of `W`.
pub type ChildOutcome<W> = Result<<W as Workflow>::Output, ChildError<<W as Workflow>::Error>>;

/// Turns what a `ctx` method made into the command a state waits for.
pub trait IntoCommand {
    /// The command.
    fn into_command(self, step: &'static str) -> Result<Command, StepError>;
}

impl IntoCommand for Sleep {
    fn into_command(self, step: &'static str) -> Result<Command, StepError> {
        Ok(Command::Sleep {
            step,
            duration: self.duration,
        })
    }
}

impl<S: Signal, T> IntoCommand for SignalWait<S, T> {
    fn into_command(self, step: &'static str) -> Result<Command, StepError> {
        Ok(Command::Signal {
            step,
            name: S::NAME,
            timeout: self.timeout,
        })
    }
}

impl<W: Workflow> IntoCommand for ChildStart<W> {
    fn into_command(self, step: &'static str) -> Result<Command, StepError> {
        let encode = |what: &str, source| StepError::Encode {
            what: format!("{what} of child workflow `{}`", W::NAME),
            source,
        };
        let input = serde_json::to_value(&self.input).map_err(|e| encode("the arguments", e))?;
        let start = W::start(self.input);
        let start_fp = W::info()
            .state(W::state_name(&start))
            .map(|s| s.fingerprint)
            .unwrap_or("");
        let start_state = serde_json::to_value(&start).map_err(|e| encode("the start state", e))?;
        Ok(Command::Child {
            step,
            workflow: W::NAME,
            id: self.id,
            input,
            start_state,
            start_fp,
            queue: W::info().queue,
            patches: W::info().patches,
        })
    }
}

fn expect(state: &'static str, expected: &'static str, got: &Resume) -> StepError {
    StepError::WrongResume {
        state,
        expected,
        got: got.kind(),
    }
}

/// Checks that a state waiting for a timer is resumed by it.
pub fn timer_outcome(state: &'static str, resume: Resume) -> Result<(), StepError> {
    match resume {
        Resume::Timer => Ok(()),
        other => Err(expect(state, "a timer", &other)),
    }
}

/// Decodes the signal a state waited for without a timeout.
pub fn signal_outcome<S: Signal>(state: &'static str, resume: Resume) -> Result<S, StepError> {
    match resume {
        Resume::Signal(Some(json)) => decode(state, json),
        other => Err(expect(state, "a signal", &other)),
    }
}

/// Decodes the signal a state waited for with a timeout (`None`: it timed out).
pub fn signal_within_outcome<S: Signal>(
    state: &'static str,
    resume: Resume,
) -> Result<Option<S>, StepError> {
    match resume {
        Resume::Signal(Some(json)) => decode(state, json).map(Some),
        Resume::Signal(None) => Ok(None),
        other => Err(expect(state, "a signal", &other)),
    }
}

/// Decodes the outcome of a child run of `W`.
pub fn child_outcome<W: Workflow>(
    state: &'static str,
    resume: Resume,
) -> Result<ChildOutcome<W>, StepError> {
    match resume {
        Resume::Child(json) => decode(state, json),
        other => Err(expect(state, "a child's outcome", &other)),
    }
}

/// What a `for` loop with an await inside keeps in its state: the items
/// still to visit, in order.
pub type ForItems<T> = std::collections::VecDeque<T>;

/// Collects what a `for` loop iterates over into [`ForItems`].
pub fn for_items<I: IntoIterator>(iter: I) -> ForItems<I::Item> {
    iter.into_iter().collect()
}

/// The next item of a checkpointed `for` loop.
pub trait ForNext {
    /// The item type.
    type Item;
    /// Takes the next item.
    fn for_next(&mut self) -> Option<Self::Item>;
}

impl<T> ForNext for ForItems<T> {
    type Item = T;
    fn for_next(&mut self) -> Option<T> {
        self.pop_front()
    }
}

/// An integer range a checkpointed `for` loop walks: the next value, the end,
/// and whether it is done (kept explicitly because `RangeInclusive` loses
/// its exhaustion when serialized).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ForRange<T> {
    next: T,
    end: T,
    inclusive: bool,
    done: bool,
}

impl<T: ForStep> ForRange<T> {
    /// `start..end`, or `start..=end` when `inclusive`.
    pub fn new(start: T, end: T, inclusive: bool) -> Self {
        let done = if inclusive { start > end } else { start >= end };
        ForRange {
            next: start,
            end,
            inclusive,
            done,
        }
    }
}

impl<T: ForStep> ForNext for ForRange<T> {
    type Item = T;
    fn for_next(&mut self) -> Option<T> {
        if self.done {
            return None;
        }
        let value = self.next;
        let last = if self.inclusive {
            value >= self.end
        } else {
            value.succ().is_none_or(|n| n >= self.end)
        };
        match value.succ() {
            Some(n) if !last => self.next = n,
            _ => self.done = true,
        }
        Some(value)
    }
}

/// Integers a [`ForRange`] can walk.
pub trait ForStep: Copy + PartialOrd {
    /// The next value, if there is one.
    fn succ(self) -> Option<Self>;
}

macro_rules! for_step {
    ($($t:ty),*) => {$(
        impl ForStep for $t {
            fn succ(self) -> Option<Self> {
                self.checked_add(1)
            }
        }
    )*};
}
for_step!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);

#[cfg(test)]
mod tests {
    use super::*;

    fn walk<T: ForStep>(mut r: ForRange<T>) -> Vec<T> {
        std::iter::from_fn(|| r.for_next()).collect()
    }

    #[test]
    fn ranges_walk_like_std_and_survive_a_round_trip() {
        assert_eq!(walk(ForRange::new(0u32, 3, false)), vec![0, 1, 2]);
        assert_eq!(walk(ForRange::new(0u32, 3, true)), vec![0, 1, 2, 3]);
        assert_eq!(walk(ForRange::new(3u32, 3, false)), Vec::<u32>::new());
        assert_eq!(
            walk(ForRange::new(250u8, 255, true)),
            vec![250, 251, 252, 253, 254, 255]
        );
        let mut r = ForRange::new(1u8, 2, true);
        assert_eq!(r.for_next(), Some(1));
        assert_eq!(r.for_next(), Some(2));
        let json = serde_json::to_string(&r).expect("encodes");
        let mut back: ForRange<u8> = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back.for_next(), None);
    }
}
