//! The workflows and activities a worker can run, by name.

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::activity::{Activity, ActivityContext, CompensationCall};
use crate::context::WorkflowContext;
use crate::options::ActivityOptions;
use crate::workflow::{Command, Resume, StepError, Transition, Workflow, WorkflowInfo};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The workflows and activities a worker can run, by registered name.
///
/// Registering a workflow registers every activity it calls and their
/// compensations, so `registry.workflow::<order>()` is usually all a worker
/// needs.
#[derive(Default, Clone)]
pub struct Registry {
    workflows: BTreeMap<&'static str, (TypeId, Arc<dyn ErasedWorkflow>)>,
    activities: BTreeMap<&'static str, (TypeId, Arc<dyn ErasedActivity>)>,
    conflicts: Vec<String>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("workflows", &self.workflows.keys().collect::<Vec<_>>())
            .field("activities", &self.activities.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers workflow `W`, the activities it calls and their
    /// compensations.
    pub fn workflow<W: Workflow>(&mut self) -> &mut Self {
        let id = TypeId::of::<W>();
        match self.workflows.get(W::NAME) {
            Some((existing, _)) if *existing != id => self.conflicts.push(format!(
                "two different workflows are named `{}`; rename one with #[workflow(name = \"..\")]",
                W::NAME
            )),
            Some(_) => {}
            None => {
                // Traces the stored types' layouts now, not on the first run.
                let _ = W::info();
                self.workflows
                    .insert(W::NAME, (id, Arc::new(WorkflowEntry::<W>(std::marker::PhantomData))));
                W::register_activities(self);
            }
        }
        self
    }

    /// Registers activity `A` and its compensation.
    pub fn activity<A: Activity>(&mut self) -> &mut Self {
        let id = TypeId::of::<A>();
        match self.activities.get(A::NAME) {
            Some((existing, _)) if *existing != id => self.conflicts.push(format!(
                "two different activities are named `{}`; rename one with #[activity(name = \"..\")]",
                A::NAME
            )),
            Some(_) => {}
            None => {
                self.activities
                    .insert(A::NAME, (id, Arc::new(ActivityEntry::<A>(std::marker::PhantomData))));
                A::register_compensation(self);
            }
        }
        self
    }

    /// Names of the registered workflows.
    pub fn workflow_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.workflows.keys().copied()
    }

    /// Names of the registered activities.
    pub fn activity_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.activities.keys().copied()
    }

    /// Name clashes found while registering: two types under one name.
    pub fn conflicts(&self) -> &[String] {
        &self.conflicts
    }

    pub(crate) fn find_workflow(&self, name: &str) -> Option<&Arc<dyn ErasedWorkflow>> {
        self.workflows.get(name).map(|(_, w)| w)
    }

    pub(crate) fn find_activity(&self, name: &str) -> Option<&Arc<dyn ErasedActivity>> {
        self.activities.get(name).map(|(_, a)| a)
    }

    /// Whether the activity registered as `name` declares a compensation.
    pub(crate) fn has_compensation(&self, name: &str) -> bool {
        self.find_activity(name)
            .is_some_and(|a| a.has_compensation())
    }

    /// The catalog entry of every registered workflow, as `worker` writes
    /// them at `now_ms`.
    pub(crate) fn catalog(&self, worker: &str, now_ms: u64) -> Vec<crate::catalog::CatalogEntry> {
        self.workflows
            .values()
            .map(|(_, w)| crate::catalog::CatalogEntry::of(w.info(), self, worker, now_ms))
            .collect()
    }
}

/// A decoded workflow state of some workflow type, kept between the steps
/// of a run that a worker holds so it is not decoded again.
pub(crate) struct AnyState(Box<dyn Any + Send>);

/// A step's result with the state encoded for the checkpoint.
pub(crate) enum ErasedTransition {
    Suspend {
        state: AnyState,
        json: Value,
        name: &'static str,
        fingerprint: &'static str,
        command: Command,
    },
    Complete(Result<Value, ErasedFailure>),
    ContinueAsNew(StartState),
}

/// A run's first state, built from its input.
pub(crate) struct StartState {
    pub(crate) input: Value,
    pub(crate) state: Value,
    pub(crate) name: &'static str,
    pub(crate) fingerprint: &'static str,
}

/// A workflow's error, encoded, with its text.
pub(crate) struct ErasedFailure {
    pub(crate) json: Value,
    pub(crate) message: String,
}

pub(crate) trait ErasedWorkflow: Send + Sync {
    fn info(&self) -> &'static WorkflowInfo;
    /// The start state of a run with this input (JSON of `W::Input`).
    fn start_state(&self, input: Value) -> Result<StartState, String>;
    fn decode_state(&self, step: &str, fingerprint: &str, json: &Value)
    -> Result<AnyState, String>;
    /// Whether this code reads a checkpointed state as it is, migrates it,
    /// or cannot read it.
    fn check_state(&self, step: &str, fingerprint: &str, json: &Value) -> StateCheck;
    fn step(
        &self,
        ctx: &mut WorkflowContext,
        state: AnyState,
        resume: Resume,
    ) -> Result<ErasedTransition, StepError>;
}

