//! Where checkpoints live: the [`Store`] trait and its implementations.
//!
//! A store keeps each run's [`Envelope`], a queue of tasks per task queue
//! ("this run needs a worker"), leases that say which worker drives a run,
//! and a bounded history per run. Its one write path for a run's data is
//! [`Store::commit`]: one atomic write, accepted only from the worker that
//! holds the current lease (the *fence*) and only on top of the sequence
//! number that worker read (compare-and-set). So a transition is committed
//! exactly once, even when two workers believe they own the run.

mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::time::Duration;

use async_trait::async_trait;

use crate::envelope::{Envelope, HistoryEntry, Interrupt, SignalEntry, Status};
use crate::schedule::ScheduleSpec;

pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::connection as redis_connection;
#[cfg(feature = "redis")]
pub use redis::{Persistence, RedisStore, RedisStoreBuilder};

/// A unit of work from a task queue: "run `workflow_id` needs a worker".
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Task {
    /// The run to advance.
    pub workflow_id: String,
    /// The task queue it came from.
    pub queue: String,
    /// The store's handle on the delivery, used to acknowledge it.
    pub receipt: String,
    /// How many times this task has been delivered (1 the first time). A
    /// task delivered many times belongs to a run whose workers keep dying.
    pub deliveries: u32,
}

impl Task {
    /// A task; used by store implementations.
    pub fn new(workflow_id: String, queue: String, receipt: String) -> Self {
        Task {
            workflow_id,
            queue,
            receipt,
            deliveries: 1,
        }
    }
}

/// The right to write one run's checkpoint, held by one worker until it
/// expires or is released.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// The run.
    pub workflow_id: String,
    /// The holder.
    pub worker: String,
    /// Incremented by every acquisition: a commit under an older fence is
    /// refused.
    pub fence: u64,
    /// The task the lease was taken for; acknowledged on release.
    pub task: Task,
}

impl Lease {
    /// A lease; used by store implementations.
    pub fn new(workflow_id: String, worker: String, fence: u64, task: Task) -> Self {
        Lease {
            workflow_id,
            worker,
            fence,
            task,
        }
    }
}

/// What [`Store::acquire`] found.
#[derive(Debug)]
#[non_exhaustive]
pub enum Acquired {
    /// The lease is ours. The envelope is `Err` with a reason when the
    /// stored record cannot be read (hand-edited, written by other code):
    /// the worker parks the run without touching its data.
    Held(Lease, Result<Box<Envelope>, String>),
    /// Another worker holds a valid lease; it will finish the work.
    Busy,
    /// The run has settled; nothing to do.
    Settled,
    /// No run with this id exists.
    Missing,
}

/// What [`Store::start`] did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Started {
    /// A new run was created and queued.
    Created,
    /// A run with this id already exists (of this workflow type or another);
    /// nothing was changed.
    Existing(Box<Envelope>),
}

/// A transition to commit under a lease.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Commit<'a> {
    /// The new checkpoint; its `seq` must be the stored `seq` plus one. Its
    /// `interrupt` and `signals` are not written (they belong to senders).
    /// Borrowed: a store copies what it keeps, the Redis store only encodes.
    pub envelope: &'a Envelope,
    /// What happened, for the history.
    pub event: String,
    /// Give up the lease and acknowledge the task (the run settled or waits
    /// for something outside the worker).
    pub release: bool,
    /// The run now waits for this signal: if one is already buffered, keep
    /// the lease instead of releasing, and return it.
    pub await_signal: Option<String>,
    /// Wake the run at this time (milliseconds since the Unix epoch): a
    /// durable timer. Replaces any earlier timer of the run.
    pub wake_at: Option<u64>,
    /// The buffered signal (by nonce) this transition consumed.
    pub consume_signal: Option<u64>,
    /// After releasing, queue a task for the run on this queue (its activity
    /// runs there, or the workflow's queue must pick an outcome up).
    pub dispatch: Option<String>,
    /// Clear this stop request, which the transition acted on (unless a
    /// newer one replaced it meanwhile).
    pub clear_interrupt: Option<Interrupt>,
    /// The run continued as new: drop the history before this entry, and
    /// store the new generation's input, number and patches (other commits
    /// leave them as they are).
    pub trim_history: bool,
}

impl<'a> Commit<'a> {
    /// A commit; `release` gives up the lease.
    pub fn new(envelope: &'a Envelope, event: String, release: bool) -> Self {
        Commit {
            envelope,
            event,
            release,
            await_signal: None,
            wake_at: None,
            consume_signal: None,
            dispatch: None,
            clear_interrupt: None,
            trim_history: false,
        }
    }
}

/// What a commit found, besides writing the checkpoint.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Committed {
    /// A stop requested from outside: the worker acts on it next.
    pub interrupt: Option<Interrupt>,
    /// The buffered signal the run waits for (the lease was kept).
    pub signal: Option<SignalEntry>,
}

