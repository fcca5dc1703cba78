//! Polling the task queues: reclaiming tasks abandoned by dead workers,
//! then reading new ones through the consumer group.
//!
//! On a cluster, the streams of one `XREADGROUP` must share a hash slot,
//! so the read is one per shard; elsewhere one read covers every shard. A
//! blocking read holds its connection until it returns, so each has a
//! dedicated one ([`RedisConnection::blocking`]). When several shards are
//! read, their reads block concurrently and the poll returns as soon as
//! one brings tasks; the others run to the end of their block in the
//! background and leave what they read for the same worker's next poll.
//! Those tasks are pending for this consumer in Redis, so they are kept,
//! not dropped (dropped, they would wait for the reclaim time); if no poll
//! takes them soon (the worker stopped, or has no room), they are handed
//! back: their idle time is set to the reclaim time, so that the next
//! reclaim of any worker claims them.
//!
//! [`RedisConnection::blocking`]: super::connection::RedisConnection::blocking

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redis::{RedisError, Value};
use tokio::sync::Notify;
use tracing::{debug, warn};

use super::connection::BlockingConnection;
use super::reply::{stream_entries, text, unexpected, values};
use super::{GROUP, RedisStore};
use crate::store::{StoreError, Task};

/// A blocking connection is made for blocks of at least this long, so that
/// polls with slightly different waits share connections.
const MIN_BLOCK: Duration = Duration::from_secs(1);

/// A read that ends empty is started again only if at least this much of
/// the poll's wait is left.
const MIN_REARM: Duration = Duration::from_millis(5);

/// A stream and the task queue it holds.
type Stream = (String, String);

/// Blocking reads of one store: idle connections, reads in flight, and
/// tasks read by a background read after its poll had returned.
#[derive(Default)]
pub(super) struct Polls {
    /// Idle blocking connections, with the longest block each allows.
    idle: Mutex<Vec<(Duration, BlockingConnection)>>,
    /// Background reads in flight, by consumer and first stream.
    in_flight: Mutex<HashSet<(String, String)>>,
    /// What background reads brought, by consumer.
    carried: Mutex<HashMap<String, Carried>>,
    /// Woken whenever a background read ends.
    landed: Notify,
}

#[derive(Default)]
struct Carried {
    tasks: Vec<Task>,
    /// The error of the last background read that failed, if no read has
    /// succeeded since.
    error: Option<StoreError>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Polls {
    /// Up to `max` carried tasks of `worker` on `queues`.
    fn take_tasks(&self, worker: &str, queues: &[String], max: usize) -> Vec<Task> {
        let mut carried = lock(&self.carried);
        let Some(c) = carried.get_mut(worker) else {
            return Vec::new();
        };
        let mut taken = Vec::new();
        c.tasks.retain(|t| {
            if taken.len() < max && queues.contains(&t.queue) {
                taken.push(t.clone());
                false
            } else {
                true
            }
        });
        taken
    }

    /// The carried tasks of `worker` among `receipts`, taken.
    fn take_receipts(&self, worker: &str, receipts: &[String]) -> Vec<Task> {
        let mut carried = lock(&self.carried);
        let Some(c) = carried.get_mut(worker) else {
            return Vec::new();
        };
        let mut taken = Vec::new();
        c.tasks.retain(|t| {
            if receipts.contains(&t.receipt) {
                taken.push(t.clone());
                false
            } else {
                true
            }
        });
        taken
    }

    fn take_error(&self, worker: &str) -> Option<StoreError> {
        lock(&self.carried).get_mut(worker)?.error.take()
    }

    fn reads_in_flight(&self, worker: &str) -> bool {
        lock(&self.in_flight).iter().any(|(w, _)| w == worker)
    }

    fn land(&self, worker: &str, first_stream: &str, result: Result<Vec<Task>, StoreError>) {
        {
            let mut carried = lock(&self.carried);
            let c = carried.entry(worker.to_owned()).or_default();
            match result {
                Ok(tasks) => {
                    c.tasks.extend(tasks);
                    c.error = None;
                }
                Err(e) => c.error = Some(e),
            }
        }
        lock(&self.in_flight).remove(&(worker.to_owned(), first_stream.to_owned()));
        self.landed.notify_waiters();
    }

    fn take_connection(&self, block: Duration) -> Option<BlockingConnection> {
        let mut idle = lock(&self.idle);
        let i = idle.iter().position(|(max, _)| *max >= block)?;
        Some(idle.swap_remove(i).1)
    }

    fn give_back(&self, max_block: Duration, conn: BlockingConnection) {
        lock(&self.idle).push((max_block, conn));
    }
}

impl RedisStore {
    async fn ensure_group(&self, stream: &str) -> Result<(), StoreError> {
        if lock(&self.inner.groups).contains(stream) {
            return Ok(());
        }
        // Start at 0: tasks added before the group existed are delivered too.
        let created: Result<(), RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.counted())
            .await;
        match created {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(self.error(&e)),
        }
        lock(&self.inner.groups).insert(stream.to_owned());
        Ok(())
    }

