//! One forward transition: what the pending command needs, then the step.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::attempts::{self, CallEnd, CallSpec};
use super::{DriveError, Engine, Held, Opts, guarded};
use crate::context::WorkflowContext;
use crate::envelope::{CompensationEntry, Envelope, Pending, Status};
use crate::registry::{AnyState, ErasedTransition, ErasedWorkflow};
use crate::workflow::{Command, Resume};

/// How long a parent waiting for a child sleeps before looking again, in
/// case the child's wake-up was lost.
const CHILD_RECHECK: Duration = Duration::from_secs(60);

/// What the run waits for after a suspension.
enum Wait {
    /// Work this worker does next: keep the lease.
    Hold,
    /// A timer: release until then.
    Timer(u64),
    /// A signal, until a deadline if given.
    Signal { name: String, deadline: Option<u64> },
}

/// What carrying out the pending command came to.
enum Resolved {
    /// The state is resumed with this.
    Resumed(Resumed),
    /// The run was released (it waits for something not there yet) or
    /// handed to another queue.
    Released,
    /// A stop request or the execution deadline interrupted the work: act
    /// on it.
    Again,
}

/// The outcome a state is resumed with, and what its transition records.
struct Resumed {
    resume: Resume,
    pushed: Option<CompensationEntry>,
    event: String,
    consumed: Option<u64>,
}

impl Engine {
    /// One forward transition. Returns whether the worker keeps the run.
    pub(super) async fn forward(
        &self,
        held: &mut Held<'_>,
        env: &mut Envelope,
        workflow: Option<&Arc<dyn ErasedWorkflow>>,
        cached: &mut Option<AnyState>,
    ) -> Result<bool, DriveError> {
        let resumed = match self.resolve(held, env, workflow.is_some()).await? {
            Resolved::Resumed(r) => r,
            Resolved::Released => return Ok(false),
            Resolved::Again => return Ok(true),
        };
        let Some(workflow) = workflow else {
            return self.not_here(held, env).await;
        };
        self.step(held, env, workflow, cached, resumed).await
    }

