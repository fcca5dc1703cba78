//! Where runs live: the store traits and their implementations.
//!
//! A store keeps each run's record, a queue of tasks per task queue ("this
//! run needs a worker"), leases that say which worker drives a run, timers,
//! signal buffers, and a bounded history per run. It holds no policy: every
//! change to a run is a [`Decision`] made by [`crate::core::decide`], which
//! the store applies atomically under its [`Guard`] — the lease's fence and
//! a compare-and-set on the record's `seq` — or refuses whole. So a
//! transition is committed exactly once, even when two workers believe they
//! own the run, and every store follows the same rules.
//!
//! The traits are split by concern, so a new backend implements the core
//! first:
//! - [`Store`]: what workers and clients need (create, poll, acquire,
//!   apply, renew, load, history, wait);
//! - [`ScheduleStore`]: cron schedules;
//! - [`AdminStore`]: listing runs by index, deleting them (the `steadfast`
//!   command and the console).
//!
//! [`crate::testing::conformance`] checks any implementation against the
//! same scenarios.

pub(crate) mod codec;
pub(crate) mod fatal;
mod memory;
mod paging;
#[cfg(feature = "redis")]
mod redis;

use std::time::Duration;

use async_trait::async_trait;

use crate::catalog::CatalogEntry;
use crate::core::{Decision, Guard, HistoryEntry, Interrupt, RunRecord, SignalEntry};
use crate::schedule::ScheduleSpec;

pub use memory::MemoryStore;
pub use paging::{BadCursor, Cursor, IndexedRun, PageQuery, RunPage};
#[cfg(feature = "redis")]
pub use redis::connection as redis_connection;
#[cfg(feature = "redis")]
pub use redis::{AccessCheck, RedisStore, RedisStoreBuilder};

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

/// The right to change one run, held by one worker until it expires or is
/// released.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// The run.
    pub workflow_id: String,
    /// The holder.
    pub worker: String,
    /// Incremented by every acquisition: a decision under an older fence is
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

    /// The guard of a decision this lease's holder applies on top of
    /// `seq` (`None`: a record whose `seq` does not read), keeping the
    /// lease for `lease_for` if the decision keeps it.
    pub fn guard(&self, seq: Option<u64>, lease_for: Duration) -> Guard {
        Guard::Held {
            worker: self.worker.clone(),
            fence: self.fence,
            seq,
            receipt: self.task.receipt.clone(),
            task_queue: self.task.queue.clone(),
            lease_ms: u64::try_from(lease_for.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// A stored record that does not read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unreadable {
    /// What is wrong, naming the field.
    pub reason: String,
    /// The stored `seq`, if it reads.
    pub seq: Option<u64>,
}

impl Unreadable {
    /// A record that does not read; used by store implementations.
    pub fn new(reason: String, seq: Option<u64>) -> Self {
        Unreadable { reason, seq }
    }
}

/// What [`Store::acquire_many`] found for one task.
#[derive(Debug)]
#[non_exhaustive]
pub enum Acquired {
    /// The lease is ours, with the record as read (with its buffered
    /// signals), or why it does not read: the worker then parks it without
    /// touching its data.
    Held(Lease, Result<Box<RunRecord>, Unreadable>),
    /// Another worker holds a valid lease; it will finish the work.
    Busy,
    /// The run has settled or waits for an operator; nothing to do.
    Settled,
    /// No run with this id exists.
    Missing,
}

/// What [`Store::create`] did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Started {
    /// A new run was created and queued.
    Created,
    /// A run with this id already exists (of this workflow type or another);
    /// nothing was changed.
    Existing(Box<RunRecord>),
}

/// What applying a decision found, besides doing it.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Applied {
    /// The stop request stored after the decision (a new one a client sent
    /// meanwhile): the worker acts on it next.
    pub interrupt: Option<Interrupt>,
    /// The buffered signal the run waits for ([`Effect::AwaitSignal`]):
    /// the lease was kept instead of released.
    ///
    /// [`Effect::AwaitSignal`]: crate::core::Effect::AwaitSignal
    pub signal: Option<SignalEntry>,
}

