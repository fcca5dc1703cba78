//! The gauges a worker's clock reads for its metrics: runs not settled,
//! timers due, and the age of the oldest task not yet delivered in each
//! queue. Per read, for each shard: `ZCARD` of the active index, `ZCOUNT`
//! of the due timers, and for each served queue `XINFO GROUPS` then one
//! `XRANGE ... COUNT 1` (2 + 2 × queues commands, each one round trip).

use std::time::Duration;

use redis::Value;

use super::{GROUP, RedisStore};
use crate::store::{StoreError, StoreGauges};

impl RedisStore {
    pub(super) async fn read_gauges(
        &self,
        queues: &[String],
        now_ms: u64,
    ) -> Result<StoreGauges, StoreError> {
        let keys = &self.inner.keys;
        let mut gauges = StoreGauges::default();
        let mut oldest: Vec<Option<u64>> = vec![None; queues.len()];
        for shard in 0..keys.shards() {
            let active: u64 = redis::cmd("ZCARD")
                .arg(keys.active(shard))
                .query_async(&mut self.counted())
                .await
                .map_err(|e| self.error(&e))?;
            gauges.runs_in_flight += active;
            let due: u64 = redis::cmd("ZCOUNT")
                .arg(keys.timers(shard))
                .arg("-inf")
                .arg(now_ms)
                .query_async(&mut self.counted())
                .await
                .map_err(|e| self.error(&e))?;
            gauges.timers_due += due;
            for (i, queue) in queues.iter().enumerate() {
                if let Some(at) = self.oldest_undelivered(&keys.tasks(shard, queue)).await? {
                    oldest[i] = Some(oldest[i].map_or(at, |o: u64| o.min(at)));
                }
            }
        }
        gauges.queue_lag = queues
            .iter()
            .zip(oldest)
            .map(|(q, at)| {
                let lag = at.map_or(0, |at| now_ms.saturating_sub(at));
                (q.clone(), Duration::from_millis(lag))
            })
            .collect();
        Ok(gauges)
    }

    /// When the oldest entry of `stream` the group has not delivered was
    /// added (the time in its id), milliseconds since the Unix epoch.
    async fn oldest_undelivered(&self, stream: &str) -> Result<Option<u64>, StoreError> {
        let groups: Result<Value, _> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async(&mut self.counted())
            .await;
        let groups = match groups {
            Ok(v) => v,
            // No stream yet: nothing waits.
            Err(e)
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(self.error(&e)),
        };
        let start = match last_delivered(&groups) {
            Some(id) => format!("({id}"),
            None => "-".to_owned(),
        };
        let first: Value = redis::cmd("XRANGE")
            .arg(stream)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.counted())
            .await
            .map_err(|e| self.error(&e))?;
        Ok(first_entry_ms(&first))
    }
}

/// The `last-delivered-id` of our group in an `XINFO GROUPS` reply (an
/// array of flat key/value arrays in RESP2, of maps in RESP3).
fn last_delivered(reply: &Value) -> Option<String> {
    let Value::Array(groups) = reply else {
        return None;
    };
    groups.iter().find_map(|group| {
        let pairs: Vec<(&Value, &Value)> = match group {
            Value::Array(flat) => flat
                .chunks(2)
                .filter_map(|c| Some((c.first()?, c.get(1)?)))
                .collect(),
            Value::Map(map) => map.iter().map(|(k, v)| (k, v)).collect(),
            _ => return None,
        };
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| text(k).as_deref() == Some(name))
                .and_then(|(_, v)| text(v))
        };
        (field("name").as_deref() == Some(GROUP))
            .then(|| field("last-delivered-id"))
            .flatten()
    })
}

/// The time part of the first entry id in an `XRANGE` reply.
fn first_entry_ms(reply: &Value) -> Option<u64> {
    let Value::Array(entries) = reply else {
        return None;
    };
    let Value::Array(entry) = entries.first()? else {
        return None;
    };
    let id = text(entry.first()?)?;
    id.split('-').next()?.parse().ok()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn replies_read_in_both_protocols() {
        let resp2 = Value::Array(vec![Value::Array(vec![
            bulk("name"),
            bulk(GROUP),
            bulk("last-delivered-id"),
            bulk("1700000000000-3"),
        ])]);
        assert_eq!(last_delivered(&resp2).as_deref(), Some("1700000000000-3"));
        let resp3 = Value::Array(vec![Value::Map(vec![
            (bulk("name"), bulk("other")),
            (bulk("last-delivered-id"), bulk("9-0")),
        ])]);
        assert_eq!(last_delivered(&resp3), None);
        let range = Value::Array(vec![Value::Array(vec![
            bulk("1700000000123-0"),
            Value::Array(vec![]),
        ])]);
        assert_eq!(first_entry_ms(&range), Some(1_700_000_000_123));
        assert_eq!(first_entry_ms(&Value::Array(vec![])), None);
    }
}