    /// Carries out the pending command.
    async fn resolve(
        &self,
        held: &mut Held<'_>,
        env: &mut Envelope,
        has_workflow: bool,
    ) -> Result<Resolved, DriveError> {
        let now = self.clock.now_ms();
        let pending = env.pending.clone().ok_or_else(|| {
            DriveError::Park("the run is running but has no pending command".into())
        })?;
        let resumed = |resume, event: String| {
            Resolved::Resumed(Resumed {
                resume,
                pushed: None,
                event,
                consumed: None,
            })
        };
        match pending {
            Pending::Start => Ok(resumed(Resume::Start, "started".to_owned())),
            Pending::Activity {
                activity,
                step,
                input,
                key,
                queue,
            } => {
                if let Some(outcome) = env.outcome.take() {
                    if !has_workflow {
                        // Recorded for the workflow's worker; not ours to use.
                        env.outcome = Some(outcome);
                        self.store.release(held.lease, None, None).await?;
                        return Ok(Resolved::Released);
                    }
                    return Ok(resumed(
                        Resume::Activity(outcome),
                        format!("{step} completed"),
                    ));
                }
                let serves = queue
                    .as_deref()
                    .is_none_or(|q| self.queues.iter().any(|s| s == q));
                if !serves {
                    // The activity runs on another queue's workers.
                    let to = queue.unwrap_or_default();
                    self.store.release(held.lease, Some(&to), None).await?;
                    return Ok(Resolved::Released);
                }
                let handler = self.activity(&activity)?;
                let spec = CallSpec {
                    step: &step,
                    label: &step,
                    input: &input,
                    key: &key,
                };
                let end = self.call(held, env, &handler, spec, true).await?;
                let outcome = attempts::outcome_json(&activity, &end).map_err(|e| {
                    DriveError::Park(format!("the outcome of `{step}` does not encode: {e}"))
                })?;
                let (pushed, event) = match end {
                    CallEnd::Interrupted => return Ok(Resolved::Again),
                    CallEnd::Succeeded { compensation, .. } => (
                        compensation.map(|c| CompensationEntry {
                            step: step.clone(),
                            activity: c.activity,
                            input: c.input,
                            key: format!("{key}/undo"),
                        }),
                        format!("{step} completed"),
                    ),
                    CallEnd::GaveUp { attempts, failure } => (
                        None,
                        format!(
                            "{step} failed after {attempts} attempt(s): {}",
                            failure.message
                        ),
                    ),
                };
                if !has_workflow {
                    // A worker of the activity's queue: record the outcome and
                    // hand the run back to the workflow's queue.
                    self.begin_transition(env);
                    env.outcome = Some(outcome);
                    env.compensations.extend(pushed);
                    let back = env.queue.clone();
                    let opts = Opts {
                        release: true,
                        dispatch: Some(back.clone()),
                        ..Opts::default()
                    };
                    self.commit(
                        held,
                        env,
                        format!("{event}; outcome sent to queue {back}"),
                        opts,
                    )
                    .await?;
                    return Ok(Resolved::Released);
                }
                Ok(Resolved::Resumed(Resumed {
                    resume: Resume::Activity(outcome),
                    pushed,
                    event,
                    consumed: None,
                }))
            }
            Pending::Timer { step, until_ms } => {
                if now >= until_ms {
                    return Ok(resumed(Resume::Timer, format!("{step} timer fired")));
                }
                let wake = Self::before_deadline(env, Some(until_ms));
                self.store.release(held.lease, None, wake).await?;
                Ok(Resolved::Released)
            }
            Pending::Signal {
                step,
                name,
                deadline_ms,
            } => {
                if let Some(signal) = env.signals.iter().find(|s| s.name == name).cloned() {
                    return Ok(Resolved::Resumed(Resumed {
                        resume: Resume::Signal(Some(signal.payload)),
                        pushed: None,
                        event: format!("{step} received signal {name}"),
                        consumed: Some(signal.nonce),
                    }));
                }
                if deadline_ms.is_some_and(|d| now >= d) {
                    return Ok(resumed(
                        Resume::Signal(None),
                        format!("{step} gave up waiting for signal {name}"),
                    ));
                }
                let wake = Self::before_deadline(env, deadline_ms);
                self.store.release(held.lease, None, wake).await?;
                Ok(Resolved::Released)
            }
            Pending::Child {
                step,
                workflow,
                id,
                input,
                start_state,
                start_fp,
                queue,
                patches,
            } => match self.store.load(&id).await? {
                Some(child) if child.workflow != workflow => {
                    let taken = format!(
                        "run `{id}` is a `{}` workflow, not a `{workflow}`",
                        child.workflow
                    );
                    let outcome = json!({ "Err": { "id_taken": taken } });
                    Ok(resumed(
                        Resume::Child(outcome),
                        format!("{step}: child id taken"),
                    ))
                }
                Some(child) if child.status.is_settled() => Ok(resumed(
                    Resume::Child(child_outcome(&child)),
                    format!("{step}: child {id} {}", child.status),
                )),
                found => {
                    if found.is_none() {
                        let mut run = Envelope::new_run(
                            id.clone(),
                            workflow,
                            queue,
                            input,
                            start_state,
                            start_fp,
                            now,
                        );
                        run.parent = Some(env.id.clone());
                        run.patches = patches;
                        self.store.start(run).await?;
                    }
                    let recheck =
                        now + u64::try_from(CHILD_RECHECK.as_millis()).unwrap_or(u64::MAX);
                    let wake = Self::before_deadline(env, Some(recheck));
                    self.store.release(held.lease, None, wake).await?;
                    Ok(Resolved::Released)
                }
            },
        }
    }

