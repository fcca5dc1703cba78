//! The Redis checkpoint store.
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
//! the record's fields, the history entry and the named effects.

mod apply;
pub mod connection;
mod keys;
mod reads;
mod reply;
mod schedules;
mod scripts;
mod tasks;
mod waiters;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use tracing::{debug, warn};

use super::{
    Acquired, AdminStore, Applied, Lease, ScheduleStore, Started, Store, StoreError, Task,
};
use crate::core::{Decision, Guard, HistoryEntry, Interrupt, RunRecord};
use keys::Keys;
use reply::{store_error, unreachable_error};
use scripts::Scripts;
use waiters::Waiters;

/// The consumer group of every task stream.
const GROUP: &str = "steadfast";

/// Builds a [`RedisStore`].
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    shards: u32,
    reclaim_after: Duration,
    history_len: u64,
    retention: Duration,
    response_timeout: Duration,
    check_persistence: bool,
}

impl RedisStoreBuilder {
    /// Every key starts with this (default `steadfast:`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The number of logical shards runs are spread over (default 1). Every
    /// key of a run, its shard's task streams and indexes share a hash tag,
    /// so they can live on one Redis Cluster node. Changing the number moves
    /// runs to other shards: set it before the first run.
    pub fn shards(mut self, shards: u32) -> Self {
        self.shards = shards.max(1);
        self
    }

    /// How long a delivered task may go unacknowledged, without its lease
    /// being renewed, before another worker claims it (default 30 s; keep it
    /// at least as long as workers' leases).
    pub fn reclaim_after(mut self, after: Duration) -> Self {
        self.reclaim_after = after;
        self
    }

    /// How many history entries a run keeps (about; default 1000).
    pub fn history_len(mut self, entries: u64) -> Self {
        self.history_len = entries.max(1);
        self
    }

    /// How long completed and failed runs are kept (default 7 days;
    /// `Duration::ZERO` keeps them forever). Parked runs and failed
    /// compensations are always kept.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How long one Redis command may take before it counts as failed
    /// (default 10 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Whether to check Redis's persistence settings on connect and warn
    /// when a restart would lose checkpoints (default true).
    pub fn check_persistence(mut self, check: bool) -> Self {
        self.check_persistence = check;
        self
    }

    /// Connects.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(self.url.as_str()).map_err(|e| {
            StoreError::Unavailable(format!("invalid Redis URL `{}`: {e}", self.url))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.response_timeout))
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| unreachable_error(&self.url, &e))?;
        let store = RedisStore {
            inner: Arc::new(Inner {
                client,
                conn,
                keys: Keys::new(self.prefix.clone(), self.shards),
                scripts: Scripts::new(),
                reclaim_after: self.reclaim_after,
                history_len: self.history_len,
                retention: self.retention,
                poll_conns: tokio::sync::Mutex::new(Vec::new()),
                groups: Mutex::new(HashSet::new()),
                last_reclaim: Mutex::new(None),
                waiters: Waiters::new(),
                url: self.url,
                round_trips: AtomicU64::new(0),
            }),
        };
        if self.check_persistence {
            match store.persistence().await {
                Ok(p) => p.warn_if_volatile(),
                Err(e) => debug!(error = %e, "cannot read Redis persistence settings"),
            }
        }
        Ok(store)
    }
}

/// A [`Store`] on Redis: durable (as durable as the server's persistence
/// settings make it), shared by any number of worker processes.
///
/// ## Behavior
/// - Scripts and reads go through one multiplexed connection that
///   reconnects by itself; commands issued while Redis is away fail with
///   [`StoreError::Unavailable`], and workers retry them with backoff.
/// - Blocking reads of the task queues use connections of their own, so they
///   never hold up commits.
/// - Clients waiting for results share one subscription to the `settled`
///   channel and are woken when their run settles, not by polling.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    conn: ConnectionManager,
    keys: Keys,
    scripts: Scripts,
    reclaim_after: Duration,
    history_len: u64,
    retention: Duration,
    /// Connections for blocking reads, one per concurrent poll.
    poll_conns: tokio::sync::Mutex<Vec<MultiplexedConnection>>,
    /// Task streams whose consumer group is known to exist.
    groups: Mutex<HashSet<String>>,
    last_reclaim: Mutex<Option<Instant>>,
    waiters: Arc<Waiters>,
    url: String,
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
            .field("url", &self.inner.url)
            .field("keys", &self.inner.keys)
            .finish()
    }
}

/// What Redis does to keep data over a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Persistence {
    /// `appendonly`: the append-only file is on.
    pub append_only: bool,
    /// `appendfsync`: `always`, `everysec` or `no`.
    pub append_fsync: String,
    /// `save`: the snapshot schedule (empty: no snapshots).
    pub save: String,
}

impl Persistence {
    /// What a Redis crash can lose, in a sentence.
    pub fn describe(&self) -> String {
        match (
            self.append_only,
            self.append_fsync.as_str(),
            self.save.is_empty(),
        ) {
            (true, "always", _) => {
                "append-only file, fsync on every write: a crash loses nothing acknowledged".into()
            }
            (true, "everysec", _) => {
                "append-only file, fsync every second: a crash can lose about the last second"
                    .into()
            }
            (true, _, _) => {
                "append-only file without fsync: a crash can lose what the OS had not written"
                    .into()
            }
            (false, _, false) => format!(
                "snapshots only (save \"{}\"): a crash loses everything since the last snapshot",
                self.save
            ),
            (false, _, true) => "no persistence: a Redis restart loses every checkpoint".into(),
        }
    }

    /// Whether a crash of Redis can lose acknowledged checkpoints.
    pub fn is_volatile(&self) -> bool {
        !(self.append_only && self.append_fsync == "always")
    }

    fn warn_if_volatile(&self) {
        if !self.append_only && self.save.is_empty() {
            warn!(
                "Redis persistence is off: {}. Set `appendonly yes` (and `appendfsync always` for no loss).",
                self.describe()
            );
        } else if self.is_volatile() {
            debug!("Redis persistence: {}", self.describe());
        }
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`) with the default settings.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// Starts configuring a store on `url`.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: "steadfast:".to_owned(),
            shards: 1,
            reclaim_after: Duration::from_secs(30),
            history_len: 1000,
            retention: Duration::from_secs(7 * 24 * 3600),
            response_timeout: Duration::from_secs(10),
            check_persistence: true,
        }
    }

    /// The server's persistence settings.
    pub async fn persistence(&self) -> Result<Persistence, StoreError> {
        let mut conn = self.inner.conn.clone();
        let get = |v: Vec<String>| v.get(1).cloned().unwrap_or_default();
        let aof: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .query_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        let fsync: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendfsync")
            .query_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        let save: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("save")
            .query_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        Ok(Persistence {
            append_only: get(aof) == "yes",
            append_fsync: get(fsync),
            save: get(save),
        })
    }

    /// How many commands this store (and its clones) sent to Redis: each is
    /// one round trip. Scripts count once, whatever they do inside.
    pub fn round_trips(&self) -> u64 {
        self.inner.round_trips.load(Ordering::Relaxed)
    }

    fn counted<'c, C>(&self, conn: &'c mut C) -> &'c mut C {
        self.inner.round_trips.fetch_add(1, Ordering::Relaxed);
        conn
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
            .ensure_listening(&self.inner.client, &self.inner.keys.settled_pattern())
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
