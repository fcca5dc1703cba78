//! Workflows: the deterministic decision logic, compiled by `#[workflow]`
//! into a state enum and a step function.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::context::WorkflowContext;
use crate::migration::Migration;
use crate::registry::Registry;

/// A workflow compiled by `#[workflow]` into an explicit state machine.
///
/// The state is a serde enum with one variant per suspension point (an
/// awaited activity, timer or signal), holding exactly the locals still
/// needed there. [`step`](Self::step) runs the workflow's code from one
/// suspension point to the next. You rarely implement this by hand.
pub trait Workflow: Sized + Send + Sync + 'static {
    /// The arguments a run starts with (one argument: its type; several: a tuple).
    type Input: Serialize + DeserializeOwned + Send + 'static;
    /// What a successful run returns.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// What a failed run returns.
    type Error: Serialize + DeserializeOwned + fmt::Display + Send + 'static;
    /// The generated state enum.
    type State: Serialize + DeserializeOwned + Send + 'static;

    /// The name under which the workflow is registered and checkpointed.
    const NAME: &'static str;

    /// The state a run starts in.
    fn start(input: Self::Input) -> Self::State;

    /// Runs the workflow from `state`, fed with `resume` (the outcome of what
    /// the state waited for), up to its next suspension point or its end.
    fn step(
        ctx: &mut WorkflowContext,
        state: Self::State,
        resume: Resume,
    ) -> Result<Transition<Self>, StepError>;

    /// The stable name of a state (`start`, `charge_card#0`, ...).
    fn state_name(state: &Self::State) -> &'static str;

    /// Static facts about the compiled workflow: its states and their
    /// layouts, its patches and its state graph.
    fn info() -> &'static WorkflowInfo;

    /// Registers every activity the workflow calls, and their compensations.
    fn register_activities(registry: &mut Registry);

    /// How states checkpointed by older code become states of this code
    /// (`#[workflow(migrations = my_migrations)]`); none by default.
    fn migrations() -> Vec<Migration<Self::State>> {
        Vec::new()
    }
}

/// A signal: a typed message sent into a running workflow from outside
/// ([`Client::signal`](crate::Client::signal)) and awaited inside it with
/// `ctx.signal::<S>().await` or `ctx.signal_within::<S>(timeout).await`.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// #[derive(Debug, Serialize, Deserialize)]
/// struct Cancel {
///     reason: String,
/// }
///
/// impl steadfast_runtime::Signal for Cancel {
///     const NAME: &'static str = "cancel";
/// }
/// ```
pub trait Signal: Serialize + DeserializeOwned + Send + 'static {
    /// The name under which it is sent and buffered.
    const NAME: &'static str;
}

/// Why a child run did not return `Ok`, as its parent sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChildError<E> {
    /// The child returned this error (its compensations ran).
    #[error("child failed: {0}")]
    Failed(E),
    /// The child was cancelled.
    #[error("child cancelled: {0}")]
    Cancelled(String),
    /// The child was terminated.
    #[error("child terminated: {0}")]
    Terminated(String),
    /// The child timed out.
    #[error("child timed out")]
    TimedOut,
    /// The child was parked, or a compensation of it failed, and waits for an
    /// operator.
    #[error("child needs an operator: {0}")]
    Stuck(String),
    /// A run with the child's id exists and is of another workflow type.
    #[error("child id is taken: {0}")]
    IdTaken(String),
}

/// What one step of a workflow ends with.
pub enum Transition<W: Workflow> {
    /// The workflow waits at a suspension point for `command` to complete.
    Suspend {
        /// The state to checkpoint.
        state: W::State,
        /// What the state waits for.
        command: Command,
    },
    /// The workflow returned.
    Complete(Result<W::Output, W::Error>),
    /// The workflow continues as a fresh run with this input, under the same
    /// workflow id (`ctx.continue_as_new(input).await`).
    ContinueAsNew {
        /// The new run's arguments.
        input: W::Input,
    },
}

impl<W: Workflow> fmt::Debug for Transition<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transition::Suspend { state, command } => f
                .debug_struct("Suspend")
                .field("state", &W::state_name(state))
                .field("command", command)
                .finish(),
            Transition::Complete(Ok(_)) => f.write_str("Complete(Ok(..))"),
            Transition::Complete(Err(e)) => write!(f, "Complete(Err({e}))"),
            Transition::ContinueAsNew { .. } => f.write_str("ContinueAsNew(..)"),
        }
    }
}