    /// The streams of `queues`, grouped by what one `XREADGROUP` may read:
    /// one shard per group on a cluster, every shard in one group elsewhere.
    fn read_groups(&self, queues: &[String]) -> Vec<Vec<Stream>> {
        let keys = &self.inner.keys;
        let shard = |shard: u32| -> Vec<Stream> {
            queues
                .iter()
                .map(|q| (keys.tasks(shard, q), q.clone()))
                .collect()
        };
        if self.inner.conn.is_cluster() {
            (0..keys.shards()).map(shard).collect()
        } else {
            vec![(0..keys.shards()).flat_map(shard).collect()]
        }
    }

    pub(super) async fn poll_tasks(
        &self,
        worker: &str,
        queues: &[String],
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Task>, StoreError> {
        let groups = self.read_groups(queues);
        let streams: Vec<Stream> = groups.concat();
        for (s, _) in &streams {
            self.ensure_group(s).await?;
        }
        let polls = &self.inner.polls;
        let mut tasks = polls.take_tasks(worker, queues, max);
        if tasks.len() < max {
            tasks.extend(self.reclaim(worker, &streams, max - tasks.len()).await?);
        }
        if tasks.len() >= max {
            return Ok(tasks);
        }
        let want = max - tasks.len();
        match groups.as_slice() {
            [one] => {
                let block = tasks.is_empty().then_some(wait);
                tasks.extend(self.read(worker, one, want, block).await?);
            }
            _ if !tasks.is_empty() => {
                // Something to do already: look without waiting.
                for group in &groups {
                    if tasks.len() >= max {
                        break;
                    }
                    tasks.extend(self.read(worker, group, max - tasks.len(), None).await?);
                }
            }
            _ => {
                tasks = self
                    .read_blocking(worker, queues, &groups, want, wait)
                    .await?
            }
        }
        Ok(tasks)
    }

    /// Blocks on every group at once (each in a task of its own, unless a
    /// read of an earlier poll still waits there); returns as soon as one
    /// brings tasks, or after `wait`. A read that ends empty before then is
    /// started again for the time left, so no shard goes unwatched while
    /// the poll waits.
    async fn read_blocking(
        &self,
        worker: &str,
        queues: &[String],
        groups: &[Vec<Stream>],
        count: usize,
        wait: Duration,
    ) -> Result<Vec<Task>, StoreError> {
        let polls = &self.inner.polls;
        let deadline = tokio::time::Instant::now() + wait;
        let mut landed = std::pin::pin!(polls.landed.notified());
        loop {
            landed.as_mut().enable();
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left >= MIN_REARM {
                for group in groups {
                    self.spawn_read(worker, group, count, left);
                }
            }
            let tasks = polls.take_tasks(worker, queues, count);
            if !tasks.is_empty() {
                return Ok(tasks);
            }
            if let Some(e) = polls.take_error(worker) {
                return Err(e);
            }
            if left < MIN_REARM && !polls.reads_in_flight(worker) {
                return Ok(Vec::new());
            }
            // The reads end by themselves at the deadline; the margin
            // bounds the poll should one hang. Reads still in flight then
            // leave what they bring for the next poll.
            tokio::select! {
                _ = landed.as_mut() => {}
                _ = tokio::time::sleep_until(deadline + MIN_BLOCK) => return Ok(Vec::new()),
            }
            landed.set(polls.landed.notified());
        }
    }

    /// Starts a blocking read of `group` for `worker` in a task of its own,
    /// unless one is in flight there. What it brings is carried for the
    /// worker's polls; what no poll takes soon is handed back.
    fn spawn_read(&self, worker: &str, group: &[Stream], count: usize, block: Duration) {
        let Some((first, _)) = group.first() else {
            return;
        };
        let polls = &self.inner.polls;
        if !lock(&polls.in_flight).insert((worker.to_owned(), first.clone())) {
            return;
        }
        let store = self.clone();
        let group = group.to_vec();
        let worker = worker.to_owned();
        let first = first.clone();
        tokio::spawn(async move {
            let result = store.read(&worker, &group, count, Some(block)).await;
            let receipts: Vec<String> = match &result {
                Ok(tasks) => tasks.iter().map(|t| t.receipt.clone()).collect(),
                Err(_) => Vec::new(),
            };
            store.inner.polls.land(&worker, &first, result);
            if receipts.is_empty() {
                return;
            }
            // Tasks no poll took by then go back to the queue.
            tokio::time::sleep((block * 2).max(MIN_BLOCK)).await;
            let left = store.inner.polls.take_receipts(&worker, &receipts);
            if !left.is_empty() {
                store.hand_back(&worker, &left).await;
            }
        });
    }

    /// One `XREADGROUP` of `streams` (one slot on a cluster): blocking for
    /// up to `block` on a dedicated connection, or at once on the shared
    /// one.
    async fn read(
        &self,
        worker: &str,
        streams: &[Stream],
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Task>, StoreError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(worker)
            .arg("COUNT")
            .arg(count.max(1));
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
        let reply: Result<Value, RedisError> = match block {
            None => cmd.query_async(&mut self.counted()).await,
            Some(b) => {
                let polls = &self.inner.polls;
                let max_block = b.max(MIN_BLOCK);
                let mut conn = match polls.take_connection(b) {
                    Some(c) => c,
                    None => self.inner.conn.blocking(max_block).await?,
                };
                self.inner
                    .round_trips
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let reply = cmd.query_async(&mut conn).await;
                // A connection that failed in transit may be broken: drop it.
                let broken = reply.as_ref().err().is_some_and(|e| {
                    e.is_io_error()
                        || e.is_connection_dropped()
                        || e.is_timeout()
                        || e.is_connection_refusal()
                });
                if !broken {
                    polls.give_back(max_block, conn);
                }
                reply
            }
        };
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                if e.code() == Some("NOGROUP") {
                    // The stream was deleted, or a failover lost the group:
                    // create it again on the next poll.
                    let mut groups = lock(&self.inner.groups);
                    for (s, _) in streams {
                        groups.remove(s);
                    }
                }
                return Err(self.error(&e));
            }
        };
        let by_stream: HashMap<&str, &str> = streams
            .iter()
            .map(|(s, q)| (s.as_str(), q.as_str()))
            .collect();
        let mut out = Vec::new();
        for (stream, entries) in stream_entries(reply) {
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

    /// Hands tasks delivered to `worker` back: their idle time becomes the
    /// reclaim time, so the next reclaim of any worker claims them.
    async fn hand_back(&self, worker: &str, tasks: &[Task]) {
        let idle = u64::try_from(self.inner.reclaim_after.as_millis()).unwrap_or(u64::MAX);
        for task in tasks {
            let stream = self.inner.keys.tasks_of(&task.workflow_id, &task.queue);
            let handed: Result<Value, RedisError> = redis::cmd("XCLAIM")
                .arg(&stream)
                .arg(GROUP)
                .arg(worker)
                .arg(0)
                .arg(&task.receipt)
                .arg("IDLE")
                .arg(idle)
                // Not a delivery to a worker that died: the next claim
                // counts as the same one, so a run is not taken for
                // poisonous (`max_deliveries`) by hand-backs.
                .arg("RETRYCOUNT")
                .arg(task.deliveries.saturating_sub(1))
                .arg("JUSTID")
                .query_async(&mut self.counted())
                .await;
            match handed {
                Ok(_) => debug!(run = %task.workflow_id, "handed a task no poll took back"),
                Err(e) => debug!(
                    run = %task.workflow_id,
                    error = %self.error(&e),
                    "cannot hand a task back; it is reclaimed after the reclaim time"
                ),
            }
        }
    }

    /// Claims tasks abandoned by dead or stalled workers, at most every
    /// quarter of the reclaim time.
    async fn reclaim(
        &self,
        worker: &str,
        streams: &[Stream],
        max: usize,
    ) -> Result<Vec<Task>, StoreError> {
        {
            let mut last = lock(&self.inner.last_reclaim);
            let due = last.is_none_or(|t| t.elapsed() >= self.inner.reclaim_after / 4);
            if !due {
                return Ok(Vec::new());
            }
            *last = Some(Instant::now());
        }
        let idle = u64::try_from(self.inner.reclaim_after.as_millis()).unwrap_or(u64::MAX);
        let mut out = Vec::new();
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
                .invoke_async(&mut self.counted())
                .await
                .map_err(|e| self.error(&e))?;
            for entry in values(reply) {
                let parts: Vec<String> = values(entry).into_iter().map(text).collect();
                let [receipt, id, deliveries] = parts.as_slice() else {
                    return Err(unexpected("reclaim", Some(&parts.join(" "))));
                };
                let mut task = Task::new(id.clone(), queue.clone(), receipt.clone());
                task.deliveries = deliveries
                    .parse()
                    .map_err(|_| unexpected("reclaim", Some(deliveries)))?;
                out.push(task);
            }
        }
        if !out.is_empty() {
            debug!(count = out.len(), "reclaimed abandoned tasks");
        }
        Ok(out)
    }
}