/// What this code makes of a checkpointed state.
pub(crate) enum StateCheck {
    /// It reads as it is.
    Current(AnyState),
    /// A migration turns it into a state of this code.
    Migrated {
        /// The migration's name.
        migration: String,
        /// The new state's name, layout and JSON.
        step: &'static str,
        fingerprint: &'static str,
        json: Value,
        state: AnyState,
    },
    /// It cannot be read, and no migration applies: why.
    Unreadable(String),
}

struct WorkflowEntry<W>(std::marker::PhantomData<fn() -> W>);

impl<W: Workflow> ErasedWorkflow for WorkflowEntry<W> {
    fn info(&self) -> &'static WorkflowInfo {
        W::info()
    }

    fn start_state(&self, input: Value) -> Result<StartState, String> {
        let typed: W::Input = serde_json::from_value(input.clone())
            .map_err(|e| format!("the input of workflow `{}` does not decode: {e}", W::NAME))?;
        start_state_of::<W>(typed).map(|mut s| {
            s.input = input;
            s
        })
    }

    fn decode_state(
        &self,
        step: &str,
        fingerprint: &str,
        json: &Value,
    ) -> Result<AnyState, String> {
        let info = W::info();
        let Some(known) = info.state(step) else {
            let names: Vec<&str> = info.states.iter().map(|s| s.name).collect();
            return Err(format!(
                "state `{step}` is unknown to this version of workflow `{}` (it knows: {}); \
                 deploy code that has this state, or migrate the run",
                info.name,
                names.join(", ")
            ));
        };
        // Runs checkpointed before layouts were traced carry the fingerprint
        // of their types as spelled: accepted when the spelling still
        // matches, since the data is decoded below and a run whose data
        // does not fit still parks.
        if known.fingerprint != fingerprint && known.legacy_fingerprint() != fingerprint {
            return Err(format!(
                "state `{step}` was checkpointed with layout {fingerprint}, but this code's layout \
                 is {} (fields: {}); deploy the version that wrote it, or migrate the run",
                known.fingerprint,
                describe_fields(known.fields)
            ));
        }
        let state: W::State = serde_json::from_value(json.clone())
            .map_err(|e| format!("state `{step}` does not decode: {e}"))?;
        let decoded = W::state_name(&state);
        if decoded != step {
            return Err(format!(
                "the checkpoint says state `{step}` but its JSON holds state `{decoded}`"
            ));
        }
        Ok(AnyState(Box::new(state)))
    }

    fn check_state(&self, step: &str, fingerprint: &str, json: &Value) -> StateCheck {
        let reason = match self.decode_state(step, fingerprint, json) {
            Ok(state) => return StateCheck::Current(state),
            Err(reason) => reason,
        };
        let Some(migration) = W::migrations()
            .into_iter()
            .find(|m| m.applies_to(step, fingerprint))
        else {
            return StateCheck::Unreadable(reason);
        };
        let migrated = match migration.apply(json) {
            Ok(s) => s,
            Err(e) => {
                return StateCheck::Unreadable(format!(
                    "migration `{}` failed: {e}",
                    migration.name()
                ));
            }
        };
        let name = W::state_name(&migrated);
        let Some(known) = W::info().state(name) else {
            return StateCheck::Unreadable(format!(
                "migration `{}` made state `{name}`, which this code does not list",
                migration.name()
            ));
        };
        match serde_json::to_value(&migrated) {
            Ok(json) => StateCheck::Migrated {
                migration: migration.name().to_owned(),
                step: name,
                fingerprint: known.fingerprint,
                json,
                state: AnyState(Box::new(migrated)),
            },
            Err(e) => StateCheck::Unreadable(format!(
                "the state made by migration `{}` does not encode: {e}",
                migration.name()
            )),
        }
    }

    fn step(
        &self,
        ctx: &mut WorkflowContext,
        state: AnyState,
        resume: Resume,
    ) -> Result<ErasedTransition, StepError> {
        let state = match state.0.downcast::<W::State>() {
            Ok(s) => *s,
            // A state is only ever decoded by the entry of its own workflow.
            Err(_) => unreachable!("state of another workflow type fed to `{}`", W::NAME),
        };
        match W::step(ctx, state, resume)? {
            Transition::Suspend { state, command } => {
                let name = W::state_name(&state);
                let json = serde_json::to_value(&state).map_err(|source| StepError::Encode {
                    what: format!("state `{name}`"),
                    source,
                })?;
                let fingerprint = W::info().state(name).map(|s| s.fingerprint).unwrap_or("");
                Ok(ErasedTransition::Suspend {
                    state: AnyState(Box::new(state)),
                    json,
                    name,
                    fingerprint,
                    command,
                })
            }
            Transition::Complete(Ok(output)) => {
                let json = serde_json::to_value(&output).map_err(|source| StepError::Encode {
                    what: "the workflow's output".to_owned(),
                    source,
                })?;
                Ok(ErasedTransition::Complete(Ok(json)))
            }
            Transition::ContinueAsNew { input } => Ok(ErasedTransition::ContinueAsNew(
                start_state_of::<W>(input).map_err(|e| StepError::Encode {
                    what: "the input of the continued run".to_owned(),
                    source: serde::ser::Error::custom(e),
                })?,
            )),
            Transition::Complete(Err(error)) => {
                let message = error.to_string();
                let json = serde_json::to_value(&error).map_err(|source| StepError::Encode {
                    what: "the workflow's error".to_owned(),
                    source,
                })?;
                Ok(ErasedTransition::Complete(Err(ErasedFailure {
                    json,
                    message,
                })))
            }
        }
    }
}

