//! The I/O an action names: run the workflow's step function, run an
//! activity or a compensation with its retries, read a child. Each ends in
//! the [`Input`] to decide.

use std::sync::Arc;

use serde_json::Value;

use super::attempts::{self, CallEnd, CallSpec};
use super::lease::Held;
use super::{DriveError, Engine, guarded};
use crate::context::WorkflowContext;
use crate::core::{self, Cause, ChildCheck, CompensationEntry, Input, RunRecord, StepOutcome};
use crate::registry::{AnyState, ErasedActivity, ErasedTransition, ErasedWorkflow};
use crate::telemetry::{metrics, spans};
use crate::workflow::Resume;
use tracing::{Instrument, Span};

/// The activity call an action names.
pub(super) struct Call<'a> {
    pub(super) activity: &'a str,
    pub(super) step: &'a str,
    pub(super) input: &'a Value,
    pub(super) key: &'a str,
}

impl Engine {
    /// The activity, or the park of a run that needs one this worker lacks.
    fn activity(&self, name: &str) -> Result<Arc<dyn ErasedActivity>, Box<Input>> {
        self.registry.find_activity(name).cloned().ok_or_else(|| {
            Box::new(Input::Park {
                reason: format!(
                    "activity `{name}` is not registered on this worker (it knows: {})",
                    self.registry
                        .activity_names()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
        })
    }

    /// Feeds `resume` to the workflow's step function; returns what it did
    /// (or the park of a state that does not decode, a panic, a step error).
    pub(super) fn step(
        &self,
        record: &RunRecord,
        workflow: &Arc<dyn ErasedWorkflow>,
        cached: &mut Option<AnyState>,
        cause: Cause,
        resume: Resume,
    ) -> Input {
        let park = |reason| Input::Park { reason };
        let Some(snapshot) = record.phase.state() else {
            return park("the run has no state to step".to_owned());
        };
        let state = match cached.take() {
            Some(s) => s,
            None => {
                match workflow.decode_state(&snapshot.step, &snapshot.fingerprint, &snapshot.json) {
                    Ok(s) => s,
                    Err(reason) => return park(reason),
                }
            }
        };
        let now = self.clock.now_ms();
        let mut ctx =
            WorkflowContext::new(record.id.clone(), workflow.info().name, record.seq, now)
                .with_run_data(record.queries.clone(), record.patches.clone());
        let transition = match guarded(&format!("after state `{}`", snapshot.step), || {
            workflow.step(&mut ctx, state, resume)
        }) {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => return park(e.to_string()),
            Err(reason) => return park(reason),
        };
        let queries = ctx.into_queries();
        let step = match transition {
            ErasedTransition::Suspend {
                state,
                json,
                name,
                fingerprint,
                command,
            } => {
                *cached = Some(state);
                StepOutcome::Suspend {
                    step: name.to_owned(),
                    fingerprint: fingerprint.to_owned(),
                    json,
                    command: command.into(),
                }
            }
            ErasedTransition::Complete(Ok(output)) => StepOutcome::Completed { output },
            ErasedTransition::Complete(Err(failure)) => StepOutcome::Failed {
                error: failure.json,
                message: failure.message,
            },
            ErasedTransition::ContinueAsNew(start) => {
                *cached = None;
                StepOutcome::ContinueAsNew {
                    input: start.input,
                    step: start.name.to_owned(),
                    fingerprint: start.fingerprint.to_owned(),
                    json: start.state,
                    patches: workflow
                        .info()
                        .patches
                        .iter()
                        .map(|p| (*p).to_owned())
                        .collect(),
                }
            }
        };
        Input::Stepped {
            cause,
            step,
            queries,
        }
    }

    /// Runs the pending activity with its retries. With the workflow here,
    /// its outcome is fed to the step function at once; without (a worker
    /// of the activity's queue), it is recorded for the workflow's worker.
    pub(super) async fn run_activity(
        &self,
        held: &mut Held<'_>,
        record: &mut RunRecord,
        workflow: Option<&Arc<dyn ErasedWorkflow>>,
        cached: &mut Option<AnyState>,
        call: Call<'_>,
    ) -> Result<Option<Input>, DriveError> {
        let handler = match self.activity(call.activity) {
            Ok(h) => h,
            Err(park) => return Ok(Some(*park)),
        };
        let spec = CallSpec {
            activity: call.activity,
            step: call.step,
            input: call.input,
            key: call.key,
        };
        let end = self.call(held, record, &handler, spec, true).await?;
        let outcome = match attempts::outcome_json(call.activity, &end) {
            Ok(o) => o,
            Err(e) => {
                return Ok(Some(Input::Park {
                    reason: format!("the outcome of `{}` does not encode: {e}", call.step),
                }));
            }
        };
        let cause = match end {
            CallEnd::Interrupted => return Ok(None),
            CallEnd::Broken(reason) => return Ok(Some(Input::Park { reason })),
            CallEnd::Succeeded { compensation, .. } => Cause::ActivitySucceeded {
                outcome: outcome.clone(),
                compensation: compensation.map(|c| (c.activity, c.input)),
            },
            CallEnd::GaveUp { attempts, failure } => Cause::ActivityGaveUp {
                outcome: outcome.clone(),
                attempts,
                message: failure.message,
            },
        };
        Ok(Some(match workflow {
            Some(w) => self.step(record, w, cached, cause, Resume::Activity(outcome)),
            None => Input::OutcomeRecorded { cause },
        }))
    }

    /// Runs the compensation on top of the stack with its retries.
    pub(super) async fn run_compensation(
        &self,
        held: &mut Held<'_>,
        record: &mut RunRecord,
        entry: &CompensationEntry,
    ) -> Result<Option<Input>, DriveError> {
        let handler = match self.activity(&entry.activity) {
            Ok(h) => h,
            Err(park) => return Ok(Some(*park)),
        };
        let spec = CallSpec {
            activity: &entry.activity,
            step: &entry.step,
            input: &entry.input,
            key: &entry.key,
        };
        let span = spans::compensation(&entry.activity, &entry.step, &entry.key);
        let end = self
            .call(held, record, &handler, spec, false)
            .instrument(span.clone())
            .await?;
        Ok(match end {
            CallEnd::Interrupted => None,
            CallEnd::Broken(reason) => {
                spans::compensation_ended(&span, Some(&reason));
                Some(Input::Park { reason })
            }
            CallEnd::Succeeded { .. } => {
                spans::compensation_ended(&span, None);
                metrics::compensation(&record.workflow, &entry.activity, true);
                Some(Input::Compensated)
            }
            CallEnd::GaveUp { attempts, failure } => {
                spans::compensation_ended(&span, Some(&failure.message));
                metrics::compensation(&record.workflow, &entry.activity, false);
                Some(Input::CompensationGaveUp {
                    attempts,
                    message: failure.message,
                })
            }
        })
    }

    /// Reads the child the run waits for and decides what that means:
    /// step with its outcome, start it, or wait for it.
    pub(super) async fn check_child(
        &self,
        record: &RunRecord,
        workflow: Option<&Arc<dyn ErasedWorkflow>>,
        cached: &mut Option<AnyState>,
        id: &str,
    ) -> Result<Input, DriveError> {
        let child = self.store.load(id).await?;
        let now = self.clock.now_ms();
        Ok(match core::child_settled(record, child.as_ref(), now) {
            ChildCheck::Step { cause, resume } => match workflow {
                Some(w) => self.step(record, w, cached, cause, resume),
                None => Input::Yield {
                    wake_at_ms: None,
                    dispatch: None,
                    await_signal: None,
                },
            },
            ChildCheck::Start { mut child, then } => {
                // The child continues the parent's trace, under the span
                // of the drive that starts it.
                child.trace = self
                    .propagation
                    .context_of(&Span::current())
                    .or_else(|| record.trace.clone());
                self.store.create(&core::create(*child)).await?;
                then
            }
            ChildCheck::Wait(input) => input,
        })
    }
}