/// What a suspended workflow waits for.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Command {
    /// Run an activity with these frozen arguments.
    Activity {
        /// The activity's registered name.
        activity: &'static str,
        /// The state that waits for it (`charge_card#0`).
        step: &'static str,
        /// The activity's arguments, as JSON.
        input: serde_json::Value,
        /// The task queue of the workers that run it, if not the workflow's.
        queue: Option<&'static str>,
    },
    /// Wait for a duration (a durable timer).
    Sleep {
        /// The state that waits.
        step: &'static str,
        /// How long.
        duration: Duration,
    },
    /// Wait for a signal, for at most `timeout` when one is given.
    Signal {
        /// The state that waits.
        step: &'static str,
        /// The signal's name.
        name: &'static str,
        /// How long to wait before resuming without a signal.
        timeout: Option<Duration>,
    },
    /// Start a child run (unless one with its id exists) and wait for it.
    Child {
        /// The state that waits.
        step: &'static str,
        /// The child's workflow type.
        workflow: &'static str,
        /// The child's workflow id.
        id: String,
        /// Its arguments, as JSON.
        input: serde_json::Value,
        /// Its start state, as JSON.
        start_state: serde_json::Value,
        /// The fingerprint of its start state.
        start_fp: &'static str,
        /// Its task queue.
        queue: &'static str,
        /// The patches its code knows.
        patches: &'static [&'static str],
    },
}

impl Command {
    /// The state that waits for this command.
    pub fn step(&self) -> &'static str {
        match self {
            Command::Activity { step, .. }
            | Command::Sleep { step, .. }
            | Command::Signal { step, .. }
            | Command::Child { step, .. } => step,
        }
    }
}

/// What a suspended workflow is resumed with.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Resume {
    /// Nothing: the run starts.
    Start,
    /// An activity's outcome: JSON of `Result<Output, ActivityError<Error>>`.
    Activity(serde_json::Value),
    /// The timer fired.
    Timer,
    /// A signal's payload, or `None` when the wait timed out.
    Signal(Option<serde_json::Value>),
    /// A child's outcome: JSON of `Result<Output, ChildError<Error>>`.
    Child(serde_json::Value),
}

impl Resume {
    /// A short description for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Resume::Start => "start",
            Resume::Activity(_) => "an activity outcome",
            Resume::Timer => "a timer",
            Resume::Signal(_) => "a signal",
            Resume::Child(_) => "a child's outcome",
        }
    }
}

/// Why a step could not run. The workflow is parked with this reason; its
/// data stays as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The state waits for one thing and was resumed with another.
    #[error("state `{state}` waits for {expected} but was resumed with {got}")]
    WrongResume {
        /// The state's name.
        state: &'static str,
        /// What it waits for.
        expected: &'static str,
        /// What it got.
        got: &'static str,
    },
    /// The outcome fed to a state does not decode as the type it expects.
    #[error("the outcome for state `{state}` does not decode: {source}")]
    BadOutcome {
        /// The state's name.
        state: &'static str,
        /// The decoding error.
        source: serde_json::Error,
    },
    /// A value the runtime must store does not encode as JSON.
    #[error("{what} does not encode as JSON: {source}")]
    Encode {
        /// What failed to encode (`the arguments of activity `ship``, ...).
        what: String,
        /// The encoding error.
        source: serde_json::Error,
    },
}

/// Static facts about a compiled workflow.
#[derive(Debug)]
#[non_exhaustive]
pub struct WorkflowInfo {
    /// The workflow's registered name.
    pub name: &'static str,
    /// The task queue its runs go to unless started with another.
    pub queue: &'static str,
    /// Every persisted state, `start` first.
    pub states: &'static [StateInfo],
    /// The patch names the code knows (`ctx.patched("..")`).
    pub patches: &'static [&'static str],
    /// The state graph as a Mermaid `stateDiagram-v2`.
    pub mermaid: &'static str,
}

