//! Driving one run, held under a lease, from checkpoint to checkpoint.
//!
//! Each transition is: take the pending command from the envelope, carry it
//! out (run an activity with its retries), feed the outcome to the
//! workflow's step function, and commit the new envelope (state, next
//! command with its frozen arguments, pushed compensation) in one fenced
//! write. While the worker holds the run it keeps going without a round
//! trip through the task queue.

mod attempts;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::activity::ActivityContext;
use crate::clock::Clock;
use crate::context::WorkflowContext;
use crate::crash::{CrashPlan, CrashPoint};
use crate::envelope::{CompensationEntry, Envelope, Pending, Status};
use crate::registry::{AnyState, ErasedActivity, ErasedTransition, ErasedWorkflow, Registry};
use crate::resources::Resources;
use crate::store::{Commit, Lease, Store, StoreError, Task};
use crate::workflow::{Command, Resume};

pub(crate) use attempts::panic_message;
use attempts::{AttemptEnd, CallEnd, run_attempt};

/// Everything a worker's drives share.
pub(crate) struct Engine {
    pub(crate) registry: Arc<Registry>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) resources: Arc<Resources>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) worker_id: String,
    pub(crate) lease_for: Duration,
    /// A task delivered more often than this belongs to a run whose workers
    /// keep dying while driving it: the run is parked instead of retried.
    pub(crate) max_deliveries: u32,
    pub(crate) crash_plan: Option<Arc<dyn CrashPlan>>,
    pub(crate) halt: Halt,
}

/// Set when a simulated crash stops the worker.
#[derive(Default, Clone)]
pub(crate) struct Halt {
    halted: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Halt {
    pub(crate) fn trigger(&self) {
        self.halted.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub(crate) fn is_halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst)
    }

    pub(crate) async fn wait(&self) {
        let notified = self.notify.notified();
        if self.is_halted() {
            return;
        }
        notified.await;
    }
}

/// Why a drive stopped before the run settled or was released.
#[derive(Debug, thiserror::Error)]
enum DriveError {
    /// The run cannot go on; park it with this reason.
    #[error("{0}")]
    Park(String),
    /// The store refused or failed a write; drop the run (another worker or
    /// a redelivery carries on from the last checkpoint).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A simulated crash.
    #[error("crashed on purpose")]
    Crashed,
}

impl Engine {
    /// Drives a run whose lease was just acquired, as far as it goes.
    pub(crate) async fn handle(
        self: &Arc<Self>,
        task: Task,
        lease: Lease,
        envelope: Result<Box<Envelope>, String>,
    ) {
        let _renewal = self.keep_lease(&lease);
        let result = match envelope {
            Ok(_) if task.deliveries > self.max_deliveries => Err(DriveError::Park(format!(
                "its task was delivered {} times without the run making progress: every worker that \
                 took it died (a crash, an out-of-memory kill?); inspect it before resuming it",
                task.deliveries
            ))),
            Ok(envelope) => self.drive(&lease, *envelope).await,
            Err(reason) => Err(DriveError::Park(format!(
                "the stored record cannot be read: {reason}"
            ))),
        };
        match result {
            Ok(()) | Err(DriveError::Crashed) => {}
            Err(DriveError::Park(reason)) => {
                warn!(workflow_id = %lease.workflow_id, %reason, "parking run");
                if let Err(e) = self.store.park(&lease, &reason).await {
                    warn!(workflow_id = %lease.workflow_id, error = %e, "could not park run");
                }
            }
            Err(DriveError::Store(e)) => {
                warn!(workflow_id = %lease.workflow_id, error = %e, "dropping run; it resumes from its last checkpoint");
            }
        }
    }

