//! Crash-testing workflows: interrupt a run at every transition and check
//! that it ends exactly as an uninterrupted run does.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use std::time::Duration;
//! # use steadfast_runtime::{MemoryStore, Store};
//! # use steadfast_runtime::testing::InterruptEverywhere;
//! # async fn demo() {
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::with_reclaim_after(Duration::from_millis(200)));
//! // let report = InterruptEverywhere::<order>::new(store, "order-42".to_string())
//! //     .configure(|w| w.register::<order>().resource(FakePayments::default()))
//! //     .run()
//! //     .await
//! //     .expect("every interrupted run ends like the uninterrupted one");
//! # }
//! ```

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{Client, StartOptions};
use crate::core::{HistoryEntry, RunRecord, Status};
use crate::crash::{CrashPlan, CrashPoint};
use crate::store::Store;
use crate::worker::{Worker, WorkerBuilder, WorkerError};
use crate::workflow::Workflow;

/// What a run ended with, as compared between runs: status, output, error,
/// reason, and the committed transitions without their timestamps.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// The final status.
    pub status: Status,
    /// The output JSON, if it completed.
    pub output: Option<serde_json::Value>,
    /// The error JSON, if it failed.
    pub error: Option<serde_json::Value>,
    /// Why it was parked or its compensation failed.
    pub reason: Option<String>,
    /// `(seq, step, status, event)` of every committed transition.
    pub transitions: Vec<(u64, String, Status, String)>,
}

impl RunOutcome {
    fn of(record: &RunRecord, history: &[HistoryEntry]) -> Self {
        RunOutcome {
            status: record.status(),
            output: record.output().cloned(),
            error: record.error().map(|(e, _)| e.clone()),
            reason: record.reason(),
            transitions: history
                .iter()
                .map(|h| (h.seq, h.step.clone(), h.status, h.event.clone()))
                .collect(),
        }
    }
}

/// What an interrupt-everywhere test did.
#[derive(Debug, Clone)]
pub struct InterruptReport {
    /// Committed transitions of the uninterrupted run.
    pub transitions: u64,
    /// Interrupted runs checked (two per transition: before and after its
    /// checkpoint is written).
    pub scenarios: usize,
    /// The uninterrupted run's outcome, which every interrupted run matched.
    pub baseline: RunOutcome,
}

/// Why an interrupt-everywhere test failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InterruptFailure {
    /// The setup did not work (a worker would not build, the store failed,
    /// a run did not settle in time).
    #[error("interrupt test setup: {0}")]
    Setup(String),
    /// An interrupted run ended differently from the uninterrupted one.
    #[error(
        "interrupted at seq {seq} ({point:?}): the run ended differently\n  expected: {expected:?}\n  got:      {got:?}"
    )]
    Diverged {
        /// The transition at which the worker crashed.
        seq: u64,
        /// Before or after its commit.
        point: CrashPoint,
        /// The uninterrupted outcome.
        expected: Box<RunOutcome>,
        /// The interrupted outcome.
        got: Box<RunOutcome>,
    },
}

/// Runs workflow `W` once uninterrupted, then once per transition and crash
/// point with a worker that crashes there (before the transition's
/// checkpoint is written, and after), each time finishing the run on a
/// fresh worker that knows nothing but the store; every interrupted run
/// must end with the same status, result and committed transitions.
///
/// Activities must be deterministic for the comparison to hold; they run
/// again after a crash that lands before their checkpoint, with the same
/// idempotency key. Works with any [`Store`]; a store shared with other
/// tests is fine (runs get ids and queues of their own).
pub struct InterruptEverywhere<W: Workflow> {
    store: Arc<dyn Store>,
    input: W::Input,
    configure: Arc<dyn Fn(WorkerBuilder) -> WorkerBuilder + Send + Sync>,
    lease: Duration,
    settle_timeout: Duration,
    prefix: String,
    _workflow: PhantomData<fn() -> W>,
}