impl WorkflowInfo {
    /// Builds the facts; used by generated code.
    pub const fn new(
        name: &'static str,
        queue: &'static str,
        states: &'static [StateInfo],
        patches: &'static [&'static str],
        mermaid: &'static str,
    ) -> Self {
        Self {
            name,
            queue,
            states,
            patches,
            mermaid,
        }
    }

    /// Builds the facts with each state's fingerprint computed from the
    /// serde layouts of its stored fields; used by generated code, once per
    /// workflow type (through [`InfoCell`]).
    pub fn traced(
        name: &'static str,
        queue: &'static str,
        states: Vec<TracedState>,
        patches: &'static [&'static str],
        mermaid: &'static str,
    ) -> Self {
        let states: Vec<StateInfo> = states
            .into_iter()
            .map(|s| {
                let fields: Vec<(&str, &str)> = s
                    .fields
                    .iter()
                    .zip(&s.layouts)
                    .map(|((n, _), l)| (*n, l.as_str()))
                    .collect();
                let fingerprint = crate::layout::fingerprint(s.name, &fields);
                StateInfo::new(s.name, s.waits_for, s.fields, leak(fingerprint))
            })
            .collect();
        Self::new(
            name,
            queue,
            Box::leak(states.into_boxed_slice()),
            patches,
            mermaid,
        )
    }

    /// The facts about the state called `name`.
    pub fn state(&self, name: &str) -> Option<&'static StateInfo> {
        self.states.iter().find(|s| s.name == name)
    }
}

/// Holds a workflow's [`WorkflowInfo`], computed on first use: the
/// fingerprints come from tracing the stored types' serde layouts, which
/// is not possible at compile time. Each workflow's facts are computed once
/// per process and kept for its life.
#[derive(Debug)]
pub struct InfoCell(std::sync::OnceLock<WorkflowInfo>);

impl InfoCell {
    /// An empty cell.
    pub const fn new() -> Self {
        InfoCell(std::sync::OnceLock::new())
    }

    /// The facts, computed by `init` the first time.
    pub fn get_or_init(
        &'static self,
        init: impl FnOnce() -> WorkflowInfo,
    ) -> &'static WorkflowInfo {
        self.0.get_or_init(init)
    }
}

impl Default for InfoCell {
    fn default() -> Self {
        Self::new()
    }
}

/// One persisted state as the macro describes it, with the serde layout of
/// each stored field (in the order of `fields`).
#[derive(Debug)]
pub struct TracedState {
    name: &'static str,
    waits_for: &'static str,
    fields: &'static [(&'static str, &'static str)],
    layouts: Vec<String>,
}

impl TracedState {
    /// Describes a state; used by generated code.
    pub fn new(
        name: &'static str,
        waits_for: &'static str,
        fields: &'static [(&'static str, &'static str)],
        layouts: Vec<String>,
    ) -> Self {
        Self {
            name,
            waits_for,
            fields,
            layouts,
        }
    }
}

/// A string kept for the life of the process: a fingerprint in a
/// [`WorkflowInfo`], made once per state and workflow type.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Static facts about one persisted state of a workflow.
#[derive(Debug)]
#[non_exhaustive]
pub struct StateInfo {
    /// The stable name (`charge_card#0`).
    pub name: &'static str,
    /// What the state waits for, e.g. `activity charge_card`.
    pub waits_for: &'static str,
    /// The stored locals and their types as written in the source.
    pub fields: &'static [(&'static str, &'static str)],
    /// A hash of the name, the field names and the serde layout of each
    /// field's type (see `docs/versioning.md`): a checkpoint whose
    /// fingerprint differs was written by code with another layout.
    pub fingerprint: &'static str,
}

impl StateInfo {
    /// The fingerprint releases before the traced layout wrote: a hash of
    /// the state's name and its fields' names and types *as spelled*.
    /// Checkpoints that carry it are still read (their data must decode).
    pub fn legacy_fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |s: &str| {
            for b in s.as_bytes() {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            h ^= 0xff;
            h = h.wrapping_mul(0x0100_0000_01b3);
        };
        feed(self.name);
        for (n, t) in self.fields {
            feed(n);
            feed(t);
        }
        format!("{h:016x}")
    }

    /// Builds the facts; used by generated code.
    pub const fn new(
        name: &'static str,
        waits_for: &'static str,
        fields: &'static [(&'static str, &'static str)],
        fingerprint: &'static str,
    ) -> Self {
        Self {
            name,
            waits_for,
            fields,
            fingerprint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_fingerprints_are_the_ones_earlier_releases_wrote() {
        // From the order saga's expansion by the previous release.
        let start = StateInfo::new("start", "start", &[("order_id", "String")], "new");
        assert_eq!(start.legacy_fingerprint(), "bfd53f5b9105dfad");
        let ship = StateInfo::new(
            "ship#0",
            "activity ship",
            &[
                ("payment", "<charge_card as Activity>::Output"),
                ("reservation", "<reserve_inventory as Activity>::Output"),
            ],
            "new",
        );
        assert_eq!(ship.legacy_fingerprint(), "3c28fc1cf0175f3d");
    }
}
