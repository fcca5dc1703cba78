//! Driving one run, held under a lease, from transition to transition: a
//! thin loop around the core.
//!
//! ```text
//! loop { plan → act (activity attempts, step function, child) → decide → apply }
//! ```
//!
//! [`crate::core::plan`] says what to do, the engine does the I/O it names,
//! [`crate::core::decide`] turns what happened into a decision, and the
//! store applies it under the lease's fence. While the worker holds the run
//! it keeps going without a round trip through the task queue; a decision
//! that releases the lease ends the drive.

mod act;
mod attempts;
mod lease;
mod periodic;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::{Instrument, Span, debug, info, warn};

use crate::clock::Clock;
use crate::core::{self, Action, Capabilities, Decision, FollowUp, Input, RunRecord, Write};
use crate::crash::{CrashPlan, CrashPoint};
use crate::operator;
use crate::registry::{Registry, StateCheck};
use crate::resources::Resources;
use crate::store::{Lease, Store, StoreError, Task, Unreadable};
use crate::telemetry::{Propagation, metrics, spans};

pub(crate) use attempts::panic_message;
use lease::{Held, LeaseProof};

/// Everything a worker's drives share.
pub(crate) struct Engine {
    pub(crate) registry: Arc<Registry>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) resources: Arc<Resources>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) worker_id: String,
    /// The task queues this worker serves (activities routed to one of them
    /// run here).
    pub(crate) queues: Vec<String>,
    pub(crate) lease_for: Duration,
    /// A task delivered more often than this belongs to a run whose workers
    /// keep dying while driving it: the run is parked instead of retried.
    pub(crate) max_deliveries: u32,
    pub(crate) crash_plan: Option<Arc<dyn CrashPlan>>,
    pub(crate) halt: Halt,
    /// How large a run's data may grow: a decision over a limit parks the
    /// run instead of being written.
    pub(crate) limits: core::Limits,
    /// Continues a run's stored trace context in its spans.
    pub(crate) propagation: Propagation,
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
pub(crate) enum DriveError {
    /// The store refused or failed a write; drop the run (another worker or
    /// a redelivery carries on from the last checkpoint).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A simulated crash.
    #[error("crashed on purpose")]
    Crashed,
}

impl Engine {
    /// Drives a run whose lease was just acquired (the acquisition sent at
    /// `asked_at`), as far as it goes.
    pub(crate) async fn handle(
        self: &Arc<Self>,
        task: Task,
        lease: Lease,
        record: Result<Box<RunRecord>, Unreadable>,
        asked_at: Instant,
    ) {
        let proof = LeaseProof::new(asked_at, self.lease_for);
        let (_renewal, interrupts) = self.keep_lease(&lease, &proof);
        let mut held = Held {
            lease: &lease,
            proof,
            interrupts,
            live: true,
        };
        let (workflow, trace) = match &record {
            Ok(r) => (r.workflow.as_str(), r.trace.as_ref()),
            Err(_) => ("", None),
        };
        let span = spans::run(
            &lease.workflow_id,
            workflow,
            &task.queue,
            &self.worker_id,
            lease.fence,
        );
        self.propagation.continue_trace(&span, trace);
        let _driving = metrics::Driving::new(&task.queue);
        let result = async {
            match record {
                Ok(record) => self.drive(&mut held, *record, task.deliveries).await,
                Err(unreadable) => self.park_unreadable(&held, unreadable).await,
            }
        }
        .instrument(span.clone())
        .await;
        match result {
            Ok(()) | Err(DriveError::Crashed) => {}
            Err(DriveError::Store(e)) => {
                spans::failed(&span, "store", &e.to_string());
                warn!(parent: &span, workflow_id = %lease.workflow_id, error = %e, "dropping run; it resumes from its last checkpoint");
            }
        }
    }

    async fn park_unreadable(
        &self,
        held: &Held<'_>,
        unreadable: Unreadable,
    ) -> Result<(), DriveError> {
        let id = &held.lease.workflow_id;
        warn!(workflow_id = %id, reason = %unreadable.reason, "parking a run whose record does not read");
        let last = match self.store.history(id).await {
            Ok(h) => h.last().map(|e| e.seq),
            Err(e) => {
                debug!(workflow_id = %id, error = %e, "cannot read the history of an unreadable run");
                None
            }
        };
        let decision = core::park_unreadable(
            &unreadable.reason,
            unreadable.seq,
            last,
            self.clock.now_ms(),
        );
        let guard = held.lease.guard(None, self.lease_for);
        self.store.apply(id, &guard, &decision).await?;
        Ok(())
    }