impl<W: Workflow> InterruptEverywhere<W>
where
    W::Input: Clone,
{
    /// A test of `W` started with `input`, on `store`.
    pub fn new(store: Arc<dyn Store>, input: W::Input) -> Self {
        InterruptEverywhere {
            store,
            input,
            configure: Arc::new(|b| b.register::<W>()),
            lease: Duration::from_millis(200),
            settle_timeout: Duration::from_secs(60),
            prefix: format!("interrupt-{}-{}", W::NAME, crate::clock::wall_clock_ms()),
            _workflow: PhantomData,
        }
    }

    /// How every worker is set up (register `W`, add resources).
    pub fn configure(
        mut self,
        configure: impl Fn(WorkerBuilder) -> WorkerBuilder + Send + Sync + 'static,
    ) -> Self {
        self.configure = Arc::new(configure);
        self
    }

    /// The workers' lease: a crashed run resumes after about this long
    /// (default 200 ms; the store must deliver abandoned tasks again as fast).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Run ids start with this (default: `interrupt-<workflow>-<time>`).
    pub fn id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn worker(&self, queue: &str, name: &str) -> WorkerBuilder {
        (self.configure)(Worker::builder_shared(Arc::clone(&self.store)))
            .queue(queue)
            .lease(self.lease)
            .poll_wait(Duration::from_millis(50))
            .shutdown_grace(Duration::from_millis(100))
            .worker_id(name)
    }

    async fn outcome(&self, client: &Client, id: &str) -> Result<RunOutcome, InterruptFailure> {
        let env = self
            .store
            .wait_settled(id, self.settle_timeout)
            .await
            .map_err(|e| InterruptFailure::Setup(e.to_string()))?
            .ok_or_else(|| InterruptFailure::Setup(format!("run `{id}` vanished")))?;
        if !env.status().is_settled() {
            return Err(InterruptFailure::Setup(format!(
                "run `{id}` did not settle within {:?} (status {}, step `{}`)",
                self.settle_timeout,
                env.status(),
                env.step()
            )));
        }
        let history = client
            .history(id)
            .await
            .map_err(|e| InterruptFailure::Setup(e.to_string()))?;
        Ok(RunOutcome::of(&env, &history))
    }

    async fn start(&self, client: &Client, id: &str) -> Result<(), InterruptFailure> {
        client
            .start_with::<W>(
                StartOptions::new(id).queue(id).reject_duplicate(),
                self.input.clone(),
            )
            .await
            .map(|_| ())
            .map_err(|e| InterruptFailure::Setup(e.to_string()))
    }

    /// Runs the test.
    pub async fn run(self) -> Result<InterruptReport, InterruptFailure> {
        let client = Client::new_shared(Arc::clone(&self.store));
        let setup = |e: WorkerError| InterruptFailure::Setup(e.to_string());

        let base_id = format!("{}-baseline", self.prefix);
        let base_worker = self
            .worker(&base_id, &base_id)
            .build()
            .map_err(setup)?
            .spawn();
        self.start(&client, &base_id).await?;
        let baseline = self.outcome(&client, &base_id).await?;
        base_worker.shutdown().await.map_err(setup)?;
        let transitions = baseline.transitions.last().map(|t| t.0).unwrap_or(0);

        // Crash one worker per scenario, each on a queue of its own.
        let mut scenarios = Vec::new();
        let mut crashed = Vec::new();
        for seq in 1..=transitions {
            for point in [CrashPoint::BeforeCommit, CrashPoint::AfterCommit] {
                let id = format!("{}-{seq}-{}", self.prefix, point_name(point));
                let worker = self
                    .worker(&id, &format!("{id}-doomed"))
                    .crash_plan(CrashAt {
                        id: id.clone(),
                        seq,
                        point,
                    })
                    .build()
                    .map_err(setup)?
                    .spawn();
                self.start(&client, &id).await?;
                crashed.push(worker);
                scenarios.push((id, seq, point));
            }
        }
        for (worker, (id, _, _)) in crashed.into_iter().zip(&scenarios) {
            match tokio::time::timeout(self.settle_timeout, worker.join()).await {
                Ok(Err(WorkerError::Crashed)) => {}
                Ok(other) => {
                    return Err(InterruptFailure::Setup(format!(
                        "the worker for `{id}` should have crashed, but ended with {other:?}"
                    )));
                }
                Err(_) => {
                    return Err(InterruptFailure::Setup(format!(
                        "the worker for `{id}` did not reach its crash point"
                    )));
                }
            }
        }

        // A fresh worker, knowing only the store, finishes every run.
        let mut recovery = self.worker(&base_id, &format!("{}-recovery", self.prefix));
        for (id, _, _) in &scenarios {
            recovery = recovery.queue(id.clone());
        }
        let recovery = recovery.build().map_err(setup)?.spawn();
        let mut result = Ok(());
        for (id, seq, point) in &scenarios {
            let got = self.outcome(&client, id).await?;
            if got != baseline {
                result = Err(InterruptFailure::Diverged {
                    seq: *seq,
                    point: *point,
                    expected: Box::new(baseline.clone()),
                    got: Box::new(got),
                });
                break;
            }
        }
        recovery.shutdown().await.map_err(setup)?;
        result?;
        Ok(InterruptReport {
            transitions,
            scenarios: scenarios.len(),
            baseline,
        })
    }
}

fn point_name(point: CrashPoint) -> &'static str {
    match point {
        CrashPoint::BeforeCommit => "before",
        CrashPoint::AfterCommit => "after",
    }
}

/// Crash at one transition of one run.
struct CrashAt {
    id: String,
    seq: u64,
    point: CrashPoint,
}

impl CrashPlan for CrashAt {
    fn should_crash(&self, workflow_id: &str, seq: u64, point: CrashPoint) -> bool {
        workflow_id == self.id && seq == self.seq && point == self.point
    }
}
