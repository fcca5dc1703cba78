//! Cron schedules in Redis: a hash of specs by id and a sorted set of
//! their next firing times, under the `{sched}` hash tag.

use std::collections::HashMap;

use async_trait::async_trait;
use redis::Value;

use super::RedisStore;
use crate::schedule::ScheduleSpec;
use crate::store::{ScheduleStore, StoreError};

fn parse_schedule(raw: &str) -> Result<ScheduleSpec, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
        workflow_id: String::new(),
        reason: format!("a schedule does not decode: {e}"),
    })
}

#[async_trait]
impl ScheduleStore for RedisStore {
    async fn put_schedule(&self, spec: ScheduleSpec) -> Result<(), StoreError> {
        let keys = &self.inner.keys;
        let raw = serde_json::to_string(&spec).map_err(|e| StoreError::Backend(e.to_string()))?;
        let next = spec
            .next_ms
            .filter(|_| !spec.paused)
            .map(|n| n.to_string())
            .unwrap_or_default();
        let _: Value = self
            .inner
            .scripts
            .put_schedule
            .key(keys.schedules())
            .key(keys.schedules_due())
            .arg(&spec.id)
            .arg(raw)
            .arg(next)
            .invoke_async(&mut self.counted())
            .await
            .map_err(|e| self.error(&e))?;
        Ok(())
    }

    async fn list_schedules(&self) -> Result<Vec<ScheduleSpec>, StoreError> {
        let all: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.inner.keys.schedules())
            .query_async(&mut self.counted())
            .await
            .map_err(|e| self.error(&e))?;
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
        let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(keys.schedules_due())
            .arg("-inf")
            .arg(now_ms)
            .arg("LIMIT")
            .arg(0)
            .arg(max)
            .query_async(&mut self.counted())
            .await
            .map_err(|e| self.error(&e))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let raws: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(keys.schedules())
            .arg(&ids)
            .query_async(&mut self.counted())
            .await
            .map_err(|e| self.error(&e))?;
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
            .invoke_async(&mut self.counted())
            .await
            .map_err(|e| self.error(&e))?;
        Ok(done == 1)
    }

    async fn set_schedule_paused(&self, id: &str, paused: bool) -> Result<bool, StoreError> {
        let keys = &self.inner.keys;
        // A compare-and-set on the spec as read: a firing that advanced it
        // meanwhile makes us read and try again, so its progress is kept.
        for _ in 0..20 {
            let raw: Option<String> = redis::cmd("HGET")
                .arg(keys.schedules())
                .arg(id)
                .query_async(&mut self.counted())
                .await
                .map_err(|e| self.error(&e))?;
            let Some(raw) = raw else {
                return Ok(false);
            };
            let mut spec = parse_schedule(&raw)?;
            spec.paused = paused;
            let next = spec
                .next_ms
                .filter(|_| !paused)
                .map(|n| n.to_string())
                .unwrap_or_default();
            let new =
                serde_json::to_string(&spec).map_err(|e| StoreError::Backend(e.to_string()))?;
            let replaced: i64 = self
                .inner
                .scripts
                .replace_schedule
                .key(keys.schedules())
                .key(keys.schedules_due())
                .arg(id)
                .arg(&raw)
                .arg(new)
                .arg(next)
                .invoke_async(&mut self.counted())
                .await
                .map_err(|e| self.error(&e))?;
            if replaced == 1 {
                return Ok(true);
            }
        }
        Err(StoreError::Backend(format!(
            "schedule `{id}` kept changing while it was paused; try again"
        )))
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool, StoreError> {
        let keys = &self.inner.keys;
        let (removed, _): (i64, i64) = redis::pipe()
            .cmd("HDEL")
            .arg(keys.schedules())
            .arg(id)
            .cmd("ZREM")
            .arg(keys.schedules_due())
            .arg(id)
            .query_async(&mut self.counted())
            .await
            .map_err(|e| self.error(&e))?;
        Ok(removed == 1)
    }
}