    async fn drive(
        &self,
        held: &mut Held<'_>,
        mut record: RunRecord,
        deliveries: u32,
    ) -> Result<(), DriveError> {
        let workflow = self.registry.find_workflow(&record.workflow).cloned();
        let known: Vec<&str> = self.registry.workflow_names().collect();
        let mut cached = None;
        let mut first = core::poisoned(deliveries, self.max_deliveries);
        // A stop due is acted on first (it needs no state); otherwise the
        // state is read with this code now: kept decoded, or migrated.
        if first.is_none() && core::stop_due(&record, self.clock.now_ms()).is_none() {
            first = Self::check_state(workflow.as_ref(), &record, &mut cached);
        }
        loop {
            let input = match first.take() {
                Some(input) => Some(input),
                None => {
                    let caps = Capabilities {
                        knows_workflow: workflow.is_some(),
                        queues: &self.queues,
                        task_queue: &held.lease.task.queue,
                        known_workflows: &known,
                    };
                    let action = core::plan(&record, &caps, self.clock.now_ms());
                    self.act(held, &mut record, workflow.as_ref(), &mut cached, action)
                        .await?
                }
            };
            // `None`: a stop request or the deadline cut the work short;
            // plan again to act on it.
            let Some(input) = input else { continue };
            if !self.decide_and_apply(held, &mut record, input).await? {
                return Ok(());
            }
        }
    }

    /// Reads the state of a run just acquired with this code: as it is (kept
    /// decoded for the first step), or migrated from an older layout (the
    /// migration is the first transition). A state that does not read parks
    /// the run when it steps, not here: a run that only yields (a timer not
    /// yet due) is left as it is, and a stop still runs its compensations.
    fn check_state(
        workflow: Option<&Arc<dyn crate::registry::ErasedWorkflow>>,
        record: &RunRecord,
        cached: &mut Option<crate::registry::AnyState>,
    ) -> Option<Input> {
        let workflow = workflow?;
        let state = record.phase.state().filter(|_| record.phase.is_forward())?;
        match workflow.check_state(&state.step, &state.fingerprint, &state.json) {
            StateCheck::Current(decoded) => {
                *cached = Some(decoded);
                None
            }
            StateCheck::Migrated {
                migration,
                step,
                fingerprint,
                json,
                state: decoded,
            } => {
                info!(workflow_id = %record.id, from = %state.step, to = step, %migration, "migrating a state of older code");
                *cached = Some(decoded);
                Some(Input::Migrated {
                    step: step.to_owned(),
                    fingerprint: fingerprint.to_owned(),
                    json,
                    migration,
                })
            }
            StateCheck::Unreadable(_) => None,
        }
    }

    /// Carries out an action's I/O; returns the input to decide (`None` to
    /// plan again).
    async fn act(
        &self,
        held: &mut Held<'_>,
        record: &mut RunRecord,
        workflow: Option<&Arc<dyn crate::registry::ErasedWorkflow>>,
        cached: &mut Option<crate::registry::AnyState>,
        action: Action,
    ) -> Result<Option<Input>, DriveError> {
        Ok(match action {
            Action::Decide(input) => Some(input),
            Action::Step { cause, resume } => Some(match workflow {
                Some(w) => self.step(record, w, cached, cause, resume),
                None => Input::Park {
                    reason: format!("workflow type `{}` is not registered", record.workflow),
                },
            }),
            Action::RunActivity {
                activity,
                step,
                input,
                key,
            } => {
                let call = act::Call {
                    activity: &activity,
                    step: &step,
                    input: &input,
                    key: &key,
                };
                self.run_activity(held, record, workflow, cached, call)
                    .await?
            }
            Action::RunCompensation { entry } => {
                self.run_compensation(held, record, &entry).await?
            }
            Action::CheckChild { id } => {
                Some(self.check_child(record, workflow, cached, &id).await?)
            }
        })
    }

    /// Decides `input` on `record` and applies the decision under the
    /// lease, honouring the crash plan and retrying while the store is
    /// unreachable, in a `steadfast.transition` span. Returns whether the
    /// worker keeps the run.
    async fn decide_and_apply(
        &self,
        held: &mut Held<'_>,
        record: &mut RunRecord,
        input: Input,
    ) -> Result<bool, DriveError> {
        let span = spans::transition(record.step(), held.lease.fence);
        self.decide_and_apply_in(held, record, input, &span)
            .instrument(span.clone())
            .await
    }

