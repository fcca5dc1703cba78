//! Leases and tasks: acquiring runs for a batch of tasks (one script per
//! shard), renewing leases, acknowledging tasks, firing timers.

use std::collections::HashMap;
use std::time::Duration;

use redis::Value;

use super::reply::{millis, pairs, text, unexpected, values};
use super::{GROUP, RedisStore};
use crate::core::Interrupt;
use crate::store::codec;
use crate::store::{Acquired, Lease, StoreError, Task, Unreadable};

impl RedisStore {
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
            let reply: Value = invocation
                .invoke_async(&mut self.counted())
                .await
                .map_err(|e| self.error(&e))?;
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
            .invoke_async(&mut self.counted())
            .await
            .map_err(|e| self.error(&e))?;
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
            let n: usize = invocation
                .invoke_async(&mut self.counted())
                .await
                .map_err(|e| self.error(&e))?;
            fired += n;
        }
        Ok(fired)
    }

    pub(super) async fn ack_task(&self, task: &Task) -> Result<(), StoreError> {
        let _: Value = self
            .inner
            .scripts
            .ack
            .key(self.inner.keys.tasks_of(&task.workflow_id, &task.queue))
            .arg(GROUP)
            .arg(&task.receipt)
            .invoke_async(&mut self.counted())
            .await
            .map_err(|e| self.error(&e))?;
        Ok(())
    }
}
