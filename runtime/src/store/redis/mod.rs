//! The Redis checkpoint store, on one server, a Redis Cluster, or a master
//! behind Sentinels, in plain text or TLS ([`connection`]).
//!
//! Key layout (documented for operators in `docs/redis-layout.md`), under a
//! prefix (default `steadfast:`) and a shard hash tag `{s<n>}`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{s0}:wf:<id>` | hash | the run's checkpoint and lease |
//! | `{s0}:hist:<id>` | stream | one entry per committed transition (bounded) |
//! | `{s0}:q:<queue>` | stream + group `steadfast` | tasks: "this run needs a worker" |
//! | `{s0}:active` / `:done` / `:attention` | sorted sets | run ids by state |
//! | `{s0}:settled` | pub/sub channel | ids of runs as they settle |
//!
//! Every change to a run is one call of one Lua script, `apply.lua` (loaded
//! once, then `EVALSHA`), which carries out a decision of the core: its
//! guard (fence, sequence number) is checked before the first write, then
//! the record's fields, the history entry and the named effects. Every
//! script and pipeline touches the keys of one shard only (one Cluster
//! slot).

mod apply;
mod builder;
pub mod connection;
mod gauges;
mod keys;
mod pages;
mod poll;
mod reads;
mod reply;
mod schedules;
mod scripts;
mod step;
mod tasks;
mod waiters;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use builder::{AccessCheck, RedisStoreBuilder};
use connection::{PersistenceReport, RedisConnection, ReplicaAck};
use keys::Keys;
use poll::Polls;
use scripts::Scripts;
use waiters::Waiters;

use async_trait::async_trait;

use super::{
    Acquired, AdminStore, Applied, Lease, ScheduleStore, Started, Store, StoreError, StoreGauges,
    Task,
};
use crate::core::{Decision, Guard, HistoryEntry, Interrupt, RunRecord};

/// The consumer group of every task stream.
const GROUP: &str = "steadfast";