impl Applied {
    /// What applying found; used by store implementations.
    pub fn new(interrupt: Option<Interrupt>, signal: Option<SignalEntry>) -> Self {
        Applied { interrupt, signal }
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another worker acquired the run since we did (our lease expired):
    /// the decision was refused and nothing was written. The other worker
    /// carries on; drop the run.
    #[error("lease on `{workflow_id}` was lost (fence {fence} is stale); nothing was written")]
    Fenced {
        /// The run.
        workflow_id: String,
        /// Our (stale) fence.
        fence: u64,
    },
    /// The stored sequence number is not the one the decision builds on: a
    /// transition was committed since. Nothing was written; read the run
    /// again and decide again.
    #[error(
        "run `{workflow_id}` is at seq {found}, the decision expected {expected}; nothing was written"
    )]
    Stale {
        /// The run.
        workflow_id: String,
        /// The seq the decision built on.
        expected: String,
        /// The seq found.
        found: String,
    },
    /// A worker holds a valid lease on the run, and the decision is an
    /// operator's: wait for the lease to be released or to expire.
    #[error("a worker holds run `{0}`; try again once it releases it")]
    Held(String),
    /// The run's signal buffer is full: it is not consuming its signals.
    #[error(
        "run `{workflow_id}` already has {bound} signals waiting, its limit; it is not consuming them"
    )]
    BufferFull {
        /// The run.
        workflow_id: String,
        /// The limit.
        bound: u32,
    },
    /// The run has ended (a message for it is refused).
    #[error("run `{workflow_id}` has ended ({status}); it takes no more messages")]
    Ended {
        /// The run.
        workflow_id: String,
        /// Its status.
        status: crate::core::Status,
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
    /// The store is not what its configuration says (a cluster URL for a
    /// single server, a TLS certificate that does not verify, an unknown
    /// Sentinel master name): retrying will not help; fix the
    /// configuration.
    #[error("store misconfigured: {0}")]
    Misconfigured(String),
    /// The decision was applied, but fewer replicas than required
    /// acknowledged it in time (see
    /// `RedisStoreBuilder::wait_for_replicas`): it stands on the primary
    /// alone, and a failover before a replica catches up can lose it. The
    /// caller goes on as if the write had failed: a worker stops driving
    /// the run (it resumes from whichever checkpoint survives once its
    /// lease expires); a start or a message can be sent again.
    #[error(
        "run `{workflow_id}`: the write was acknowledged by {acknowledged} of the {wanted} \
         replicas required in time; it stands on the primary only and a failover may lose it"
    )]
    Unreplicated {
        /// The run.
        workflow_id: String,
        /// Replicas that acknowledged the write.
        acknowledged: u32,
        /// Replicas required.
        wanted: u32,
    },
    /// The decision is larger than the store accepts: refused whole,
    /// nothing written. The runtime's limits ([`crate::core::Limits`])
    /// park a run long before its data gets this large; raise the store's
    /// maximum if you raised them.
    #[error(
        "run `{workflow_id}`: the write is {bytes} bytes, over the store's maximum of {max}; \
         nothing was written"
    )]
    TooLarge {
        /// The run.
        workflow_id: String,
        /// The size of the write.
        bytes: usize,
        /// The store's maximum.
        max: usize,
    },
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

/// Refuses a decision that does not fit its guard, whatever the store:
/// a kept lease needs a held one; a record written by a client is an
/// operator's exclusive decision.
pub(crate) fn check_fits(guard: &Guard, decision: &Decision) -> Result<(), StoreError> {
    use crate::core::{Effect, Write};
    let held = matches!(guard, Guard::Held { .. });
    if !held
        && decision
            .effects
            .iter()
            .any(|e| matches!(e, Effect::KeepLease))
    {
        return Err(StoreError::Backend(
            "a decision that keeps a lease needs the lease's guard; nothing was written".into(),
        ));
    }
    let writes = !matches!(decision.write, Write::Nothing);
    if writes && matches!(guard, Guard::Unended | Guard::Exists) {
        return Err(StoreError::Backend(
            "a decision that writes the record needs a fence or a sequence number; nothing was written"
                .into(),
        ));
    }
    if writes && matches!(guard, Guard::Current { .. }) && !decision.exclusive {
        return Err(StoreError::Backend(
            "a client's decision that writes the record must be exclusive; nothing was written"
                .into(),
        ));
    }
    Ok(())
}

