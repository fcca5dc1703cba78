//! Shared test fixtures: recording activities and workflows that exercise
//! every control-flow form the workflow compiler supports.
#![allow(dead_code, missing_docs, unreachable_pub)]

pub mod lifecycle;
pub mod lifecycle_scenarios;
pub mod redis_acl;
pub mod redis_cluster;
pub mod redis_proc;
pub mod redis_sentinel;
pub mod redis_server;
pub mod redis_tls;
pub mod rig;
pub mod workflows;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use steadfast::{Client, MemoryStore, RedisStore, Store, Worker, WorkerBuilder};

/// What activities did, in order (a resource shared by the activities).
#[derive(Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    pub fn record(&self, line: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.into());
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.lines()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }
}

/// A memory store, a worker serving everything in `support::workflows`, and
/// a client; the worker runs in the background until `stop`.
pub struct Harness {
    pub store: MemoryStore,
    pub client: Client,
    pub journal: Journal,
    worker: Option<steadfast::WorkerHandle>,
}

impl Harness {
    pub fn start() -> Self {
        Self::start_with(|b| b)
    }

    pub fn start_with(configure: impl FnOnce(WorkerBuilder) -> WorkerBuilder) -> Self {
        let store = MemoryStore::with_reclaim_after(Duration::from_millis(300));
        let journal = Journal::default();
        let builder = workflows::register(Worker::builder(store.clone()))
            .resource(journal.clone())
            .lease(Duration::from_millis(300))
            .poll_wait(Duration::from_millis(50));
        let worker = configure(builder).build().expect("worker builds").spawn();
        Harness {
            client: Client::new(store.clone()),
            store,
            journal,
            worker: Some(worker),
        }
    }

    pub async fn stop(mut self) {
        if let Some(w) = self.worker.take() {
            w.shutdown().await.expect("worker stops cleanly");
        }
    }

    pub fn shared_store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }
}

/// A Redis store on a private server, with the test's defaults: short
/// reclaim time, so crashed runs resume fast.
pub async fn redis_store(server: &redis_server::RedisServer) -> RedisStore {
    RedisStore::builder(server.url())
        .reclaim_after(Duration::from_millis(300))
        .connect()
        .await
        .expect("connects to the test Redis")
}

/// A worker and client on a Redis store.
pub struct RedisHarness {
    pub store: RedisStore,
    pub client: Client,
    pub journal: Journal,
    worker: Option<steadfast::WorkerHandle>,
}

impl RedisHarness {
    pub async fn start(server: &redis_server::RedisServer) -> Self {
        let store = redis_store(server).await;
        let journal = Journal::default();
        let worker = workflows::register(Worker::builder(store.clone()))
            .resource(journal.clone())
            .lease(Duration::from_millis(300))
            .poll_wait(Duration::from_millis(100))
            .build()
            .expect("worker builds")
            .spawn();
        RedisHarness {
            client: Client::new(store.clone()),
            store,
            journal,
            worker: Some(worker),
        }
    }

    pub async fn stop(mut self) {
        if let Some(w) = self.worker.take() {
            w.shutdown().await.expect("worker stops cleanly");
        }
    }
}
