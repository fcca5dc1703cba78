//! Reading runs: a record with its signals, its history, waiting for it to
//! settle; and the administration side (indexes, deletion, raw fields).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use redis::Value;

use super::RedisStore;
use super::keys::Keys;
use super::reply::entries;
use crate::catalog::CatalogEntry;
use crate::core::{HistoryEntry, RunRecord};
use crate::store::codec;
use crate::store::{AdminStore, PageQuery, RunList, RunPage, StoreError};

impl RedisStore {
    pub(super) async fn read_run(
        &self,
        workflow_id: &str,
    ) -> Result<Option<RunRecord>, StoreError> {
        let keys = &self.inner.keys;
        let read = || async {
            redis::pipe()
                .cmd("HGETALL")
                .arg(keys.run(workflow_id))
                .cmd("LRANGE")
                .arg(keys.signals(workflow_id))
                .arg(0)
                .arg(-1)
                .query_async::<(HashMap<String, String>, Vec<String>)>(&mut self.counted())
                .await
                .map_err(|e| self.error(&e))
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
        let mut record = codec::parse_for_display(&fields).map_err(corrupt)?;
        // An entry that does not read is shown as such: it is the worker
        // that parks the run on it, not a reader.
        record.signals = codec::parse_signals_for_display(&signals);
        Ok(Some(record))
    }

    pub(super) async fn read_history(
        &self,
        workflow_id: &str,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let reply: Value = redis::cmd("XRANGE")
            .arg(self.inner.keys.history(workflow_id))
            .arg("-")
            .arg("+")
            .query_async(&mut self.counted())
            .await
            .map_err(|e| self.error(&e))?;
        entries(reply)
            .into_iter()
            .map(|(_, fields)| {
                codec::parse_history(&fields).map_err(|reason| StoreError::Corrupt {
                    workflow_id: workflow_id.to_owned(),
                    reason,
                })
            })
            .collect()
    }

    pub(super) async fn wait_for_settle(
        &self,
        workflow_id: &str,
        timeout: Duration,
    ) -> Result<Option<RunRecord>, StoreError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let waiters = &self.inner.waiters;
        waiters
            .ensure_listening(&self.inner.conn, &self.inner.keys.settled_pattern())
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
                Some(Some(r)) => return Ok(Some(r)),
                Some(None) => look = true,
                None => {}
            }
            if look {
                // A running record that does not read is not settled: a
                // worker will park it, and its park wakes us.
                match self.read_run(workflow_id).await {
                    Ok(Some(r)) if !r.status().is_settled() => {}
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
                _ = tokio::time::sleep_until(deadline) => return self.read_run(workflow_id).await,
            }
        }
    }
}

#[async_trait]
impl AdminStore for RedisStore {
    async fn list_runs(&self, list: RunList, limit: usize) -> Result<Vec<String>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let keys = &self.inner.keys;
        let stop = i64::try_from(limit).unwrap_or(i64::MAX).saturating_sub(1);
        let mut scored: Vec<(String, f64)> = Vec::new();
        for shard in 0..keys.shards() {
            let (key, newest_first) = match list {
                RunList::Active => (keys.active(shard), false),
                RunList::Attention => (keys.attention(shard), false),
                RunList::Finished => (keys.done(shard), true),
            };
            let page: Vec<(String, f64)> =
                redis::cmd(if newest_first { "ZREVRANGE" } else { "ZRANGE" })
                    .arg(key)
                    .arg(0)
                    .arg(stop)
                    .arg("WITHSCORES")
                    .query_async(&mut self.counted())
                    .await
                    .map_err(|e| self.error(&e))?;
            scored.extend(page);
        }
        if list == RunList::Finished {
            scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        } else {
            scored.sort_by(|a, b| a.1.total_cmp(&b.1));
        }
        Ok(scored.into_iter().take(limit).map(|(id, _)| id).collect())
    }

    async fn count_runs(&self, list: RunList) -> Result<u64, StoreError> {
        let keys = &self.inner.keys;
        let mut total = 0;
        for shard in 0..keys.shards() {
            let key = match list {
                RunList::Active => keys.active(shard),
                RunList::Attention => keys.attention(shard),
                RunList::Finished => keys.done(shard),
            };
            let n: u64 = redis::cmd("ZCARD")
                .arg(key)
                .query_async(&mut self.counted())
                .await
                .map_err(|e| self.error(&e))?;
            total += n;
        }
        Ok(total)
    }

    async fn page_runs(&self, query: &PageQuery) -> Result<RunPage, StoreError> {
        self.read_page(query).await
    }

    async fn register_workflow(&self, entry: &CatalogEntry) -> Result<(), StoreError> {
        self.write_catalog_entry(entry).await
    }

    async fn catalog(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read_catalog().await
    }

    async fn delete_run(&self, workflow_id: &str) -> Result<bool, StoreError> {
        let keys: &Keys = &self.inner.keys;
        let shard = keys.shard_of(workflow_id);
        let escaped: String = workflow_id
            .chars()
            .flat_map(|c| match c {
                '*' | '?' | '[' | ']' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let removed: i64 = self
            .inner
            .scripts
            .delete_run
            .key(keys.run(workflow_id))
            .key(keys.history(workflow_id))
            .key(keys.signals(workflow_id))
            .key(keys.timers(shard))
            .key(keys.active(shard))
            .key(keys.done(shard))
            .key(keys.attention(shard))
            .arg(workflow_id)
            .arg(format!("*\n{escaped}"))
            .invoke_async(&mut self.counted())
            .await
            .map_err(|e| self.error(&e))?;
        Ok(removed > 0)
    }

    async fn raw_record(
        &self,
        workflow_id: &str,
    ) -> Result<Option<Vec<(String, String)>>, StoreError> {
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.inner.keys.run(workflow_id))
            .query_async(&mut self.counted())
            .await
            .map_err(|e| self.error(&e))?;
        if fields.is_empty() {
            return Ok(None);
        }
        let mut fields: Vec<(String, String)> = fields.into_iter().collect();
        fields.sort();
        Ok(Some(fields))
    }
}