    async fn decide_and_apply_in(
        &self,
        held: &mut Held<'_>,
        record: &mut RunRecord,
        input: Input,
        span: &Span,
    ) -> Result<bool, DriveError> {
        let now = self.clock.now_ms();
        let park = |reason: String| {
            core::decide(record, Input::Park { reason }, now).map_err(|r| {
                StoreError::Backend(format!("run `{}` cannot be parked: {r}", record.id))
            })
        };
        // Data over the limits is not written: the run parks with its last
        // good checkpoint and a reason naming the size and the limit.
        let input = match self.limits.check_input(record, &input) {
            Ok(()) => input,
            Err(over) => Input::Park {
                reason: over.park_reason(),
            },
        };
        let parking = matches!(input, Input::Park { .. });
        let mut decision = match core::decide(record, input, now) {
            Ok(d) => d,
            Err(refusal) => {
                // The record and the worker disagree (a bug, or a record
                // changed under the worker): stop for an operator.
                park(format!("the worker could not go on: {refusal}"))?
            }
        };
        if !parking && let Err(over) = self.limits.check_decision(&decision) {
            decision = park(over.park_reason())?;
        }
        let transition = decision.history.as_ref().map(|h| h.seq);
        if let Some(seq) = transition {
            self.crash_point(&record.id, seq, CrashPoint::BeforeCommit)?;
        }
        if let Some(park) = decision.record().filter(|r| r.status().needs_attention()) {
            warn!(workflow_id = %park.id, reason = %park.reason().unwrap_or_default(), status = %park.status(), "run stopped for an operator");
        }
        // A child is stopped before the parent's stop is applied: should the
        // answer of the apply be lost, the next holder decides the same stop
        // and stops it again (stopping is idempotent).
        let (before, after): (Vec<FollowUp>, Vec<FollowUp>) = decision
            .follow_ups
            .iter()
            .cloned()
            .partition(|f| matches!(f, FollowUp::StopChild { .. }));
        self.follow_up(before).await;
        let guard = held.lease.guard(Some(record.seq), self.lease_for);
        let committing = Instant::now();
        let mut delay = Duration::from_millis(50);
        let give_up = tokio::time::Instant::now() + self.lease_for;
        let applied = loop {
            let sent = Instant::now();
            match self.store.apply(&record.id, &guard, &decision).await {
                Ok(a) => {
                    if decision.keeps_lease() {
                        held.proof.extended(sent, self.lease_for);
                    }
                    break a;
                }
                // The store's own cap, past the limits (they were raised
                // above it): parked the same way, nothing of it written.
                Err(e @ StoreError::TooLarge { .. }) if !parking && !decision_parks(&decision) => {
                    warn!(workflow_id = %record.id, error = %e, "the store refused a decision as too large; parking the run");
                    decision = park(format!(
                        "{e} (raise RedisStoreBuilder::max_decision_bytes, then resume the run)"
                    ))?;
                }
                Err(e) if e.is_transient() && tokio::time::Instant::now() + delay < give_up => {
                    warn!(workflow_id = %record.id, error = %e, "applying a decision failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let keep = decision.keeps_lease() || applied.signal.is_some();
        if let Some(h) = &decision.history {
            debug!(workflow_id = %record.id, seq = h.seq, step = %h.step, status = %h.status, event = %h.event, "checkpoint");
            metrics::transition(&record.workflow, h.status, committing.elapsed());
            spans::transitioned(span, h, decision.record().and_then(RunRecord::reason));
        }
        let Decision { write, .. } = decision;
        if let Write::Record(next) = write {
            *record = *next;
        }
        record.interrupt = applied.interrupt;
        if let Some(signal) = applied.signal
            && !record.signals.iter().any(|s| s.nonce == signal.nonce)
        {
            record.signals.push(signal);
        }
        self.follow_up(after).await;
        if let Some(seq) = transition {
            self.crash_point(&record.id, seq, CrashPoint::AfterCommit)?;
        }
        Ok(keep)
    }

    /// Carries out effects on other runs: at least once, and failures only
    /// logged (a parent also rechecks its child on a timer).
    async fn follow_up(&self, follow_ups: Vec<FollowUp>) {
        for f in follow_ups {
            let now = self.clock.now_ms();
            let (id, input) = match f {
                FollowUp::WakeParent { parent } => (parent, Input::Wake),
                FollowUp::StopChild { child, interrupt } => (child, Input::RequestStop(interrupt)),
            };
            if let Err(e) = operator::send(self.store.as_ref(), &id, input, now).await {
                debug!(run = %id, error = ?e, "could not reach a related run; its timer will");
            }
        }
    }

    fn crash_point(&self, id: &str, seq: u64, point: CrashPoint) -> Result<(), DriveError> {
        if self.halt.is_halted() {
            return Err(DriveError::Crashed);
        }
        if let Some(plan) = &self.crash_plan
            && plan.should_crash(id, seq, point)
        {
            info!(workflow_id = %id, seq, ?point, "simulated crash");
            self.halt.trigger();
            return Err(DriveError::Crashed);
        }
        Ok(())
    }
}

/// Whether a decision parks the run (never refused for its size: it writes
/// the last good checkpoint again).
fn decision_parks(decision: &Decision) -> bool {
    decision
        .record()
        .is_some_and(|r| r.status().needs_attention())
}

/// Runs the closure, turning a panic into a park reason.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        format!(
            "workflow code panicked {what}: {}",
            panic_message(p.as_ref())
        )
    })
}

pub(crate) struct AbortGuard(tokio::task::JoinHandle<()>);

impl Drop for AbortGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
