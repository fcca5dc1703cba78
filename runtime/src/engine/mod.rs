//! Driving one run, held under a lease, from checkpoint to checkpoint.
//!
//! Each transition is: take the pending command from the envelope, carry it
//! out (run an activity with its retries, see whether a timer is due, a
//! signal came, a child settled), feed the outcome to the workflow's step
//! function, and commit the new envelope (state, next command with its
//! frozen arguments, pushed compensation) in one fenced write. While the
//! worker holds the run it keeps going without a round trip through the
//! task queue; when the run waits for something outside the worker it is
//! released, with a durable timer when the wait has an end.
//!
//! Between transitions the engine acts on stop requests: a cancel or an
//! execution timeout stops the run and unwinds its compensations; a
//! terminate stops it at once.

mod attempts;
mod compensate;
mod forward;
mod periodic;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, watch};
use tracing::{debug, info, warn};

use crate::clock::Clock;
use crate::crash::{CrashPlan, CrashPoint};
use crate::envelope::{Envelope, Interrupt, Pending, Status};
use crate::registry::{ErasedActivity, Registry};
use crate::resources::Resources;
use crate::store::{Commit, Committed, Lease, Store, StoreError, Task};

pub(crate) use attempts::panic_message;

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

/// A run this worker holds: its lease, and stop requests seen by the
/// lease renewals.
struct Held<'a> {
    lease: &'a Lease,
    interrupts: watch::Receiver<Option<Interrupt>>,
    /// Whether renewals still report (false once they stopped).
    live: bool,
}

impl Held<'_> {
    /// The error of a drive whose lease is gone.
    fn lost(&self) -> DriveError {
        DriveError::Store(StoreError::Fenced {
            workflow_id: self.lease.workflow_id.clone(),
            fence: self.lease.fence,
        })
    }
}

/// How a run is asked to stop.
#[derive(Debug, Clone)]
enum Stop {
    Cancel(String),
    Terminate(String),
    TimedOut,
}

/// What a commit does besides writing the checkpoint.
#[derive(Default)]
struct Opts {
    release: bool,
    await_signal: Option<String>,
    wake_at: Option<u64>,
    consume_signal: Option<u64>,
    dispatch: Option<String>,
    clear_interrupt: Option<Interrupt>,
    trim_history: bool,
}

