//! Pages of the run indexes by score range, and the workflow catalog.

use std::collections::HashMap;

use super::RedisStore;
use crate::catalog::CatalogEntry;
use crate::store::{IndexedRun, PageQuery, RunList, RunPage, StoreError};

impl RedisStore {
    /// One `ZRANGE .. BYSCORE [REV] LIMIT` per shard, from the cursor's
    /// score (inclusive: runs that share it are dropped up to the cursor's
    /// id, Redis orders them by id), `limit + 1` entries plus as many as
    /// share the cursor's score, so a page costs the same however large
    /// the index.
    pub(super) async fn read_page(&self, query: &PageQuery) -> Result<RunPage, StoreError> {
        if query.limit == 0 {
            return Ok(RunPage::default());
        }
        let keys = &self.inner.keys;
        let rev = query.newest_first();
        // The range in reading order: from the cursor (or the range's
        // start) to the range's end.
        let (low, high) = (
            query.since_ms.map_or("-inf".to_owned(), |s| s.to_string()),
            query.until_ms.map_or("+inf".to_owned(), |u| u.to_string()),
        );
        let (mut start, end) = if rev { (high, low) } else { (low, high) };
        if let Some(c) = &query.after {
            let from = c.score_ms.to_string();
            // Keep the narrower of the cursor and the range's start.
            start = if query.in_range(c.score_ms) {
                from
            } else {
                start
            };
        }
        let mut entries = Vec::new();
        let mut read = 0;
        let mut more = false;
        for shard in 0..keys.shards() {
            let key = match query.list {
                RunList::Active => keys.active(shard),
                RunList::Attention => keys.attention(shard),
                RunList::Finished => keys.done(shard),
            };
            // Entries sharing the cursor's score that come before it are
            // read and dropped: fetch in batches until `limit + 1` remain.
            let mut offset = 0usize;
            let mut kept = 0usize;
            loop {
                // What is still missing of `limit + 1` (one more than a
                // page tells whether another follows).
                let batch = (query.limit + 1).saturating_sub(kept).max(1);
                let mut cmd = redis::cmd("ZRANGE");
                cmd.arg(&key).arg(&start).arg(&end).arg("BYSCORE");
                if rev {
                    cmd.arg("REV");
                }
                cmd.arg("LIMIT").arg(offset).arg(batch).arg("WITHSCORES");
                let page: Vec<(String, f64)> = cmd
                    .query_async(&mut self.counted())
                    .await
                    .map_err(|e| self.error(&e))?;
                let got = page.len();
                read += got;
                offset += got;
                for (id, score) in page {
                    // Scores are whole milliseconds.
                    let score_ms = score.max(0.0) as u64;
                    if query.is_after_cursor(score_ms, &id) {
                        kept += 1;
                        entries.push(IndexedRun::new(id, score_ms));
                    }
                }
                if got < batch {
                    break;
                }
                if kept > query.limit {
                    more = true;
                    break;
                }
            }
        }
        Ok(RunPage::merge(query, entries, read, more))
    }

    pub(super) async fn write_catalog_entry(&self, entry: &CatalogEntry) -> Result<(), StoreError> {
        let json = entry
            .to_json()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let _: i64 = redis::cmd("HSET")
            .arg(self.inner.keys.catalog())
            .arg(&entry.workflow)
            .arg(json)
            .query_async(&mut self.counted())
            .await
            .map_err(|e| self.error(&e))?;
        Ok(())
    }

    pub(super) async fn read_catalog(&self) -> Result<Vec<(String, String)>, StoreError> {
        let all: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.inner.keys.catalog())
            .query_async(&mut self.counted())
            .await
            .map_err(|e| self.error(&e))?;
        let mut all: Vec<(String, String)> = all.into_iter().collect();
        all.sort();
        Ok(all)
    }
}