fn start_state_of<W: Workflow>(input: W::Input) -> Result<StartState, String> {
    let input_json = serde_json::to_value(&input)
        .map_err(|e| format!("the input of workflow `{}` does not encode: {e}", W::NAME))?;
    let state = W::start(input);
    let name = W::state_name(&state);
    let fingerprint = W::info().state(name).map(|s| s.fingerprint).unwrap_or("");
    let state = serde_json::to_value(&state).map_err(|e| {
        format!(
            "the start state of workflow `{}` does not encode: {e}",
            W::NAME
        )
    })?;
    Ok(StartState {
        input: input_json,
        state,
        name,
        fingerprint,
    })
}

fn describe_fields(fields: &[(&str, &str)]) -> String {
    if fields.is_empty() {
        return "none".to_owned();
    }
    fields
        .iter()
        .map(|(n, t)| format!("{n}: {t}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How one attempt of an activity ended.
pub(crate) enum AttemptResult {
    Succeeded {
        output: Value,
        compensation: Option<CompensationCall>,
    },
    Failed {
        error: Value,
        message: String,
        retryable: bool,
    },
    /// The frozen arguments do not decode, or the result does not encode:
    /// no retry can help.
    Broken(String),
}

pub(crate) trait ErasedActivity: Send + Sync {
    fn options(&self) -> ActivityOptions;
    fn has_compensation(&self) -> bool;
    fn attempt(&self, input: Value, ctx: ActivityContext) -> BoxFuture<AttemptResult>;
}

struct ActivityEntry<A>(std::marker::PhantomData<fn() -> A>);

impl<A: Activity> ErasedActivity for ActivityEntry<A> {
    fn options(&self) -> ActivityOptions {
        A::options()
    }

    fn has_compensation(&self) -> bool {
        A::HAS_COMPENSATION
    }

    fn attempt(&self, input: Value, ctx: ActivityContext) -> BoxFuture<AttemptResult> {
        Box::pin(async move {
            // The compensation is built from the call's arguments after the
            // call has consumed them, so keep the encoded arguments.
            let for_compensation = A::HAS_COMPENSATION.then(|| input.clone());
            let call: A = match serde_json::from_value(input) {
                Ok(c) => c,
                Err(e) => {
                    return AttemptResult::Broken(format!(
                        "the arguments of activity `{}` do not decode: {e}",
                        A::NAME
                    ));
                }
            };
            match call.run(&ctx).await {
                Ok(output) => {
                    let compensation = match for_compensation {
                        None => Ok(None),
                        Some(args) => {
                            serde_json::from_value::<A>(args).and_then(|c| c.compensation(&output))
                        }
                    };
                    let compensation = match compensation {
                        Ok(c) => c,
                        Err(e) => {
                            return AttemptResult::Broken(format!(
                                "the compensation of activity `{}` does not encode: {e}",
                                A::NAME
                            ));
                        }
                    };
                    match serde_json::to_value(&output) {
                        Ok(output) => AttemptResult::Succeeded {
                            output,
                            compensation,
                        },
                        Err(e) => AttemptResult::Broken(format!(
                            "the output of activity `{}` does not encode: {e}",
                            A::NAME
                        )),
                    }
                }
                Err(error) => {
                    let retryable = A::is_retryable(&error);
                    let message = error.to_string();
                    match serde_json::to_value(&error) {
                        Ok(error) => AttemptResult::Failed {
                            error,
                            message,
                            retryable,
                        },
                        Err(e) => AttemptResult::Broken(format!(
                            "the error of activity `{}` does not encode: {e} (it said: {message})",
                            A::NAME
                        )),
                    }
                }
            }
        })
    }
}