impl StoreError {
    /// Whether the operation may succeed if tried again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// Whether no retry can succeed until someone changes the
    /// configuration: refused credentials, a missing permission, servers
    /// that are not what the URL says. A worker stops on these instead of
    /// retrying.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            StoreError::Auth(_) | StoreError::Permission(_) | StoreError::Misconfigured(_)
        )
    }
}

/// Gauges of a whole store, read on a worker's clock for its metrics
/// ([`Store::gauges`]).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct StoreGauges {
    /// Runs not settled (the active index).
    pub runs_in_flight: u64,
    /// Timers due and not yet fired, on every queue.
    pub timers_due: u64,
    /// For each queue asked about, the age of its oldest task not yet
    /// delivered (zero when none waits).
    pub queue_lag: Vec<(String, Duration)>,
}

impl StoreGauges {
    /// Gauges with these values (for stores outside this crate).
    pub fn new(runs_in_flight: u64, timers_due: u64, queue_lag: Vec<(String, Duration)>) -> Self {
        StoreGauges {
            runs_in_flight,
            timers_due,
            queue_lag,
        }
    }
}

/// Run storage: what workers and clients need. One implementation keeps
/// everything in memory (tests, demos); the Redis one is durable and shared
/// by many worker processes.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies a run's creation ([`crate::core::create`]) unless a run with
    /// its id exists: then nothing changes and the existing record is
    /// returned (the workflow id is the idempotency key).
    async fn create(&self, decision: &Decision) -> Result<Started, StoreError>;

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

    /// Takes the leases on the runs of a batch of tasks for `lease_for`
    /// (refused while another worker's lease is valid; each acquisition
    /// increments the run's fence), and reads their records; one answer
    /// per task, in order. A task whose run is missing, settled or held by
    /// another worker is acknowledged (the holder's own task excepted).
    async fn acquire_many(
        &self,
        tasks: &[Task],
        worker: &str,
        lease_for: Duration,
    ) -> Result<Vec<Acquired>, StoreError>;

    /// Applies a decision to run `workflow_id` atomically: checks `guard` before writing
    /// anything, then writes the record, appends the history entry and
    /// carries out the effects in order. Refused whole with
    /// [`StoreError::Fenced`], [`StoreError::Stale`], [`StoreError::Held`],
    /// [`StoreError::Ended`], [`StoreError::NotFound`] or
    /// [`StoreError::BufferFull`].
    async fn apply(
        &self,
        workflow_id: &str,
        guard: &Guard,
        decision: &Decision,
    ) -> Result<Applied, StoreError>;

    /// Extends a held lease by `lease_for` (a long activity is running), and
    /// reports a stop request.
    async fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
    ) -> Result<Option<Interrupt>, StoreError>;

    /// Acknowledges a task that needs no work.
    async fn ack(&self, task: &Task) -> Result<(), StoreError>;

    /// Moves timers due at `now_ms` of runs on `queues` to their task
    /// queues; returns how many fired.
    async fn fire_timers(
        &self,
        now_ms: u64,
        queues: &[String],
        max: usize,
    ) -> Result<usize, StoreError>;

    /// Reads a run, with its buffered signals (one that does not read is
    /// shown with the name `(unreadable)` and its text as payload). A parked
    /// record that does not read is returned as far as it reads, with no
    /// phase to resume to; any other record that does not read is
    /// [`StoreError::Corrupt`].
    async fn load(&self, workflow_id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// Reads a run's history, oldest first.
    async fn history(&self, workflow_id: &str) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Waits until the run has settled (or stopped for an operator) or
    /// `timeout` passed, then returns its record as it is then (`None` if
    /// the run does not exist). Does not poll in a busy loop.
    async fn wait_settled(
        &self,
        workflow_id: &str,
        timeout: Duration,
    ) -> Result<Option<RunRecord>, StoreError>;

    /// What a worker's metrics read on its clock: runs not settled, timers
    /// due at `now_ms`, and the age of the oldest task not yet delivered
    /// in each of `queues`. `None` when the store does not tell (the
    /// default). It costs several commands: call it on a slow clock.
    async fn gauges(
        &self,
        queues: &[String],
        now_ms: u64,
    ) -> Result<Option<StoreGauges>, StoreError> {
        let _ = (queues, now_ms);
        Ok(None)
    }

    /// The store's schedules, if it keeps them.
    fn schedules(&self) -> Option<&dyn ScheduleStore> {
        None
    }

    /// The store's administration side, if it has one.
    fn admin(&self) -> Option<&dyn AdminStore> {
        None
    }
}

