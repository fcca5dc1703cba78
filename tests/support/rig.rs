//! A test rig for lifecycle scenarios: a store (in memory, or Redis on a
//! private server), a manual clock shared by the client and every worker,
//! and workers started and stopped at will.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use steadfast::{
    Client, ManualClock, MemoryStore, RedisStore, RunRecord, Store, Worker, WorkerBuilder,
    WorkerHandle,
};

use super::Journal;
use super::redis_server::{Durability, RedisServer};

pub struct Rig {
    pub store: Arc<dyn Store>,
    pub clock: ManualClock,
    pub client: Client,
    pub journal: Journal,
    workers: Vec<WorkerHandle>,
    redis: Option<(RedisServer, RedisStore)>,
    memory: Option<MemoryStore>,
}

impl Rig {
    /// A rig on the in-memory store.
    pub fn memory() -> Self {
        let store = MemoryStore::with_reclaim_after(Duration::from_millis(300));
        let mut rig = Self::on(Arc::new(store.clone()), None);
        rig.memory = Some(store);
        rig
    }

    /// A rig on a fresh private redis-server.
    pub async fn redis() -> Self {
        Self::redis_with(Durability::None).await
    }

    /// A rig on a fresh private redis-server keeping data as `durability`
    /// says.
    pub async fn redis_with(durability: Durability) -> Self {
        let server = RedisServer::start_with(durability);
        let store = RedisStore::builder(server.url())
            .reclaim_after(Duration::from_millis(300))
            .check_persistence(false)
            .connect()
            .await
            .expect("connects to the test Redis");
        Self::on(Arc::new(store.clone()), Some((server, store)))
    }

    /// A rig on a Redis store of any topology (a cluster, TLS) that the
    /// caller owns the servers of.
    pub fn on_redis_store(store: RedisStore) -> Self {
        Self::on(Arc::new(store), None)
    }

    fn on(store: Arc<dyn Store>, redis: Option<(RedisServer, RedisStore)>) -> Self {
        let clock = ManualClock::new();
        Rig {
            client: Client::new_shared(Arc::clone(&store)).with_clock(clock.clone()),
            store,
            clock,
            journal: Journal::default(),
            workers: Vec::new(),
            redis,
            memory: None,
        }
    }

    /// Sets one field of a run's stored record by hand (`HSET` on Redis),
    /// as an operator or a bug could.
    pub fn tamper_field(&self, id: &str, field: &str, value: &str) {
        if let Some((server, store)) = &self.redis {
            server.cli(&["HSET", &store.run_key(id), field, value]);
        }
        if let Some(store) = &self.memory {
            store.tamper_field(id, field, Some(value));
        }
    }

    /// The Redis server and store, on a Redis rig.
    pub fn redis_parts(&self) -> Option<(&RedisServer, &RedisStore)> {
        self.redis.as_ref().map(|(s, r)| (s, r))
    }

    /// Restarts the Redis server (on a Redis rig).
    pub fn restart_redis(&mut self) {
        if let Some((server, _)) = self.redis.as_mut() {
            server.restart();
        }
    }

    /// A worker builder with the rig's store, clock, journal and fast test
    /// timings, serving every fixture workflow.
    pub fn builder(&self) -> WorkerBuilder {
        let b = Worker::builder_shared(Arc::clone(&self.store))
            .resource(self.journal.clone())
            .resource(super::lifecycle::WorkerTag("main".to_owned()))
            .clock(self.clock.clone())
            .lease(Duration::from_millis(300))
            .poll_wait(Duration::from_millis(50))
            .timer_poll(Duration::from_millis(50));
        super::lifecycle::register(super::workflows::register(b))
    }

    /// Starts a worker serving every fixture workflow.
    pub fn spawn_worker(&mut self) {
        let b = self.builder();
        self.spawn(b);
    }

    /// Starts a worker built by `b`.
    pub fn spawn(&mut self, b: WorkerBuilder) {
        self.workers.push(b.build().expect("worker builds").spawn());
    }

    /// Stops every worker cleanly.
    pub async fn stop_workers(&mut self) {
        for w in self.workers.drain(..) {
            w.shutdown().await.expect("worker stops cleanly");
        }
    }

    /// The run's checkpoint.
    pub async fn describe(&self, id: &str) -> RunRecord {
        self.client
            .describe(id)
            .await
            .expect("describe works")
            .unwrap_or_else(|| panic!("run {id} exists"))
    }

    /// Waits (up to 10 s) until the run's checkpoint satisfies `pred`.
    pub async fn wait_for(
        &self,
        id: &str,
        what: &str,
        pred: impl Fn(&RunRecord) -> bool,
    ) -> RunRecord {
        let started = Instant::now();
        loop {
            if let Some(env) = self.client.describe(id).await.expect("describe works") {
                if pred(&env) {
                    return env;
                }
                if started.elapsed() > Duration::from_secs(10) {
                    panic!("run {id} never got to {what}: {env:#?}");
                }
            } else if started.elapsed() > Duration::from_secs(10) {
                panic!("run {id} never existed (waiting for {what})");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the run waits (released) at state `step`.
    pub async fn wait_at(&self, id: &str, step: &str) -> RunRecord {
        self.wait_for(id, &format!("state {step}"), |e| e.step() == step)
            .await
    }

    pub async fn stop(mut self) {
        self.stop_workers().await;
    }
}

/// Polls `f` until it returns `Some`, for at most 10 s.
pub async fn eventually<T, F, Fut>(what: &str, f: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
