//! The store conformance suite (`steadfast::testing::conformance`), run on
//! the memory store and on a real Redis: the same scenarios, the same
//! expectations.

mod support;

use std::sync::Arc;
use std::time::Duration;

use steadfast::testing::conformance::{self, Harness, MemoryHarness};
use steadfast::{RedisStore, Store};
use support::redis_server::RedisServer;

#[tokio::test]
async fn the_memory_store_conforms() {
    let report = conformance::run_all(&MemoryHarness::new(Duration::from_millis(200)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.passed.len() >= 22, "{:?}", report.passed);
}

/// A Redis store on a private server; records are broken with `redis-cli`.
struct RedisHarness<'a> {
    server: &'a RedisServer,
    store: RedisStore,
}

#[async_trait::async_trait]
impl Harness for RedisHarness<'_> {
    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }

    async fn set_field(&self, workflow_id: &str, field: &str, value: Option<&str>) {
        let key = self.store.run_key(workflow_id);
        match value {
            Some(v) => self.server.cli(&["HSET", &key, field, v]),
            None => self.server.cli(&["HDEL", &key, field]),
        };
    }

    async fn delete_record(&self, workflow_id: &str) {
        self.server.cli(&["DEL", &self.store.run_key(workflow_id)]);
    }

    async fn push_raw_signal(&self, workflow_id: &str, raw: &str) {
        self.server
            .cli(&["RPUSH", &self.store.signals_key(workflow_id), raw]);
    }

    fn reclaim_after(&self) -> Duration {
        Duration::from_millis(200)
    }
}

#[tokio::test]
async fn the_redis_store_conforms_with_one_shard_and_with_four() {
    let server = RedisServer::start();
    for shards in [1, 4] {
        let store = RedisStore::builder(server.url())
            .prefix(format!("conformance{shards}:"))
            .shards(shards)
            .reclaim_after(Duration::from_millis(200))
            .check_persistence(false)
            .connect()
            .await
            .expect("connects");
        let harness = RedisHarness {
            server: &server,
            store,
        };
        let report = conformance::run_all(&harness)
            .await
            .unwrap_or_else(|e| panic!("{shards} shard(s): {e}"));
        assert!(report.passed.len() >= 22, "{:?}", report.passed);
    }
}