    /// Renews the lease in the background until the returned guard drops.
    fn keep_lease(self: &Arc<Self>, lease: &Lease) -> impl Drop + use<> {
        let engine = Arc::clone(self);
        let lease = lease.clone();
        let every = self.lease_for / 3;
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = engine.store.renew(&lease, engine.lease_for).await {
                    debug!(workflow_id = %lease.workflow_id, error = %e, "lease renewal failed");
                    if !e.is_transient() {
                        return;
                    }
                }
            }
        });
        AbortGuard(task)
    }

    async fn drive(&self, lease: &Lease, mut env: Envelope) -> Result<(), DriveError> {
        let workflow = self
            .registry
            .find_workflow(&env.workflow)
            .cloned()
            .ok_or_else(|| {
                DriveError::Park(format!(
                    "workflow type `{}` is not registered on this worker (it knows: {})",
                    env.workflow,
                    self.registry
                        .workflow_names()
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let mut state: Option<AnyState> = None;
        loop {
            match env.status {
                Status::Running => {
                    if !self.forward(lease, &mut env, &workflow, &mut state).await? {
                        return Ok(());
                    }
                }
                Status::Compensating => {
                    if !self.compensate_one(lease, &mut env).await? {
                        return Ok(());
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// One forward transition. Returns whether the worker keeps the run.
    async fn forward(
        &self,
        lease: &Lease,
        env: &mut Envelope,
        workflow: &Arc<dyn ErasedWorkflow>,
        cached: &mut Option<AnyState>,
    ) -> Result<bool, DriveError> {
        let pending = env.pending.clone().ok_or_else(|| {
            DriveError::Park("the run is running but has no pending command".into())
        })?;
        let (resume, pushed, mut event) = match pending {
            Pending::Start => (Resume::Start, None, "started".to_owned()),
            Pending::Activity {
                activity,
                step,
                input,
                key,
            } => {
                let handler = self.activity(&activity)?;
                let end = self
                    .call(lease, env, &handler, &step, &step, &input, &key)
                    .await?;
                let outcome = attempts::outcome_json(&activity, &end).map_err(|e| {
                    DriveError::Park(format!("the outcome of `{step}` does not encode: {e}"))
                })?;
                match end {
                    CallEnd::Succeeded { compensation, .. } => {
                        let pushed = compensation.map(|c| CompensationEntry {
                            step: step.clone(),
                            activity: c.activity,
                            input: c.input,
                            key: format!("{key}/undo"),
                        });
                        (
                            Resume::Activity(outcome),
                            pushed,
                            format!("{step} completed"),
                        )
                    }
                    CallEnd::GaveUp { attempts, failure } => (
                        Resume::Activity(outcome),
                        None,
                        format!(
                            "{step} failed after {attempts} attempt(s): {}",
                            failure.message
                        ),
                    ),
                }
            }
        };

        let state = match cached.take() {
            Some(s) => s,
            None => workflow
                .decode_state(&env.step, &env.state_fp, &env.state)
                .map_err(DriveError::Park)?,
        };
        let now = self.clock.now_ms();
        let mut ctx = WorkflowContext::new(env.id.clone(), workflow.info().name, env.seq, now);
        let transition = catch_unwind(AssertUnwindSafe(|| workflow.step(&mut ctx, state, resume)))
            .map_err(|p| {
                DriveError::Park(format!(
                    "workflow code panicked after state `{}`: {}",
                    env.step,
                    panic_message(p.as_ref())
                ))
            })?
            .map_err(|e| DriveError::Park(e.to_string()))?;

        env.seq += 1;
        env.updated_at_ms = now;
        env.attempts = 0;
        env.last_error = None;
        env.compensations.extend(pushed);
        let keep = match transition {
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
                env.pending = Some(pending_for(&command, &env.id, env.seq));
                *cached = Some(state);
                event.push_str(&format!("; next {name}"));
                true
            }
            ErasedTransition::Complete(Ok(output)) => {
                env.status = Status::Completed;
                env.output = Some(output);
                env.compensations.clear();
                event.push_str("; completed");
                self.finish(env);
                false
            }
            ErasedTransition::Complete(Err(failure)) => {
                env.error = Some(failure.json);
                event.push_str(&format!("; returned an error: {}", failure.message));
                env.error_message = Some(failure.message);
                if env.compensations.is_empty() {
                    env.status = Status::Failed;
                    self.finish(env);
                    false
                } else {
                    env.status = Status::Compensating;
                    env.pending = None;
                    env.step.clear();
                    env.state_fp.clear();
                    env.state = Value::Null;
                    true
                }
            }
        };
        self.commit(lease, env, event, !keep).await?;
        Ok(keep)
    }

    /// Runs the most recent pending compensation. Returns whether the
    /// worker keeps the run.
    async fn compensate_one(&self, lease: &Lease, env: &mut Envelope) -> Result<bool, DriveError> {
        let Some(top) = env.compensations.last().cloned() else {
            env.seq += 1;
            env.updated_at_ms = self.clock.now_ms();
            env.status = Status::Failed;
            self.commit(lease, env, "compensations done".into(), true)
                .await?;
            return Ok(false);
        };
        let handler = self.activity(&top.activity)?;
        let label = format!("compensation {} for {}", top.activity, top.step);
        let end = self
            .call(
                lease, env, &handler, &top.step, &label, &top.input, &top.key,
            )
            .await?;
        env.seq += 1;
        env.updated_at_ms = self.clock.now_ms();
        env.attempts = 0;
        env.last_error = None;
        match end {
            CallEnd::Succeeded { .. } => {
                env.compensations.pop();
                let keep = !env.compensations.is_empty();
                if !keep {
                    env.status = Status::Failed;
                }
                let event = format!("compensation {} for {} completed", top.activity, top.step);
                info!(workflow_id = %env.id, activity = %top.activity, step = %top.step, "compensation completed");
                self.commit(lease, env, event, !keep).await?;
                Ok(keep)
            }
            CallEnd::GaveUp { attempts, failure } => {
                let reason = format!(
                    "compensation `{}` for step `{}` failed after {attempts} attempt(s): {}",
                    top.activity, top.step, failure.message
                );
                warn!(workflow_id = %env.id, %reason, "compensation failed; run kept for an operator");
                env.status = Status::CompensationFailed;
                env.reason = Some(reason.clone());
                self.commit(lease, env, reason, true).await?;
                Ok(false)
            }
        }
    }

    /// Runs an activity call with its timeout and retry policy. Every failed
    /// attempt that will be retried is checkpointed, so the attempt count
    /// survives a crash. `step` is the workflow step the call belongs to;
    /// `label` names the call in the history.
    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        lease: &Lease,
        env: &mut Envelope,
        handler: &Arc<dyn ErasedActivity>,
        step: &str,
        label: &str,
        input: &Value,
        key: &str,
    ) -> Result<CallEnd, DriveError> {
        let options = handler.options();
        loop {
            let attempt = env.attempts + 1;
            let ctx = ActivityContext::new(
                env.id.as_str(),
                step,
                key,
                attempt,
                Arc::clone(&self.resources),
            );
            let failure = match run_attempt(handler, input.clone(), ctx, options.timeout).await {
                AttemptEnd::Succeeded {
                    output,
                    compensation,
                } => {
                    return Ok(CallEnd::Succeeded {
                        output,
                        compensation,
                    });
                }
                AttemptEnd::Broken(reason) => return Err(DriveError::Park(reason)),
                AttemptEnd::Failed(failure) => failure,
            };
            let delay = if failure.retryable {
                options.retry.delay_after(attempt)
            } else {
                None
            };
            let Some(delay) = delay else {
                return Ok(CallEnd::GaveUp {
                    attempts: attempt,
                    failure,
                });
            };
            debug!(workflow_id = %env.id, %step, attempt, error = %failure.message, ?delay, "attempt failed; retrying");
            env.seq += 1;
            env.updated_at_ms = self.clock.now_ms();
            env.attempts = attempt;
            let event = format!(
                "{label} attempt {attempt} failed: {}; retrying in {delay:?}",
                failure.message
            );
            env.last_error = Some(failure.message);
            self.commit(lease, env, event, false).await?;
            tokio::time::sleep(delay).await;
        }
    }

    fn activity(&self, name: &str) -> Result<Arc<dyn ErasedActivity>, DriveError> {
        self.registry.find_activity(name).cloned().ok_or_else(|| {
            DriveError::Park(format!(
                "activity `{name}` is not registered on this worker (it knows: {})",
                self.registry
                    .activity_names()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    fn finish(&self, env: &mut Envelope) {
        env.pending = None;
        env.step.clear();
        env.state_fp.clear();
        env.state = Value::Null;
    }

    /// Commits `env` (whose `seq` is already incremented), honouring the
    /// crash plan, and retries while the store is unreachable.
    async fn commit(
        &self,
        lease: &Lease,
        env: &Envelope,
        event: String,
        release: bool,
    ) -> Result<(), DriveError> {
        self.crash_point(&env.id, env.seq, CrashPoint::BeforeCommit)?;
        let mut delay = Duration::from_millis(50);
        let give_up = tokio::time::Instant::now() + self.lease_for;
        loop {
            let commit = Commit::new(env.clone(), event.clone(), release);
            match self.store.commit(lease, commit, self.lease_for).await {
                Ok(()) => break,
                Err(e) if e.is_transient() && tokio::time::Instant::now() + delay < give_up => {
                    warn!(workflow_id = %env.id, error = %e, "commit failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e.into()),
            }
        }
        debug!(workflow_id = %env.id, seq = env.seq, step = %env.step, status = %env.status, %event, "checkpoint");
        self.crash_point(&env.id, env.seq, CrashPoint::AfterCommit)
    }

    fn crash_point(&self, id: &str, seq: u64, point: CrashPoint) -> Result<(), DriveError> {
        if self.halt.is_halted() {
            return Err(DriveError::Crashed);
        }
        if let Some(plan) = &self.crash_plan {
            if plan.should_crash(id, seq, point) {
                info!(workflow_id = %id, seq, ?point, "simulated crash");
                self.halt.trigger();
                return Err(DriveError::Crashed);
            }
        }
        Ok(())
    }
}

/// The pending command checkpointed for a suspension; the idempotency key is
/// fixed here, once, so every attempt and re-execution shares it.
fn pending_for(command: &Command, id: &str, seq: u64) -> Pending {
    match command {
        Command::Activity {
            activity,
            step,
            input,
        } => Pending::Activity {
            activity: (*activity).to_owned(),
            step: (*step).to_owned(),
            input: input.clone(),
            key: format!("{id}/{step}/{seq}"),
        },
    }
}

struct AbortGuard(tokio::task::JoinHandle<()>);

impl Drop for AbortGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
