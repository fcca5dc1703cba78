//! Task queues and leases: polling streams through the consumer group,
//! reclaiming abandoned tasks, acquiring runs, renewing leases, firing
//! timers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError, Value};
use tracing::{debug, warn};

use super::reply::{millis, pairs, store_error, stream_entries, text, unexpected, values};
use super::{GROUP, RedisStore};
use crate::core::Interrupt;
use crate::store::codec;
use crate::store::{Acquired, Lease, StoreError, Task, Unreadable};

impl RedisStore {
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

    pub(super) async fn poll_tasks(
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

    /// Acquires a batch: one script call per shard.
    pub(super) async fn acquire_tasks(
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
                        // A fence that does not read would fence nothing:
                        // refuse the answer rather than guess one.
                        let raw = parts.next().map(text).unwrap_or_default();
                        let fence: u64 = raw
                            .parse()
                            .map_err(|_| unexpected("acquire (fence)", Some(&raw)))?;
                        let (Some(fields), Some(signals)) = (parts.next(), parts.next()) else {
                            return Err(unexpected(
                                "acquire",
                                Some("a held run without its fields"),
                            ));
                        };
                        let fields = pairs(fields);
                        let signals: Vec<String> = values(signals).into_iter().map(text).collect();
                        let lease = Lease::new(
                            task.workflow_id.clone(),
                            worker.to_owned(),
                            fence,
                            task.clone(),
                        );
                        let seq = fields.get("seq").and_then(|s| s.parse().ok());
                        let record = codec::parse(&fields)
                            .and_then(|mut r| {
                                r.signals = codec::parse_signals(&signals)?;
                                Ok(Box::new(r))
                            })
                            .map_err(|reason| Unreadable::new(reason, seq));
                        Acquired::Held(lease, record)
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

    pub(super) async fn renew_lease(
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
        if raw.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&raw)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                workflow_id: id.clone(),
                reason: format!("field `interrupt` does not decode: {e}"),
            })
    }

    pub(super) async fn fire_due_timers(
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

    pub(super) async fn ack_task(&self, task: &Task) -> Result<(), StoreError> {
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
}