/// Why a message (a signal, a stop request) could not be delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No run has this id.
    #[error("no run with id `{0}`")]
    NotFound(String),
    /// The run has settled; nothing reads messages any more.
    #[error("run `{id}` has settled ({status}); it takes no more messages")]
    Settled {
        /// The run.
        id: String,
        /// Its final status.
        status: Status,
    },
    /// The run's signal buffer is full: it is not consuming its signals.
    #[error("run `{id}` already has {bound} signals waiting, its limit; it is not consuming them")]
    BufferFull {
        /// The run.
        id: String,
        /// The limit.
        bound: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a run could not be resumed by [`Store::resume`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// No run has this id.
    #[error("no run with id `{0}`")]
    NotFound(String),
    /// The run did not stop for an operator: only parked runs and failed
    /// compensations wait to be resumed.
    #[error(
        "run `{id}` is {status}; only parked runs and failed compensations (compensation_failed) can be resumed"
    )]
    NotStopped {
        /// The run.
        id: String,
        /// Its status.
        status: Status,
    },
    /// The stored status is not one this code knows; fix the record first.
    #[error(
        "run `{id}` has status `{status}`, which this code does not know; fix the record first"
    )]
    UnknownStatus {
        /// The run.
        id: String,
        /// The stored text.
        status: String,
    },
    /// A worker holds a valid lease on the run: it is being driven.
    #[error("a worker holds run `{0}`; wait for its lease to expire")]
    Held(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another worker acquired the run since we did (our lease expired):
    /// our commit was refused and nothing was written. The other worker
    /// carries on; drop the run.
    #[error("lease on `{workflow_id}` was lost (fence {fence} is stale); the commit was refused")]
    Fenced {
        /// The run.
        workflow_id: String,
        /// Our (stale) fence.
        fence: u64,
    },
    /// The stored sequence number is not the one the commit builds on: a
    /// transition was committed since. Nothing was written.
    #[error(
        "run `{workflow_id}` is at seq {found}, the commit expected {expected}; the commit was refused"
    )]
    Stale {
        /// The run.
        workflow_id: String,
        /// The seq the commit built on.
        expected: u64,
        /// The seq found.
        found: u64,
    },
    /// The run does not exist.
    #[error("no run with id `{0}`")]
    NotFound(String),
    /// The store could not be reached or answered with an error; retrying
    /// later may help.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store refused our credentials (a wrong or missing password, an
    /// unknown user): retrying will not help; fix the configuration.
    #[error("store authentication failed: {0}")]
    Auth(String),
    /// The store's user lacks a permission the store needs (a Redis ACL
    /// without scripting, say): retrying will not help; fix the ACL.
    #[error("store permission denied: {0}")]
    Permission(String),
    /// The store answered with an error that retrying will not fix.
    #[error("store error: {0}")]
    Backend(String),
    /// The store holds data this code cannot read.
    #[error("corrupt record for `{workflow_id}`: {reason}")]
    Corrupt {
        /// The run.
        workflow_id: String,
        /// What is wrong.
        reason: String,
    },
}

impl StoreError {
    /// Whether the operation may succeed if tried again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// The status a stopped run resumes with: back to unwinding if it was
/// compensating (only then is its `ending` set), forward otherwise.
fn resumed_status(unwinding: bool) -> Status {
    if unwinding {
        Status::Compensating
    } else {
        Status::Running
    }
}

/// The history event of a resume.
fn resumed_event(note: &str) -> String {
    if note.is_empty() {
        "resumed by an operator".to_owned()
    } else {
        format!("resumed by an operator: {note}")
    }
}

/// Checkpoint storage. One implementation keeps everything in memory (tests,
/// demos); the Redis one is durable and shared by many worker processes.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates run `envelope.id` and queues its first task, unless a run
    /// with that id exists: then nothing changes and the existing envelope
    /// is returned (the workflow id is the idempotency key).
    async fn start(&self, envelope: Envelope) -> Result<Started, StoreError>;

    /// Waits up to `wait` for tasks on `queues`, returning at most `max`.
    /// A delivered task that is not acknowledged is delivered again once
    /// the lease of its run has expired (its worker died).
    async fn poll(
        &self,
        worker: &str,
        queues: &[String],
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Task>, StoreError>;

    /// Takes the lease on the task's run for `lease_for` (refused while
    /// another worker's lease is valid) and reads its envelope.
    async fn acquire(
        &self,
        task: &Task,
        worker: &str,
        lease_for: Duration,
    ) -> Result<Acquired, StoreError>;

    /// Acquires the runs of a batch of tasks, one answer per task, in
    /// order. Stores that can do it in one round trip override this.
    async fn acquire_many(
        &self,
        tasks: &[Task],
        worker: &str,
        lease_for: Duration,
    ) -> Result<Vec<Acquired>, StoreError> {
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            out.push(self.acquire(task, worker, lease_for).await?);
        }
        Ok(out)
    }