impl Engine {
    /// Drives a run whose lease was just acquired, as far as it goes.
    pub(crate) async fn handle(
        self: &Arc<Self>,
        task: Task,
        lease: Lease,
        envelope: Result<Box<Envelope>, String>,
    ) {
        let (_renewal, interrupts) = self.keep_lease(&lease);
        let mut held = Held {
            lease: &lease,
            interrupts,
            live: true,
        };
        let result = match envelope {
            Ok(_) if task.deliveries > self.max_deliveries => Err(DriveError::Park(format!(
                "its task was delivered {} times without the run making progress: every worker that \
                 took it died (a crash, an out-of-memory kill?); inspect it before resuming it",
                task.deliveries
            ))),
            Ok(envelope) => self.drive(&mut held, *envelope).await,
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

    /// Renews the lease in the background until the returned guard drops,
    /// reporting stop requests the renewals see.
    fn keep_lease(
        self: &Arc<Self>,
        lease: &Lease,
    ) -> (AbortGuard, watch::Receiver<Option<Interrupt>>) {
        let engine = Arc::clone(self);
        let lease = lease.clone();
        let every = self.lease_for / 3;
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match engine.store.renew(&lease, engine.lease_for).await {
                    Ok(Some(interrupt)) => {
                        tx.send_replace(Some(interrupt));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        debug!(workflow_id = %lease.workflow_id, error = %e, "lease renewal failed");
                        // The lease is lost (another worker took the run) or
                        // will be: ending here closes the channel, which
                        // cancels the activity attempt in progress.
                        if !e.is_transient() {
                            return;
                        }
                    }
                }
            }
        });
        (AbortGuard(task), rx)
    }

    async fn drive(&self, held: &mut Held<'_>, mut env: Envelope) -> Result<(), DriveError> {
        let workflow = self.registry.find_workflow(&env.workflow).cloned();
        let mut cached = None;
        loop {
            if let Some(stop) = self.stop_requested(&env) {
                if !self.stop(held, &mut env, stop).await? {
                    return Ok(());
                }
                continue;
            }
            let keep = match env.status {
                Status::Running => {
                    self.forward(held, &mut env, workflow.as_ref(), &mut cached)
                        .await?
                }
                Status::Compensating => self.compensate_one(held, &mut env).await?,
                _ => {
                    self.store.release(held.lease, None, None).await?;
                    false
                }
            };
            if !keep {
                return Ok(());
            }
        }
    }

    /// A stop the run must act on now, if any.
    fn stop_requested(&self, env: &Envelope) -> Option<Stop> {
        match (&env.interrupt, env.status) {
            (Some(Interrupt::Terminate { reason }), _) => {
                return Some(Stop::Terminate(reason.clone()));
            }
            (Some(Interrupt::Cancel { reason }), Status::Running) => {
                return Some(Stop::Cancel(reason.clone()));
            }
            _ => {}
        }
        let late = env.deadline_ms.is_some_and(|d| self.clock.now_ms() >= d);
        (env.status == Status::Running && late).then_some(Stop::TimedOut)
    }

    /// Stops the run. Returns whether the worker keeps it (to compensate).
    async fn stop(
        &self,
        held: &mut Held<'_>,
        env: &mut Envelope,
        stop: Stop,
    ) -> Result<bool, DriveError> {
        // A child the run waits for is stopped the same way.
        if let Some(Pending::Child { id, .. }) = &env.pending {
            let request = match &stop {
                Stop::Terminate(reason) => Interrupt::Terminate {
                    reason: format!("parent `{}` terminated: {reason}", env.id),
                },
                Stop::Cancel(reason) => Interrupt::Cancel {
                    reason: format!("parent `{}` cancelled: {reason}", env.id),
                },
                Stop::TimedOut => Interrupt::Cancel {
                    reason: format!("parent `{}` timed out", env.id),
                },
            };
            if let Err(e) = self.store.interrupt(id, request).await {
                debug!(child = %id, error = %e, "could not stop the child run");
            }
        }
        self.begin_transition(env);
        let seen = env.interrupt.take();
        let opts = |release| Opts {
            release,
            clear_interrupt: seen.clone(),
            ..Opts::default()
        };
        if let Stop::Terminate(reason) = stop {
            env.status = Status::Terminated;
            env.reason = Some(format!("terminated: {reason}"));
            env.stopped.clone_from(&env.reason);
            env.pending = None;
            info!(workflow_id = %env.id, %reason, "run terminated");
            self.commit(held, env, format!("terminated: {reason}"), opts(true))
                .await?;
            return Ok(false);
        }
        let (ending, text) = match stop {
            Stop::Cancel(reason) => (Status::Cancelled, format!("cancelled: {reason}")),
            _ => (
                Status::TimedOut,
                "timed out: the execution timeout passed".to_owned(),
            ),
        };
        info!(workflow_id = %env.id, %text, "run stopping");
        env.reason = Some(text.clone());
        env.stopped = Some(text.clone());
        self.clear_state(env);
        let keep = !env.compensations.is_empty();
        if keep {
            env.status = Status::Compensating;
            env.ending = Some(ending);
        } else {
            env.status = ending;
        }
        self.commit(held, env, text, opts(!keep)).await?;
        Ok(keep)
    }

    /// Bumps the sequence number and clears per-transition fields.
    fn begin_transition(&self, env: &mut Envelope) {
        env.seq += 1;
        env.updated_at_ms = self.clock.now_ms();
        env.attempts = 0;
        env.last_error = None;
    }

    fn clear_state(&self, env: &mut Envelope) {
        env.pending = None;
        env.step.clear();
        env.state_fp.clear();
        env.state = Value::Null;
        env.outcome = None;
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

    /// Commits `env` (whose `seq` is already incremented), honouring the
    /// crash plan, and retries while the store is unreachable. Wakes the
    /// parent of a child run that settles.
    async fn commit(
        &self,
        held: &Held<'_>,
        env: &mut Envelope,
        event: String,
        opts: Opts,
    ) -> Result<Committed, DriveError> {
        self.crash_point(&env.id, env.seq, CrashPoint::BeforeCommit)?;
        let mut delay = Duration::from_millis(50);
        let give_up = tokio::time::Instant::now() + self.lease_for;
        let committed = loop {
            let mut commit = Commit::new(env, event.clone(), opts.release);
            commit.await_signal = opts.await_signal.clone();
            commit.wake_at = opts.wake_at;
            commit.consume_signal = opts.consume_signal;
            commit.dispatch = opts.dispatch.clone();
            commit.clear_interrupt.clone_from(&opts.clear_interrupt);
            commit.trim_history = opts.trim_history;
            match self.store.commit(held.lease, commit, self.lease_for).await {
                Ok(c) => break c,
                Err(e) if e.is_transient() && tokio::time::Instant::now() + delay < give_up => {
                    warn!(workflow_id = %env.id, error = %e, "commit failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e.into()),
            }
        };
        debug!(workflow_id = %env.id, seq = env.seq, step = %env.step, status = %env.status, %event, "checkpoint");
        if opts.clear_interrupt.is_some() && env.interrupt == opts.clear_interrupt {
            env.interrupt = None;
        }
        if committed.interrupt.is_some() {
            env.interrupt.clone_from(&committed.interrupt);
        }
        if let Some(nonce) = opts.consume_signal {
            env.signals.retain(|s| s.nonce != nonce);
        }
        if let Some(signal) = &committed.signal {
            if !env.signals.iter().any(|s| s.nonce == signal.nonce) {
                env.signals.push(signal.clone());
            }
        }
        if env.status.is_settled() {
            if let Some(parent) = &env.parent {
                if let Err(e) = self.store.wake(parent).await {
                    debug!(%parent, error = %e, "could not wake the parent run; its timer will");
                }
            }
        }
        self.crash_point(&env.id, env.seq, CrashPoint::AfterCommit)?;
        Ok(committed)
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

    /// The earlier of `at` and the run's execution deadline.
    fn before_deadline(env: &Envelope, at: Option<u64>) -> Option<u64> {
        match (at, env.deadline_ms) {
            (Some(a), Some(d)) => Some(a.min(d)),
            (a, d) => a.or(d),
        }
    }
}

/// Runs the closure, turning a panic into a park reason.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, DriveError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        DriveError::Park(format!(
            "workflow code panicked {what}: {}",
            panic_message(p.as_ref())
        ))
    })
}

pub(crate) struct AbortGuard(tokio::task::JoinHandle<()>);

impl Drop for AbortGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