    /// A run whose workflow this worker does not know: parked when it came
    /// from the workflow's own queue (the worker is misconfigured), released
    /// when it came from another queue (an activity queue's stale task).
    async fn not_here(&self, held: &mut Held<'_>, env: &Envelope) -> Result<bool, DriveError> {
        if held.lease.task.queue == env.queue {
            return Err(DriveError::Park(format!(
                "workflow type `{}` is not registered on this worker (it knows: {})",
                env.workflow,
                self.registry
                    .workflow_names()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        self.store.release(held.lease, None, None).await?;
        Ok(false)
    }

    /// Feeds the outcome to the workflow and commits what it decides.
    async fn step(
        &self,
        held: &mut Held<'_>,
        env: &mut Envelope,
        workflow: &Arc<dyn ErasedWorkflow>,
        cached: &mut Option<AnyState>,
        resumed: Resumed,
    ) -> Result<bool, DriveError> {
        let Resumed {
            resume,
            pushed,
            mut event,
            consumed,
        } = resumed;
        let state = match cached.take() {
            Some(s) => s,
            None => workflow
                .decode_state(&env.step, &env.state_fp, &env.state)
                .map_err(DriveError::Park)?,
        };
        let now = self.clock.now_ms();
        let mut ctx = WorkflowContext::new(env.id.clone(), workflow.info().name, env.seq, now)
            .with_run_data(env.queries.clone(), env.patches.clone());
        let transition = guarded(&format!("after state `{}`", env.step), || {
            workflow.step(&mut ctx, state, resume)
        })?
        .map_err(|e| DriveError::Park(e.to_string()))?;
        env.queries = ctx.into_queries();
        self.begin_transition(env);
        env.outcome = None;
        env.compensations.extend(pushed);
        let mut opts = Opts {
            consume_signal: consumed,
            ..Opts::default()
        };
        match transition {
            ErasedTransition::Suspend {
                state,
                json,
                name,
                fingerprint,
                command,
            } => {
                env.step = name.to_owned();
                env.state_fp = fingerprint.to_owned();
                env.state = json;
                let (pending, wait) = pending_for(command, env, now);
                env.pending = Some(pending);
                match wait {
                    Wait::Hold => {}
                    Wait::Timer(until) => {
                        opts.release = true;
                        opts.wake_at = Self::before_deadline(env, Some(until));
                    }
                    Wait::Signal { name, deadline } => {
                        opts.release = true;
                        opts.await_signal = Some(name);
                        opts.wake_at = Self::before_deadline(env, deadline);
                    }
                }
                *cached = Some(state);
                event.push_str(&format!("; next {name}"));
            }
            ErasedTransition::Complete(Ok(output)) => {
                env.status = Status::Completed;
                env.output = Some(output);
                env.compensations.clear();
                self.clear_state(env);
                event.push_str("; completed");
                opts.release = true;
            }
            ErasedTransition::Complete(Err(failure)) => {
                env.error = Some(failure.json);
                event.push_str(&format!("; returned an error: {}", failure.message));
                env.error_message = Some(failure.message);
                self.clear_state(env);
                if env.compensations.is_empty() {
                    env.status = Status::Failed;
                    opts.release = true;
                } else {
                    env.status = Status::Compensating;
                    env.ending = Some(Status::Failed);
                }
            }
            ErasedTransition::ContinueAsNew(start) => {
                env.generation += 1;
                env.input = start.input;
                env.state = start.state;
                env.step = start.name.to_owned();
                env.state_fp = start.fingerprint.to_owned();
                env.pending = Some(Pending::Start);
                env.patches = workflow
                    .info()
                    .patches
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect();
                *cached = None;
                opts.trim_history = true;
                event = format!("{event}; continued as new (generation {})", env.generation);
            }
        }
        let release = opts.release;
        let committed = self.commit(held, env, event, opts).await?;
        Ok(!release || committed.signal.is_some())
    }
}

/// The pending command checkpointed for a suspension, and what the run then
/// waits for. An activity's idempotency key is fixed here, once.
fn pending_for(command: Command, env: &Envelope, now: u64) -> (Pending, Wait) {
    let at = |d: Duration| now.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    match command {
        Command::Activity {
            activity,
            step,
            input,
            queue,
        } => (
            Pending::Activity {
                activity: activity.to_owned(),
                step: step.to_owned(),
                input,
                key: format!("{}/{step}/{}", env.id, env.seq),
                queue: queue.map(str::to_owned),
            },
            Wait::Hold,
        ),
        Command::Sleep { step, duration } => {
            let until = at(duration);
            (
                Pending::Timer {
                    step: step.to_owned(),
                    until_ms: until,
                },
                Wait::Timer(until),
            )
        }
        Command::Signal {
            step,
            name,
            timeout,
        } => {
            let deadline = timeout.map(at);
            (
                Pending::Signal {
                    step: step.to_owned(),
                    name: name.to_owned(),
                    deadline_ms: deadline,
                },
                Wait::Signal {
                    name: name.to_owned(),
                    deadline,
                },
            )
        }
        Command::Child {
            step,
            workflow,
            id,
            input,
            start_state,
            start_fp,
            queue,
            patches,
        } => (
            Pending::Child {
                step: step.to_owned(),
                workflow: workflow.to_owned(),
                id,
                input,
                start_state,
                start_fp: start_fp.to_owned(),
                queue: queue.to_owned(),
                patches: patches.iter().map(|p| (*p).to_owned()).collect(),
            },
            Wait::Hold,
        ),
    }
}

/// The JSON of `Result<Output, ChildError<Error>>` for a settled child.
fn child_outcome(child: &Envelope) -> Value {
    let reason = || child.reason.clone().unwrap_or_default();
    let stop = || child.stop_reason().to_owned();
    match child.status {
        Status::Completed => json!({ "Ok": child.output.clone().unwrap_or(Value::Null) }),
        Status::Failed => {
            json!({ "Err": { "failed": child.error.clone().unwrap_or(Value::Null) } })
        }
        Status::Cancelled => json!({ "Err": { "cancelled": stop() } }),
        Status::Terminated => json!({ "Err": { "terminated": stop() } }),
        Status::TimedOut => json!({ "Err": "timed_out" }),
        _ => json!({ "Err": { "stuck": reason() } }),
    }
}