/// A [`Store`] on Redis: durable (as durable as the servers' persistence
/// and replication make it; see [`RedisStore::persistence_report`]),
/// shared by any number of worker processes.
///
/// ## Behavior
/// - Scripts and reads go through one shared [`RedisConnection`]: on one
///   server a connection that reconnects by itself, on a cluster a
///   connection that follows `MOVED`/`ASK` and failovers, behind Sentinels
///   one that follows the master. Commands issued while Redis is away fail
///   with [`StoreError::Unavailable`], and workers retry them with backoff;
///   refused credentials or permissions are [`StoreError::Auth`] and
///   [`StoreError::Permission`], which no retry fixes.
/// - While a worker holds a run, each transition is one round trip (one
///   script call, pipelined with `WAIT` when commits wait for replicas).
/// - Blocking reads of the task queues use connections of their own, so they
///   never hold up commits; on a cluster, one read per shard (the streams of
///   one read must share a slot).
/// - Clients waiting for results share one subscription to the `settled`
///   channels and are woken when their run settles, not by polling.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: RedisConnection,
    keys: Keys,
    scripts: Scripts,
    reclaim_after: Duration,
    history_len: u64,
    retention: Duration,
    replica_ack: Option<ReplicaAck>,
    /// Connections for commits that wait for replicas (empty otherwise),
    /// taken in turn.
    commit_conns: Vec<RedisConnection>,
    next_commit_conn: AtomicUsize,
    max_decision_bytes: usize,
    /// Blocking reads of the task queues.
    polls: Polls,
    /// Task streams whose consumer group is known to exist.
    groups: Mutex<HashSet<String>>,
    last_reclaim: Mutex<Option<Instant>>,
    waiters: Arc<Waiters>,
    persistence: Option<PersistenceReport>,
    /// Commands sent to Redis (round trips), for measurements.
    round_trips: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.waiters.stop();
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", self.inner.conn.target())
            .field("keys", &self.inner.keys)
            .field("replica_ack", &self.inner.replica_ack)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url` with the default settings. Every topology:
    /// `redis://`, `rediss://`, `redis+cluster://host:port,host:port`,
    /// `redis+sentinel://host:port,.../master` (see
    /// [`connection::RedisTarget`]).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// Starts configuring a store on `url`.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(url.into())
    }

    fn open(
        conn: RedisConnection,
        commit_conns: Vec<RedisConnection>,
        config: &RedisStoreBuilder,
        persistence: Option<PersistenceReport>,
    ) -> Self {
        RedisStore {
            inner: Arc::new(Inner {
                conn,
                keys: Keys::new(config.prefix.clone(), config.shards),
                scripts: Scripts::new(),
                reclaim_after: config.reclaim_after,
                history_len: config.history_len,
                retention: config.retention,
                replica_ack: config.replica_ack,
                commit_conns,
                next_commit_conn: AtomicUsize::new(0),
                max_decision_bytes: config.max_decision_bytes,
                polls: Polls::default(),
                groups: Mutex::new(HashSet::new()),
                last_reclaim: Mutex::new(None),
                waiters: Waiters::new(),
                persistence,
                round_trips: AtomicU64::new(0),
            }),
        }
    }

    /// What a crash or failover of Redis can lose, as read when the store
    /// connected (`None` when [`RedisStoreBuilder::check_persistence`] was
    /// off or the settings could not be read at all). Print it where people
    /// see it when [`PersistenceReport::can_lose_data`]: the store only
    /// logs it, as a `tracing` warning.
    pub fn persistence_report(&self) -> Option<&PersistenceReport> {
        self.inner.persistence.as_ref()
    }

    /// Reads every master's persistence settings now.
    pub async fn persistence(&self) -> Result<PersistenceReport, StoreError> {
        self.inner.round_trips.fetch_add(1, Ordering::Relaxed);
        Ok(connection::persistence(&self.inner.conn).await?)
    }

    /// The connection the store uses (for tools that send commands of
    /// their own on the same servers).
    pub fn connection(&self) -> &RedisConnection {
        &self.inner.conn
    }

    /// How many commands this store (and its clones) sent to Redis: each is
    /// one round trip. Scripts count once, whatever they do inside; a
    /// script pipelined with `WAIT` counts once.
    pub fn round_trips(&self) -> u64 {
        self.inner.round_trips.load(Ordering::Relaxed)
    }

    /// The shared connection, counting one round trip.
    fn counted(&self) -> RedisConnection {
        self.inner.round_trips.fetch_add(1, Ordering::Relaxed);
        self.inner.conn.clone()
    }

    /// A connection for a commit, counting one round trip: one of the
    /// commit connections in turn when commits wait for replicas.
    fn commit_connection(&self) -> RedisConnection {
        let conns = &self.inner.commit_conns;
        if conns.is_empty() {
            return self.counted();
        }
        self.inner.round_trips.fetch_add(1, Ordering::Relaxed);
        let i = self.inner.next_commit_conn.fetch_add(1, Ordering::Relaxed);
        conns[i % conns.len()].clone()
    }

    /// The store's error for a failed Redis call: sorted by what to do
    /// about it, redacted.
    fn error(&self, e: &redis::RedisError) -> StoreError {
        StoreError::from(self.inner.conn.error(e))
    }

    /// The key of a run's hash (for tools and tests).
    pub fn run_key(&self, workflow_id: &str) -> String {
        self.inner.keys.run(workflow_id)
    }

    /// The key of a run's history stream.
    pub fn history_key(&self, workflow_id: &str) -> String {
        self.inner.keys.history(workflow_id)
    }

    /// The key of a task queue's stream in the shard of `workflow_id`.
    pub fn task_key(&self, workflow_id: &str, queue: &str) -> String {
        self.inner.keys.tasks_of(workflow_id, queue)
    }

    /// The key of a run's signal buffer (a list, oldest first).
    pub fn signals_key(&self, workflow_id: &str) -> String {
        self.inner.keys.signals(workflow_id)
    }

    /// The key of the timer set (run id by wake-up time) in the shard of
    /// `workflow_id`.
    pub fn timers_key(&self, workflow_id: &str) -> String {
        self.inner
            .keys
            .timers(self.inner.keys.shard_of(workflow_id))
    }

    /// The key of the catalog: each workflow type's entry (JSON) by name.
    pub fn catalog_key(&self) -> String {
        self.inner.keys.catalog()
    }

    /// The key of the hash of every schedule (spec JSON by schedule id).
    pub fn schedules_key(&self) -> String {
        self.inner.keys.schedules()
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn create(&self, decision: &Decision) -> Result<Started, StoreError> {
        let Some(record) = decision.record() else {
            return Err(StoreError::Backend("a creation must write a record".into()));
        };
        // Subscribe to settles first, so that a client waiting for this run
        // needs no read before the notification (see `wait_settled`).
        self.inner
            .waiters
            .ensure_listening(&self.inner.conn, &self.inner.keys.settled_pattern())
            .await;
        let id = record.id.clone();
        match self.apply_decision(&id, &Guard::Absent, decision).await? {
            apply::Outcome::Applied(_) => {
                self.inner.waiters.started(&id);
                Ok(Started::Created)
            }
            apply::Outcome::Exists(fields) => {
                let existing = super::codec::parse_for_display(&fields).map_err(|reason| {
                    StoreError::Corrupt {
                        workflow_id: id.clone(),
                        reason,
                    }
                })?;
                Ok(Started::Existing(Box::new(existing)))
            }
        }
    }

    async fn poll(
        &self,
        worker: &str,
        queues: &[String],
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Task>, StoreError> {
        self.poll_tasks(worker, queues, max, wait).await
    }

    async fn acquire_many(
        &self,
        tasks: &[Task],
        worker: &str,
        lease_for: Duration,
    ) -> Result<Vec<Acquired>, StoreError> {
        self.acquire_tasks(tasks, worker, lease_for).await
    }

    async fn apply(
        &self,
        workflow_id: &str,
        guard: &Guard,
        decision: &Decision,
    ) -> Result<Applied, StoreError> {
        if decision.effects.iter().any(|e| {
            matches!(
                e,
                crate::core::Effect::Publish {
                    notice: crate::core::Notice::Resumed
                }
            )
        }) {
            // Our own waiters forget the old settle now; other stores'
            // waiters when the published message reaches them.
            self.inner.waiters.forget(workflow_id);
        }
        match self.apply_decision(workflow_id, guard, decision).await? {
            apply::Outcome::Applied(a) => Ok(a),
            apply::Outcome::Exists(_) => Err(StoreError::Backend(format!(
                "run `{workflow_id}` exists; a creation applies only where no run is"
            ))),
        }
    }

    async fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
    ) -> Result<Option<Interrupt>, StoreError> {
        self.renew_lease(lease, lease_for).await
    }

    async fn ack(&self, task: &Task) -> Result<(), StoreError> {
        self.ack_task(task).await
    }

    async fn fire_timers(
        &self,
        now_ms: u64,
        queues: &[String],
        max: usize,
    ) -> Result<usize, StoreError> {
        self.fire_due_timers(now_ms, queues, max).await
    }

    async fn load(&self, workflow_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.read_run(workflow_id).await
    }

    async fn gauges(
        &self,
        queues: &[String],
        now_ms: u64,
    ) -> Result<Option<StoreGauges>, StoreError> {
        self.read_gauges(queues, now_ms).await.map(Some)
    }

    async fn history(&self, workflow_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        self.read_history(workflow_id).await
    }

    async fn wait_settled(
        &self,
        workflow_id: &str,
        timeout: Duration,
    ) -> Result<Option<RunRecord>, StoreError> {
        self.wait_for_settle(workflow_id, timeout).await
    }

    fn schedules(&self) -> Option<&dyn ScheduleStore> {
        Some(self)
    }

    fn admin(&self) -> Option<&dyn AdminStore> {
        Some(self)
    }
}
