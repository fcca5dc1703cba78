//! The scenarios every [`Store`] implementation must pass.
//!
//! A store holds no policy: it applies [`Decision`]s of the core under
//! their [`Guard`], and carries out their effects. These scenarios drive a
//! store directly with decisions, the way workers and clients do, and check
//! what it keeps: creation is idempotent; of two workers racing for a run,
//! one gets it; a stale fence or a stale `seq` is refused and writes
//! nothing; a deleted or corrupt record is handled without losing or
//! inventing anything; signals, timers, stop requests, releases, indexes
//! and history behave as their effects say.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use std::time::Duration;
//! # use steadfast_runtime::testing::conformance::{self, MemoryHarness};
//! # async fn demo() {
//! let report = conformance::run_all(&MemoryHarness::new(Duration::from_millis(200)))
//!     .await
//!     .expect("the memory store conforms");
//! assert!(report.passed.len() > 10);
//! # }
//! ```
//!
//! A new backend implements [`Harness`] (a store, and a way to break a
//! record by hand as an operator or a bug could) and calls [`run_all`] from
//! its own tests.

mod admin;
mod scenarios;
mod signals;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use crate::core::{Decision, Guard, RunRecord, StateSnapshot, create};
use crate::store::{Acquired, Lease, MemoryStore, Store, StoreError, Task};

/// What the suite needs of a store under test.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The store under test. Scenarios use run ids and queues of their own,
    /// so one store may serve them all.
    fn store(&self) -> Arc<dyn Store>;

    /// Sets one field of a run's stored record to `value`, or deletes it
    /// (`None`), as `HSET`/`HDEL` in `redis-cli` would.
    async fn set_field(&self, workflow_id: &str, field: &str, value: Option<&str>);

    /// Deletes a run's record and nothing else, as `DEL` on its hash would.
    async fn delete_record(&self, workflow_id: &str);

    /// Appends a raw entry to a run's signal buffer, as `RPUSH` would.
    async fn push_raw_signal(&self, workflow_id: &str, raw: &str);

    /// How long the store waits before delivering an unacknowledged task
    /// again.
    fn reclaim_after(&self) -> Duration;
}

/// The harness of the memory store.
#[derive(Clone)]
pub struct MemoryHarness {
    store: MemoryStore,
    reclaim_after: Duration,
}

impl MemoryHarness {
    /// A memory store that delivers abandoned tasks again after `reclaim_after`.
    pub fn new(reclaim_after: Duration) -> Self {
        MemoryHarness {
            store: MemoryStore::with_reclaim_after(reclaim_after),
            reclaim_after,
        }
    }
}

#[async_trait]
impl Harness for MemoryHarness {
    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }

    async fn set_field(&self, workflow_id: &str, field: &str, value: Option<&str>) {
        self.store.tamper_field(workflow_id, field, value);
    }

    async fn delete_record(&self, workflow_id: &str) {
        self.store.delete_record_by_hand(workflow_id);
    }

    async fn push_raw_signal(&self, workflow_id: &str, raw: &str) {
        self.store.push_raw_signal(workflow_id, raw);
    }

    fn reclaim_after(&self) -> Duration {
        self.reclaim_after
    }
}

/// Which scenarios passed.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Report {
    /// The names of the scenarios that passed, in the order they ran.
    pub passed: Vec<&'static str>,
}

/// A scenario a store did not pass.
#[derive(Debug, thiserror::Error)]
#[error("store conformance: scenario `{scenario}` failed: {message}")]
#[non_exhaustive]
pub struct ConformanceFailure {
    /// The scenario.
    pub scenario: &'static str,
    /// What went wrong.
    pub message: String,
}

/// A scenario's result: `Err` with what went wrong.
pub(crate) type Outcome = Result<(), String>;

/// Fails a scenario unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}
pub(crate) use ensure;

/// Runs every scenario against the harness's store, stopping at the first
/// failure.
pub async fn run_all(harness: &dyn Harness) -> Result<Report, ConformanceFailure> {
    let ctx = Ctx {
        store: harness.store(),
        harness,
        prefix: format!("conformance-{}", crate::clock::wall_clock_ms()),
    };
    let mut report = Report::default();
    for (name, scenario) in scenarios::ALL.iter().chain(signals::ALL).chain(admin::ALL) {
        scenario(&ctx).await.map_err(|message| ConformanceFailure {
            scenario: name,
            message,
        })?;
        report.passed.push(name);
    }
    Ok(report)
}