/// Cron schedules: which workflow to start when.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Creates or replaces a schedule; its next firing time is `spec.next_ms`.
    async fn put_schedule(&self, spec: ScheduleSpec) -> Result<(), StoreError>;

    /// Every schedule, by id.
    async fn list_schedules(&self) -> Result<Vec<ScheduleSpec>, StoreError>;

    /// Schedules not paused whose next firing time is at or before `now_ms`.
    async fn due_schedules(&self, now_ms: u64, max: usize)
    -> Result<Vec<ScheduleSpec>, StoreError>;

    /// Stores a schedule's progress if its next firing time is still
    /// `expected_next_ms` (so two workers never advance one firing twice);
    /// returns whether it did. A pause made meanwhile is kept.
    async fn advance_schedule(
        &self,
        spec: &ScheduleSpec,
        expected_next_ms: u64,
    ) -> Result<bool, StoreError>;

    /// Pauses or unpauses a schedule in one step; returns whether it exists.
    async fn set_schedule_paused(&self, id: &str, paused: bool) -> Result<bool, StoreError>;

    /// Deletes a schedule; returns whether it existed.
    async fn delete_schedule(&self, id: &str) -> Result<bool, StoreError>;
}

/// The indexes runs are listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunList {
    /// Runs not settled, oldest first.
    Active,
    /// Parked runs and failed compensations, oldest first.
    Attention,
    /// Settled runs (until they expire), newest first.
    Finished,
}

/// Listing and removing runs, for operators' tools.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Ids of runs in an index, at most `limit`.
    async fn list_runs(&self, list: RunList, limit: usize) -> Result<Vec<String>, StoreError>;

    /// How many runs an index holds.
    async fn count_runs(&self, list: RunList) -> Result<u64, StoreError>;

    /// A page of an index, read from where `query.after` points: the store
    /// reads about `query.limit` entries per shard, however large the
    /// index (a score range of a sorted set on Redis).
    async fn page_runs(&self, query: &PageQuery) -> Result<RunPage, StoreError>;

    /// Writes (or replaces) a workflow type's catalog entry: what a worker
    /// runs, for tools that do not link its code. Refused over
    /// [`crate::catalog::MAX_ENTRY_BYTES`].
    async fn register_workflow(&self, entry: &CatalogEntry) -> Result<(), StoreError>;

    /// Every workflow type's catalog entry, as JSON text by workflow name
    /// (read each with [`CatalogEntry::from_json`]: one written by another
    /// version may not read).
    async fn catalog(&self) -> Result<Vec<(String, String)>, StoreError>;

    /// Deletes everything of a run: record, history, signal buffer, timer
    /// and index entries (also what a record deleted by hand left). Tasks
    /// already queued for it are dropped when delivered. Returns whether
    /// anything was there.
    async fn delete_run(&self, workflow_id: &str) -> Result<bool, StoreError>;

    /// The raw fields of a run's record, as stored (for a record that does
    /// not read, say).
    async fn raw_record(
        &self,
        workflow_id: &str,
    ) -> Result<Option<Vec<(String, String)>>, StoreError>;
}