    /// Commits one transition atomically: checks the fence and the sequence
    /// number before writing anything, then writes the envelope, appends
    /// the history entry, arms the run's timer, consumes a signal, and
    /// extends or releases the lease as the commit says. Reports a stop
    /// request and, for a run that waits for a signal, one that is buffered.
    async fn commit(
        &self,
        lease: &Lease,
        commit: Commit<'_>,
        lease_for: Duration,
    ) -> Result<Committed, StoreError>;

    /// Parks a run whose record cannot be read or advanced: sets its status
    /// to parked with `reason`, leaves every other field as it is, releases
    /// the lease and acknowledges the task. Fenced like a commit.
    async fn park(&self, lease: &Lease, reason: &str) -> Result<(), StoreError>;

    /// Puts a run that stopped for an operator (parked, or a compensation
    /// that failed for good) back to work, once its cause is fixed: a
    /// parked run goes back to `compensating` if it was unwinding (its
    /// `ending` is set) and to `running` otherwise; a failed compensation
    /// goes back to `compensating` and runs again. The attempt count and the
    /// reason are cleared (a fresh retry budget), one history entry records
    /// `note`, and a task is queued. Returns the status the run resumed
    /// with. Refused while a worker holds the run.
    async fn resume(
        &self,
        workflow_id: &str,
        note: &str,
        now_ms: u64,
    ) -> Result<Status, ResumeError>;

    /// Gives a lease up without a transition (the run waits for something
    /// not yet there), acknowledging the task; with `dispatch`, queues a
    /// task for the run on that queue; with `wake_at`, arms the run's timer.
    /// Fenced.
    async fn release(
        &self,
        lease: &Lease,
        dispatch: Option<&str>,
        wake_at: Option<u64>,
    ) -> Result<(), StoreError>;

    /// Extends a held lease by `lease_for` (a long activity is running), and
    /// reports a stop request.
    async fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
    ) -> Result<Option<Interrupt>, StoreError>;

    /// Moves timers due at `now_ms` of runs on `queues` to their task
    /// queues; returns how many fired.
    async fn fire_timers(
        &self,
        now_ms: u64,
        queues: &[String],
        max: usize,
    ) -> Result<usize, StoreError>;

    /// Buffers a signal for a run (at most the run's own bound wait at
    /// once, or `bound` for a run started without one) and wakes the run if
    /// it waits for it.
    async fn signal(
        &self,
        workflow_id: &str,
        signal: SignalEntry,
        bound: usize,
    ) -> Result<(), SendError>;

    /// Records a stop request for a run and wakes it.
    async fn interrupt(&self, workflow_id: &str, interrupt: Interrupt) -> Result<(), SendError>;

    /// Queues a task for a run on its own queue (a child it waits for
    /// settled). Does nothing for a run that is missing or settled.
    async fn wake(&self, workflow_id: &str) -> Result<(), StoreError>;

    /// Creates or replaces a schedule; its next firing time is `spec.next_ms`.
    async fn put_schedule(&self, spec: ScheduleSpec) -> Result<(), StoreError>;

    /// Every schedule.
    async fn schedules(&self) -> Result<Vec<ScheduleSpec>, StoreError>;

    /// Schedules not paused whose next firing time is at or before `now_ms`.
    async fn due_schedules(&self, now_ms: u64, max: usize)
    -> Result<Vec<ScheduleSpec>, StoreError>;

    /// Stores a schedule's progress if its next firing time is still
    /// `expected_next_ms` (so two workers never advance one firing twice);
    /// returns whether it did.
    async fn advance_schedule(
        &self,
        spec: &ScheduleSpec,
        expected_next_ms: u64,
    ) -> Result<bool, StoreError>;

    /// Deletes a schedule; returns whether it existed.
    async fn delete_schedule(&self, id: &str) -> Result<bool, StoreError>;

    /// Acknowledges a task that needs no work (its run is settled, missing or
    /// driven by another worker).
    async fn ack(&self, task: &Task) -> Result<(), StoreError>;

    /// Reads a run's envelope.
    async fn load(&self, workflow_id: &str) -> Result<Option<Envelope>, StoreError>;

    /// Reads a run's history, oldest first.
    async fn history(&self, workflow_id: &str) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Waits until the run has settled or `timeout` passed, then returns its
    /// envelope as it is then (`None` if the run does not exist). Does not
    /// poll in a busy loop.
    async fn wait_settled(
        &self,
        workflow_id: &str,
        timeout: Duration,
    ) -> Result<Option<Envelope>, StoreError>;
}