/// What a scenario works with.
pub(crate) struct Ctx<'a> {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) harness: &'a dyn Harness,
    prefix: String,
}

/// A scenario: a name and an async function of the context.
pub(crate) type Scenario = (
    &'static str,
    for<'a> fn(
        &'a Ctx<'a>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send + 'a>>,
);

pub(crate) const LEASE: Duration = Duration::from_secs(30);

impl Ctx<'_> {
    /// A run id (and queue) of its own for `name`.
    pub(crate) fn id(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// A run's first record, on queue `id`.
    pub(crate) fn run(&self, id: &str, now_ms: u64) -> RunRecord {
        let start = StateSnapshot::new("start", "fp", json!({"start": {"n": 1}}));
        let mut r = RunRecord::new_run(id, "conformance", id, json!(1), start, now_ms);
        r.signal_bound = Some(3);
        r
    }

    /// Creates a run and takes it: returns the lease and the record read.
    pub(crate) async fn started(&self, id: &str) -> Result<(Lease, RunRecord), String> {
        self.store
            .create(&create(self.run(id, 1_000)))
            .await
            .map_err(|e| format!("create: {e}"))?;
        let task = self.task(id).await?;
        self.take(&task, "worker-a", LEASE).await
    }

    /// Polls the run's own queue for one task.
    pub(crate) async fn task(&self, queue: &str) -> Result<Task, String> {
        self.poll(queue, Duration::from_secs(5))
            .await?
            .ok_or_else(|| format!("no task arrived on queue `{queue}`"))
    }

    /// Polls `queue` once for up to `wait`.
    pub(crate) async fn poll(&self, queue: &str, wait: Duration) -> Result<Option<Task>, String> {
        let tasks = self
            .store
            .poll("poller", &[queue.to_owned()], 1, wait)
            .await
            .map_err(|e| format!("poll: {e}"))?;
        Ok(tasks.into_iter().next())
    }

    /// Acquires the run of `task` for `worker`, expecting to hold it.
    pub(crate) async fn take(
        &self,
        task: &Task,
        worker: &str,
        lease: Duration,
    ) -> Result<(Lease, RunRecord), String> {
        match self.acquire(task, worker, lease).await? {
            Acquired::Held(l, Ok(r)) => Ok((l, *r)),
            other => Err(format!(
                "expected to hold `{}`, got {other:?}",
                task.workflow_id
            )),
        }
    }

    pub(crate) async fn acquire(
        &self,
        task: &Task,
        worker: &str,
        lease: Duration,
    ) -> Result<Acquired, String> {
        self.store
            .acquire_many(std::slice::from_ref(task), worker, lease)
            .await
            .map_err(|e| format!("acquire: {e}"))?
            .pop()
            .ok_or_else(|| "acquire answered nothing".to_owned())
    }

    /// Applies a decision as the lease's holder, on top of `seq`.
    pub(crate) async fn apply_held(
        &self,
        lease: &Lease,
        seq: Option<u64>,
        decision: &Decision,
    ) -> Result<crate::store::Applied, StoreError> {
        self.store
            .apply(&lease.workflow_id, &lease.guard(seq, LEASE), decision)
            .await
    }

    /// Applies a client's decision on top of `seq`.
    pub(crate) async fn apply_current(
        &self,
        id: &str,
        seq: u64,
        decision: &Decision,
    ) -> Result<crate::store::Applied, StoreError> {
        self.store
            .apply(id, &Guard::Current { seq }, decision)
            .await
    }

    /// The run as stored now.
    pub(crate) async fn load(&self, id: &str) -> Result<RunRecord, String> {
        self.store
            .load(id)
            .await
            .map_err(|e| format!("load: {e}"))?
            .ok_or_else(|| format!("run `{id}` is gone"))
    }

    /// The seqs of the run's history.
    pub(crate) async fn seqs(&self, id: &str) -> Result<Vec<u64>, String> {
        Ok(self
            .store
            .history(id)
            .await
            .map_err(|e| format!("history: {e}"))?
            .iter()
            .map(|h| h.seq)
            .collect())
    }
}
