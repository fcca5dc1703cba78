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
//! Every write to a run is one Lua script (loaded once, then `EVALSHA`),
//! so a transition is atomic, and its checks (fence, sequence number) run
//! before its first write.

pub mod connection;
mod keys;
mod record;
mod scripts;
mod waiters;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, RedisError, Value};
use tracing::{debug, warn};

use super::{
    Acquired, Commit, Committed, Lease, ResumeError, SendError, Started, Store, StoreError, Task,
    resumed_event,
};
use crate::envelope::{Envelope, HistoryEntry, Interrupt, SignalEntry, Status};
use crate::schedule::ScheduleSpec;
use keys::Keys;
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

    /// Ids of runs that are not settled, oldest first.
    pub async fn active_runs(&self) -> Result<Vec<String>, StoreError> {
        self.index(|k, s| k.active(s)).await
    }

    /// Ids of parked runs and failed compensations.
    pub async fn runs_needing_attention(&self) -> Result<Vec<String>, StoreError> {
        self.index(|k, s| k.attention(s)).await
    }

    /// Ids of the `limit` runs that settled last (completed, failed,
    /// cancelled, terminated, timed out, not yet expired), newest first.
    pub async fn finished_runs(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut scored: Vec<(String, f64)> = Vec::new();
        let mut conn = self.inner.conn.clone();
        for shard in 0..self.inner.keys.shards() {
            let page: Vec<(String, f64)> = redis::cmd("ZREVRANGE")
                .arg(self.inner.keys.done(shard))
                .arg(0)
                .arg(limit - 1)
                .arg("WITHSCORES")
                .query_async(self.counted(&mut conn))
                .await
                .map_err(store_error)?;
            scored.extend(page);
        }
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(scored.into_iter().take(limit).map(|(id, _)| id).collect())
    }

    async fn index(&self, key: impl Fn(&Keys, u32) -> String) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut conn = self.inner.conn.clone();
        for shard in 0..self.inner.keys.shards() {
            let ids: Vec<String> = redis::cmd("ZRANGE")
                .arg(key(&self.inner.keys, shard))
                .arg(0)
                .arg(-1)
                .query_async(self.counted(&mut conn))
                .await
                .map_err(store_error)?;
            out.extend(ids);
        }
        Ok(out)
    }

    async fn ensure_group(&self, stream: &str) -> Result<(), StoreError> {
        if self
            .inner
            .groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(stream)
        {
            return Ok(());
        }
        let mut conn = self.inner.conn.clone();
        // Start at 0: tasks added before the group existed are delivered too.
        let created: Result<(), RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(self.counted(&mut conn))
            .await;
        match created {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(store_error(e)),
        }
        self.inner
            .groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(stream.to_owned());
        Ok(())
    }

    fn forget_group(&self, stream: &str) {
        self.inner
            .groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(stream);
    }

    async fn poll_conn(&self) -> Result<MultiplexedConnection, StoreError> {
        if let Some(c) = self.inner.poll_conns.lock().await.pop() {
            return Ok(c);
        }
        // No response timeout: a blocking read legitimately waits.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(None);
        self.inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(store_error)
    }

    /// Claims tasks abandoned by dead or stalled workers, at most every
    /// quarter of the reclaim time.
    async fn reclaim(
        &self,
        worker: &str,
        streams: &[(String, String)],
        max: usize,
    ) -> Result<Vec<Task>, StoreError> {
        {
            let mut last = self
                .inner
                .last_reclaim
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= self.inner.reclaim_after / 4);
            if !due {
                return Ok(Vec::new());
            }
            *last = Some(Instant::now());
        }
        let idle = u64::try_from(self.inner.reclaim_after.as_millis()).unwrap_or(u64::MAX);
        let mut out = Vec::new();
        let mut conn = self.inner.conn.clone();
        for (stream, queue) in streams {
            if out.len() >= max {
                break;
            }
            let reply: Value = self
                .inner
                .scripts
                .reclaim
                .key(stream)
                .arg(GROUP)
                .arg(worker)
                .arg(idle)
                .arg(max - out.len())
                .invoke_async(self.counted(&mut conn))
                .await
                .map_err(store_error)?;
            for entry in values(reply) {
                let parts: Vec<String> = values(entry).into_iter().map(text).collect();
                if let [receipt, id, deliveries] = parts.as_slice() {
                    let mut task = Task::new(id.clone(), queue.clone(), receipt.clone());
                    task.deliveries = deliveries.parse().unwrap_or(1);
                    out.push(task);
                }
            }
        }
        if !out.is_empty() {
            debug!(count = out.len(), "reclaimed abandoned tasks");
        }
        Ok(out)
    }

    async fn read_new(
        &self,
        worker: &str,
        streams: &[(String, String)],
        max: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Task>, StoreError> {
        let mut conn = self.poll_conn().await?;
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(worker)
            .arg("COUNT")
            .arg(max);
        if let Some(b) = block {
            cmd.arg("BLOCK")
                .arg(u64::try_from(b.as_millis()).unwrap_or(u64::MAX).max(1));
        }
        cmd.arg("STREAMS");
        for (s, _) in streams {
            cmd.arg(s);
        }
        for _ in streams {
            cmd.arg(">");
        }
        let reply: Result<Value, RedisError> = cmd.query_async(self.counted(&mut conn)).await;
        let reply = match reply {
            Ok(r) => {
                self.inner.poll_conns.lock().await.push(conn);
                r
            }
            Err(e) => {
                if e.code() == Some("NOGROUP") {
                    for (s, _) in streams {
                        self.forget_group(s);
                    }
                    self.inner.poll_conns.lock().await.push(conn);
                }
                return Err(store_error(e));
            }
        };
        let by_stream: HashMap<&str, &str> = streams
            .iter()
            .map(|(s, q)| (s.as_str(), q.as_str()))
            .collect();
        let mut out = Vec::new();
        for stream_reply in stream_entries(reply) {
            let (stream, entries) = stream_reply;
            let Some(queue) = by_stream.get(stream.as_str()) else {
                continue;
            };
            for (receipt, fields) in entries {
                match fields.get("id") {
                    Some(id) => out.push(Task::new(id.clone(), (*queue).to_owned(), receipt)),
                    None => warn!(%stream, %receipt, "task entry without a run id; ignoring it"),
                }
            }
        }
        Ok(out)
    }

    /// The rest of a fenced script's answer, or the fence error.
    fn fenced_ok(&self, op: &str, lease: &Lease, reply: Value) -> Result<Vec<Value>, StoreError> {
        let mut parts = values(reply).into_iter();
        match parts.next().map(text).as_deref() {
            Some("ok") => Ok(parts.collect()),
            Some("fenced") => Err(StoreError::Fenced {
                workflow_id: lease.workflow_id.clone(),
                fence: lease.fence,
            }),
            other => Err(unexpected(op, other)),
        }
    }

    /// A run's task queue, if it exists.
    async fn queue_of(&self, workflow_id: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.inner.conn.clone();
        redis::cmd("HGET")
            .arg(self.inner.keys.run(workflow_id))
            .arg("queue")
            .query_async(self.counted(&mut conn))
            .await
            .map_err(store_error)
    }

    fn shard_key(&self, workflow_id: &str, f: impl Fn(&Keys, u32) -> String) -> String {
        f(&self.inner.keys, self.inner.keys.shard_of(workflow_id))
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn start(&self, envelope: Envelope) -> Result<Started, StoreError> {
        // Subscribe to settles first, so that a client waiting for this run
        // needs no read before the notification (see `wait_settled`).
        self.inner
            .waiters
            .ensure_listening(&self.inner.client, &self.inner.keys.settled_pattern())
            .await;
        let keys = &self.inner.keys;
        let id = &envelope.id;
        let stream = keys.tasks_of(id, &envelope.queue);
        let mut invocation = self.inner.scripts.start.prepare_invoke();
        invocation
            .key(keys.run(id))
            .key(keys.history(id))
            .key(&stream)
            .key(self.shard_key(id, Keys::active))
            .arg(id)
            .arg(self.inner.history_len)
            .arg(envelope.created_at_ms);
        for (field, value) in record::creation_fields(&envelope) {
            invocation.arg(field).arg(value);
        }
        let mut conn = self.inner.conn.clone();
        let reply: Value = invocation
            .invoke_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        let mut parts = values(reply).into_iter();
        match parts.next().map(text).as_deref() {
            Some("created") => {
                self.inner.waiters.started(id);
                Ok(Started::Created)
            }
            Some("existing") => {
                let fields = pairs(parts.next().unwrap_or(Value::Nil));
                let existing =
                    record::parse_for_reading(&fields).map_err(|reason| StoreError::Corrupt {
                        workflow_id: id.clone(),
                        reason,
                    })?;
                Ok(Started::Existing(Box::new(existing)))
            }
            other => Err(unexpected("start", other)),
        }
    }

    async fn poll(
        &self,
        worker: &str,
        queues: &[String],
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Task>, StoreError> {
        let keys = &self.inner.keys;
        let mut streams = Vec::new();
        for shard in 0..keys.shards() {
            for q in queues {
                streams.push((keys.tasks(shard, q), q.clone()));
            }
        }
        for (s, _) in &streams {
            self.ensure_group(s).await?;
        }
        let mut tasks = self.reclaim(worker, &streams, max).await?;
        if tasks.len() < max {
            let block = if tasks.is_empty() { Some(wait) } else { None };
            tasks.extend(
                self.read_new(worker, &streams, max - tasks.len(), block)
                    .await?,
            );
        }
        Ok(tasks)
    }

    async fn acquire(
        &self,
        task: &Task,
        worker: &str,
        lease_for: Duration,
    ) -> Result<Acquired, StoreError> {
        let mut all = self
            .acquire_many(std::slice::from_ref(task), worker, lease_for)
            .await?;
        all.pop().ok_or_else(|| unexpected("acquire", None))
    }

    /// One script call per shard for the whole batch.
    async fn acquire_many(
        &self,
        tasks: &[Task],
        worker: &str,
        lease_for: Duration,
    ) -> Result<Vec<Acquired>, StoreError> {
        let keys = &self.inner.keys;
        let mut answers: Vec<Option<Acquired>> = tasks.iter().map(|_| None).collect();
        let mut by_shard: HashMap<u32, Vec<usize>> = HashMap::new();
        for (i, t) in tasks.iter().enumerate() {
            by_shard
                .entry(keys.shard_of(&t.workflow_id))
                .or_default()
                .push(i);
        }
        for indexes in by_shard.values() {
            let mut invocation = self.inner.scripts.acquire.prepare_invoke();
            for &i in indexes {
                invocation.key(keys.run(&tasks[i].workflow_id));
            }
            for &i in indexes {
                invocation.key(keys.tasks_of(&tasks[i].workflow_id, &tasks[i].queue));
            }
            for &i in indexes {
                invocation.key(keys.signals(&tasks[i].workflow_id));
            }
            invocation.arg(worker).arg(millis(lease_for)).arg(GROUP);
            for &i in indexes {
                invocation.arg(&tasks[i].receipt);
            }
            let mut conn = self.inner.conn.clone();
            let reply: Value = invocation
                .invoke_async(self.counted(&mut conn))
                .await
                .map_err(store_error)?;
            for (&i, answer) in indexes.iter().zip(values(reply)) {
                let task = &tasks[i];
                let mut parts = values(answer).into_iter();
                answers[i] = Some(match parts.next().map(text).as_deref() {
                    Some("held") => {
                        let fence: u64 = parts
                            .next()
                            .map(text)
                            .and_then(|f| f.parse().ok())
                            .unwrap_or(0);
                        let fields = pairs(parts.next().unwrap_or(Value::Nil));
                        let signals: Vec<String> = values(parts.next().unwrap_or(Value::Nil))
                            .into_iter()
                            .map(text)
                            .collect();
                        let lease = Lease::new(
                            task.workflow_id.clone(),
                            worker.to_owned(),
                            fence,
                            task.clone(),
                        );
                        let envelope = record::parse(&fields).and_then(|mut env| {
                            env.signals = record::parse_signals(&signals)?;
                            Ok(Box::new(env))
                        });
                        Acquired::Held(lease, envelope)
                    }
                    Some("busy") => Acquired::Busy,
                    Some("settled") => Acquired::Settled,
                    Some("missing") => Acquired::Missing,
                    other => return Err(unexpected("acquire", other)),
                });
            }
        }
        answers
            .into_iter()
            .map(|a| a.ok_or_else(|| unexpected("acquire", None)))
            .collect()
    }

    async fn commit(
        &self,
        lease: &Lease,
        commit: Commit<'_>,
        lease_for: Duration,
    ) -> Result<Committed, StoreError> {
        let keys = &self.inner.keys;
        let env = commit.envelope;
        let id = &lease.workflow_id;
        let shard = keys.shard_of(id);
        let (set, delete) = record::commit_fields(env, commit.trim_history);
        let task_stream = keys.tasks_of(id, &lease.task.queue);
        let dispatch_stream = match &commit.dispatch {
            Some(q) => keys.tasks_of(id, q),
            None => task_stream.clone(),
        };
        let flag = |b: bool| if b { "1" } else { "0" };
        let optional = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
        let mut invocation = self.inner.scripts.commit.prepare_invoke();
        invocation
            .key(keys.run(id))
            .key(keys.history(id))
            .key(&task_stream)
            .key(keys.active(shard))
            .key(keys.done(shard))
            .key(keys.attention(shard))
            .key(keys.signals(id))
            .key(keys.timers(shard))
            .key(&dispatch_stream)
            .arg(&lease.worker)
            .arg(lease.fence)
            .arg(env.seq.wrapping_sub(1))
            .arg(flag(commit.release))
            .arg(&lease.task.receipt)
            .arg(GROUP)
            .arg(millis(lease_for))
            .arg(self.inner.history_len)
            .arg(millis(self.inner.retention))
            .arg(id)
            .arg(keys.settled_channel(shard))
            .arg(env.seq)
            .arg(&env.step)
            .arg(env.status.as_str())
            .arg(&commit.event)
            .arg(env.updated_at_ms)
            .arg(set.len())
            .arg(settled_message(env))
            .arg(commit.await_signal.as_deref().unwrap_or(""))
            .arg(optional(commit.wake_at))
            .arg(optional(commit.consume_signal))
            .arg(flag(commit.dispatch.is_some()))
            .arg(
                commit
                    .clear_interrupt
                    .as_ref()
                    .and_then(|i| serde_json::to_string(i).ok())
                    .unwrap_or_default(),
            )
            .arg(flag(commit.trim_history))
            .arg(timer_member(&env.queue, id));
        for (field, value) in set {
            invocation.arg(field).arg(value);
        }
        for field in delete {
            invocation.arg(field);
        }
        let mut conn = self.inner.conn.clone();
        let reply: Value = invocation
            .invoke_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        let mut parts = values(reply).into_iter();
        match parts.next().map(text).as_deref() {
            Some("ok") => {
                let interrupt = parts.next().map(text).unwrap_or_default();
                let signal = parts.next().map(text).unwrap_or_default();
                let corrupt = |reason: String| StoreError::Corrupt {
                    workflow_id: id.clone(),
                    reason,
                };
                Ok(Committed {
                    interrupt: parse_interrupt(&interrupt).map_err(corrupt)?,
                    signal: if signal.is_empty() {
                        None
                    } else {
                        record::parse_signals(&[signal]).map_err(corrupt)?.pop()
                    },
                })
            }
            Some("fenced") => Err(StoreError::Fenced {
                workflow_id: id.clone(),
                fence: lease.fence,
            }),
            Some("stale") => Err(StoreError::Stale {
                workflow_id: id.clone(),
                expected: env.seq.wrapping_sub(1),
                found: parts
                    .next()
                    .map(text)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
            }),
            other => Err(unexpected("commit", other)),
        }
    }

    async fn park(&self, lease: &Lease, reason: &str) -> Result<(), StoreError> {
        let keys = &self.inner.keys;
        let id = &lease.workflow_id;
        let shard = keys.shard_of(id);
        let mut conn = self.inner.conn.clone();
        let reply: Value = self
            .inner
            .scripts
            .park
            .key(keys.run(id))
            .key(keys.history(id))
            .key(keys.tasks_of(id, &lease.task.queue))
            .key(keys.active(shard))
            .key(keys.attention(shard))
            .arg(&lease.worker)
            .arg(lease.fence)
            .arg(&lease.task.receipt)
            .arg(GROUP)
            .arg(reason)
            .arg(self.inner.history_len)
            .arg(id)
            .arg(keys.settled_channel(shard))
            .arg(crate::clock::wall_clock_ms())
            .invoke_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        self.fenced_ok("park", lease, reply).map(|_| ())
    }

    async fn resume(
        &self,
        workflow_id: &str,
        note: &str,
        now_ms: u64,
    ) -> Result<Status, ResumeError> {
        let Some(queue) = self.queue_of(workflow_id).await? else {
            return Err(ResumeError::NotFound(workflow_id.to_owned()));
        };
        let keys = &self.inner.keys;
        let shard = keys.shard_of(workflow_id);
        let mut conn = self.inner.conn.clone();
        let reply: Value = self
            .inner
            .scripts
            .resume
            .key(keys.run(workflow_id))
            .key(keys.history(workflow_id))
            .key(keys.tasks_of(workflow_id, &queue))
            .key(keys.active(shard))
            .key(keys.attention(shard))
            .arg(workflow_id)
            .arg(resumed_event(note))
            .arg(self.inner.history_len)
            .arg(now_ms)
            .arg(keys.settled_channel(shard))
            .arg(format!("{workflow_id}\n{}", waiters::RESUMED))
            .invoke_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        // Our own waiters forget the old settle now; other stores' waiters
        // when the published message reaches them.
        self.inner.waiters.forget(workflow_id);
        let mut parts = values(reply).into_iter().map(text);
        let id = || workflow_id.to_owned();
        match parts.next().as_deref() {
            Some("ok") => {
                let status = parts.next().unwrap_or_default();
                Status::parse(&status)
                    .ok_or_else(|| ResumeError::Store(unexpected("resume", Some(status.as_str()))))
            }
            Some("missing") => Err(ResumeError::NotFound(id())),
            Some("held") => Err(ResumeError::Held(id())),
            Some("not_stopped") => {
                let status = parts.next().unwrap_or_default();
                Err(match Status::parse(&status) {
                    Some(status) => ResumeError::NotStopped { id: id(), status },
                    None => ResumeError::UnknownStatus { id: id(), status },
                })
            }
            other => Err(unexpected("resume", other).into()),
        }
    }

    async fn release(
        &self,
        lease: &Lease,
        dispatch: Option<&str>,
        wake_at: Option<u64>,
    ) -> Result<(), StoreError> {
        let keys = &self.inner.keys;
        let id = &lease.workflow_id;
        // Timers are armed on release only by the workflow's own worker, whose
        // task came from the run's queue.
        let own_queue = &lease.task.queue;
        let task_stream = keys.tasks_of(id, &lease.task.queue);
        let dispatch_stream = dispatch
            .map(|q| keys.tasks_of(id, q))
            .unwrap_or_else(|| task_stream.clone());
        let mut conn = self.inner.conn.clone();
        let reply: Value = self
            .inner
            .scripts
            .release
            .key(keys.run(id))
            .key(&task_stream)
            .key(&dispatch_stream)
            .key(keys.timers(keys.shard_of(id)))
            .arg(&lease.worker)
            .arg(lease.fence)
            .arg(&lease.task.receipt)
            .arg(GROUP)
            .arg(if dispatch.is_some() { "1" } else { "0" })
            .arg(id)
            .arg(wake_at.map(|w| w.to_string()).unwrap_or_default())
            .arg(timer_member(own_queue, id))
            .invoke_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        self.fenced_ok("release", lease, reply).map(|_| ())
    }

    async fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
    ) -> Result<Option<Interrupt>, StoreError> {
        let keys = &self.inner.keys;
        let id = &lease.workflow_id;
        let mut conn = self.inner.conn.clone();
        let reply: Value = self
            .inner
            .scripts
            .renew
            .key(keys.run(id))
            .key(keys.tasks_of(id, &lease.task.queue))
            .arg(&lease.worker)
            .arg(lease.fence)
            .arg(millis(lease_for))
            .arg(&lease.task.receipt)
            .arg(GROUP)
            .invoke_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        let rest = self.fenced_ok("renew", lease, reply)?;
        let raw = rest.into_iter().next().map(text).unwrap_or_default();
        parse_interrupt(&raw).map_err(|reason| StoreError::Corrupt {
            workflow_id: id.clone(),
            reason,
        })
    }

    async fn fire_timers(
        &self,
        now_ms: u64,
        queues: &[String],
        max: usize,
    ) -> Result<usize, StoreError> {
        let keys = &self.inner.keys;
        let mut fired = 0;
        for shard in 0..keys.shards() {
            let mut invocation = self.inner.scripts.fire_timers.prepare_invoke();
            invocation.key(keys.timers(shard));
            for q in queues {
                invocation.key(keys.tasks(shard, q));
            }
            invocation.arg(now_ms).arg(max);
            for q in queues {
                invocation.arg(q);
            }
            let mut conn = self.inner.conn.clone();
            let n: usize = invocation
                .invoke_async(self.counted(&mut conn))
                .await
                .map_err(store_error)?;
            fired += n;
        }
        Ok(fired)
    }

    async fn signal(
        &self,
        workflow_id: &str,
        signal: SignalEntry,
        bound: usize,
    ) -> Result<(), SendError> {
        let Some(queue) = self.queue_of(workflow_id).await? else {
            return Err(SendError::NotFound(workflow_id.to_owned()));
        };
        let keys = &self.inner.keys;
        let entry =
            serde_json::to_string(&signal).map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut conn = self.inner.conn.clone();
        let reply: Value = self
            .inner
            .scripts
            .signal
            .key(keys.run(workflow_id))
            .key(keys.signals(workflow_id))
            .key(keys.tasks_of(workflow_id, &queue))
            .arg(&signal.name)
            .arg(entry)
            .arg(bound)
            .arg(workflow_id)
            .invoke_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        send_reply("signal", workflow_id, bound, reply)
    }

    async fn interrupt(&self, workflow_id: &str, interrupt: Interrupt) -> Result<(), SendError> {
        let Some(queue) = self.queue_of(workflow_id).await? else {
            return Err(SendError::NotFound(workflow_id.to_owned()));
        };
        let keys = &self.inner.keys;
        let raw =
            serde_json::to_string(&interrupt).map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut conn = self.inner.conn.clone();
        let reply: Value = self
            .inner
            .scripts
            .interrupt
            .key(keys.run(workflow_id))
            .key(keys.tasks_of(workflow_id, &queue))
            .arg(raw)
            .arg(workflow_id)
            .invoke_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        send_reply("interrupt", workflow_id, 0, reply)
    }

    async fn wake(&self, workflow_id: &str) -> Result<(), StoreError> {
        let Some(queue) = self.queue_of(workflow_id).await? else {
            return Ok(());
        };
        let keys = &self.inner.keys;
        let mut conn = self.inner.conn.clone();
        let _: Value = self
            .inner
            .scripts
            .wake
            .key(keys.run(workflow_id))
            .key(keys.tasks_of(workflow_id, &queue))
            .arg(workflow_id)
            .invoke_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn put_schedule(&self, spec: ScheduleSpec) -> Result<(), StoreError> {
        let keys = &self.inner.keys;
        let raw = serde_json::to_string(&spec).map_err(|e| StoreError::Backend(e.to_string()))?;
        let next = spec
            .next_ms
            .filter(|_| !spec.paused)
            .map(|n| n.to_string())
            .unwrap_or_default();
        let mut conn = self.inner.conn.clone();
        let _: Value = self
            .inner
            .scripts
            .put_schedule
            .key(keys.schedules())
            .key(keys.schedules_due())
            .arg(&spec.id)
            .arg(raw)
            .arg(next)
            .invoke_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn schedules(&self) -> Result<Vec<ScheduleSpec>, StoreError> {
        let mut conn = self.inner.conn.clone();
        let all: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.inner.keys.schedules())
            .query_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        let mut specs: Vec<ScheduleSpec> = all
            .values()
            .map(|raw| parse_schedule(raw))
            .collect::<Result<_, _>>()?;
        specs.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(specs)
    }

    async fn due_schedules(
        &self,
        now_ms: u64,
        max: usize,
    ) -> Result<Vec<ScheduleSpec>, StoreError> {
        let keys = &self.inner.keys;
        let mut conn = self.inner.conn.clone();
        let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(keys.schedules_due())
            .arg("-inf")
            .arg(now_ms)
            .arg("LIMIT")
            .arg(0)
            .arg(max)
            .query_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let raws: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(keys.schedules())
            .arg(&ids)
            .query_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        // The two reads are not atomic: a worker that fired a schedule in
        // between has stored its next (future) firing time. Such a spec is
        // not due, and firing it would start the next run early.
        let specs: Vec<ScheduleSpec> = raws
            .into_iter()
            .flatten()
            .map(|raw| parse_schedule(&raw))
            .collect::<Result<_, _>>()?;
        Ok(specs
            .into_iter()
            .filter(|s| !s.paused && s.next_ms.is_some_and(|n| n <= now_ms))
            .collect())
    }

    async fn advance_schedule(
        &self,
        spec: &ScheduleSpec,
        expected_next_ms: u64,
    ) -> Result<bool, StoreError> {
        let keys = &self.inner.keys;
        let raw = serde_json::to_string(spec).map_err(|e| StoreError::Backend(e.to_string()))?;
        let next = spec.next_ms.map(|n| n.to_string()).unwrap_or_default();
        let mut conn = self.inner.conn.clone();
        let done: i64 = self
            .inner
            .scripts
            .advance_schedule
            .key(keys.schedules())
            .key(keys.schedules_due())
            .arg(&spec.id)
            .arg(expected_next_ms)
            .arg(raw)
            .arg(next)
            .invoke_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        Ok(done == 1)
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool, StoreError> {
        let keys = &self.inner.keys;
        let mut conn = self.inner.conn.clone();
        let (removed, _): (i64, i64) = redis::pipe()
            .cmd("HDEL")
            .arg(keys.schedules())
            .arg(id)
            .cmd("ZREM")
            .arg(keys.schedules_due())
            .arg(id)
            .query_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        Ok(removed == 1)
    }

    async fn ack(&self, task: &Task) -> Result<(), StoreError> {
        let mut conn = self.inner.conn.clone();
        let _: Value = self
            .inner
            .scripts
            .ack
            .key(self.inner.keys.tasks_of(&task.workflow_id, &task.queue))
            .arg(GROUP)
            .arg(&task.receipt)
            .invoke_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn load(&self, workflow_id: &str) -> Result<Option<Envelope>, StoreError> {
        let keys = &self.inner.keys;
        let read = || async {
            let mut conn = self.inner.conn.clone();
            redis::pipe()
                .cmd("HGETALL")
                .arg(keys.run(workflow_id))
                .cmd("LRANGE")
                .arg(keys.signals(workflow_id))
                .arg(0)
                .arg(-1)
                .query_async::<(HashMap<String, String>, Vec<String>)>(self.counted(&mut conn))
                .await
                .map_err(store_error)
        };
        // A read is safe to repeat: once, for a connection Redis dropped
        // (a restart, a failover) and the manager has since re-established.
        let (fields, signals) = match read().await {
            Err(e) if e.is_transient() => read().await?,
            other => other?,
        };
        if fields.is_empty() {
            return Ok(None);
        }
        let corrupt = |reason| StoreError::Corrupt {
            workflow_id: workflow_id.to_owned(),
            reason,
        };
        let mut env = record::parse_for_reading(&fields).map_err(corrupt)?;
        env.signals = if env.status == Status::Parked {
            record::parse_signals_for_reading(&signals)
        } else {
            record::parse_signals(&signals).map_err(corrupt)?
        };
        Ok(Some(env))
    }

    async fn history(&self, workflow_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut conn = self.inner.conn.clone();
        let reply: Value = redis::cmd("XRANGE")
            .arg(self.inner.keys.history(workflow_id))
            .arg("-")
            .arg("+")
            .query_async(self.counted(&mut conn))
            .await
            .map_err(store_error)?;
        entries(reply)
            .into_iter()
            .map(|(_, fields)| {
                record::parse_history(&fields).map_err(|reason| StoreError::Corrupt {
                    workflow_id: workflow_id.to_owned(),
                    reason,
                })
            })
            .collect()
    }

    async fn wait_settled(
        &self,
        workflow_id: &str,
        timeout: Duration,
    ) -> Result<Option<Envelope>, StoreError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let waiters = &self.inner.waiters;
        waiters
            .ensure_listening(&self.inner.client, &self.inner.keys.settled_pattern())
            .await;
        let mine = waiters.register(workflow_id);
        // A run this store started while subscribed cannot have settled
        // unseen: skip the first read, unless its settle was already seen.
        let mut look = !waiters.watched_since_start(workflow_id);
        loop {
            let mut settled = std::pin::pin!(mine.notified());
            settled.as_mut().enable();
            let mut resubscribed = std::pin::pin!(waiters.everyone().notified());
            resubscribed.as_mut().enable();
            match waiters.seen_settled(workflow_id) {
                Some(Some(env)) => return Ok(Some(env)),
                Some(None) => look = true,
                None => {}
            }
            if look {
                // A running record that does not read is not settled: a
                // worker will park it, and its park wakes us.
                match self.load(workflow_id).await {
                    Ok(Some(env)) if !env.status.is_settled() => {}
                    Ok(current) => return Ok(current),
                    Err(StoreError::Corrupt { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            look = true;
            // A slow safety net: notifications are the way runs are seen to
            // settle; this only bounds the cost of one that got lost.
            let safety = tokio::time::sleep(Duration::from_secs(30));
            tokio::select! {
                _ = settled => {}
                _ = resubscribed => {}
                _ = safety => {}
                _ = tokio::time::sleep_until(deadline) => return self.load(workflow_id).await,
            }
        }
    }
}

/// What the commit of a settling run publishes: its id and, when small, the
/// settled checkpoint itself, so that a waiting client needs no read.
fn settled_message(env: &Envelope) -> String {
    const INLINE_LIMIT: usize = 16 * 1024;
    if !env.status.is_settled() {
        return String::new();
    }
    match serde_json::to_string(env) {
        Ok(json) if json.len() <= INLINE_LIMIT => format!("{}\n{json}", env.id),
        _ => env.id.clone(),
    }
}

/// A run's member in its shard's timer set: `<queue>\n<id>`.
fn timer_member(queue: &str, id: &str) -> String {
    format!("{queue}\n{id}")
}

fn parse_interrupt(raw: &str) -> Result<Option<Interrupt>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(raw)
        .map(Some)
        .map_err(|e| format!("field `interrupt` does not decode: {e}"))
}

fn parse_schedule(raw: &str) -> Result<ScheduleSpec, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
        workflow_id: String::new(),
        reason: format!("a schedule does not decode: {e}"),
    })
}

/// The answer of a signal or interrupt script.
fn send_reply(op: &str, id: &str, bound: usize, reply: Value) -> Result<(), SendError> {
    let mut parts = values(reply).into_iter();
    match parts.next().map(text).as_deref() {
        Some("ok") => Ok(()),
        Some("missing") => Err(SendError::NotFound(id.to_owned())),
        Some("settled") => {
            let status = parts
                .next()
                .map(text)
                .and_then(|s| Status::parse(&s))
                .unwrap_or(Status::Completed);
            Err(SendError::Settled {
                id: id.to_owned(),
                status,
            })
        }
        Some("full") => Err(SendError::BufferFull {
            id: id.to_owned(),
            bound: parts
                .next()
                .map(text)
                .and_then(|b| b.parse().ok())
                .unwrap_or(bound),
        }),
        other => Err(unexpected(op, other).into()),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Maps a Redis error to a store error: connection trouble is transient,
/// anything else (a script error, a wrong type) is not.
fn store_error(e: RedisError) -> StoreError {
    if e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.code(),
            Some("LOADING" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "READONLY")
        )
    {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}

fn unreachable_error(url: &str, e: &RedisError) -> StoreError {
    StoreError::Unavailable(format!("cannot reach Redis at {url}: {e}"))
}

fn unexpected(op: &str, reply: Option<&str>) -> StoreError {
    StoreError::Backend(format!("unexpected reply to {op}: {reply:?}"))
}

fn values(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) | Value::Set(items) => items,
        Value::Nil => Vec::new(),
        other => vec![other],
    }
}

fn text(v: Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::SimpleString(s) => s,
        Value::Int(i) => i.to_string(),
        Value::Okay => "OK".to_owned(),
        Value::VerbatimString { text, .. } => text,
        Value::Double(d) => d.to_string(),
        _ => String::new(),
    }
}

/// A flat `[field, value, ...]` array (or a map) as a map.
fn pairs(v: Value) -> HashMap<String, String> {
    match v {
        Value::Map(kvs) => kvs.into_iter().map(|(k, v)| (text(k), text(v))).collect(),
        other => {
            let flat = values(other);
            let mut out = HashMap::with_capacity(flat.len() / 2);
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.insert(text(k), text(v));
            }
            out
        }
    }
}

/// A stream entry: its id and fields.
type Entry = (String, HashMap<String, String>);

/// Stream entries `[[id, [field, value, ...]], ...]`.
fn entries(v: Value) -> Vec<Entry> {
    values(v)
        .into_iter()
        .filter_map(|e| {
            let mut parts = values(e).into_iter();
            let id = text(parts.next()?);
            Some((id, pairs(parts.next().unwrap_or(Value::Nil))))
        })
        .collect()
}

/// An `XREADGROUP` reply: `[[stream, entries], ...]` (or a map in RESP3).
fn stream_entries(v: Value) -> Vec<(String, Vec<Entry>)> {
    match v {
        Value::Map(kvs) => kvs
            .into_iter()
            .map(|(k, v)| (text(k), entries(v)))
            .collect(),
        other => values(other)
            .into_iter()
            .filter_map(|s| {
                let mut parts = values(s).into_iter();
                let name = text(parts.next()?);
                Some((name, entries(parts.next().unwrap_or(Value::Nil))))
            })
            .collect(),
    }
}
