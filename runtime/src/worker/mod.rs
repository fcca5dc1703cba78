//! Workers: take tasks from task queues and drive runs, in-process on tokio.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::activity::Activity;
use crate::clock::{Clock, SystemClock};
use crate::core::Limits;
use crate::crash::CrashPlan;
use crate::engine::{Engine, Halt};
use crate::registry::Registry;
use crate::resources::Resources;
use crate::store::fatal::{Fatal, Watched};
use crate::store::{Acquired, Store, StoreError, Task};
use crate::telemetry::{Propagation, TracePropagator};
use crate::workflow::Workflow;

mod background;

use background::{AbortOnDrop, clockwork, register_catalog};

/// Why a worker could not be built or stopped running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The worker's configuration is unusable.
    #[error("worker misconfigured: {0}")]
    Config(String),
    /// A [`CrashPlan`] stopped the worker (crash tests only).
    #[error("the worker was stopped by its crash plan")]
    Crashed,
    /// The store refused the worker for a reason no retry fixes: its
    /// credentials, a permission its user lacks, or servers that are not
    /// what the configuration says ([`StoreError::is_fatal`]). The message
    /// says what to fix; the runs it was driving resume from their last
    /// checkpoints once it is fixed.
    #[error("the worker stopped: {0}")]
    Store(#[source] StoreError),
}

/// Builds a [`Worker`].
///
/// ```no_run
/// # use steadfast_runtime::{MemoryStore, Worker};
/// # async fn demo() -> Result<(), steadfast_runtime::WorkerError> {
/// let worker = Worker::builder(MemoryStore::new())
///     // .register::<order>()          // a #[workflow] and all its activities
///     .queue("orders")
///     .concurrency(64)
///     .resource(String::from("a shared HTTP client, say"))
///     .build()?;
/// worker.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(()) }
/// ```
pub struct WorkerBuilder {
    store: Arc<dyn Store>,
    registry: Registry,
    resources: Resources,
    queues: Vec<String>,
    concurrency: usize,
    lease_for: Duration,
    max_deliveries: u32,
    poll_wait: Duration,
    shutdown_grace: Duration,
    timer_poll: Duration,
    clock: Arc<dyn Clock>,
    worker_id: Option<String>,
    crash_plan: Option<Arc<dyn CrashPlan>>,
    limits: Limits,
    propagation: Propagation,
    gauges_every: Option<Duration>,
}

impl WorkerBuilder {
    /// Registers workflow `W`, every activity it calls and their
    /// compensations; the worker serves `W`'s task queue unless
    /// [`queue`](Self::queue) says otherwise.
    pub fn register<W: Workflow>(mut self) -> Self {
        self.registry.workflow::<W>();
        self
    }

    /// Registers one activity (and its compensation) on its own.
    pub fn activity<A: Activity>(mut self) -> Self {
        self.registry.activity::<A>();
        self
    }

    /// Adds a shared value that activities read with
    /// [`ActivityContext::resource`](crate::ActivityContext::resource).
    pub fn resource<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.resources.insert(value);
        self
    }

    /// Serves task queue `name` (call again for more). Without any call the
    /// worker serves the queues of its registered workflows.
    pub fn queue(mut self, name: impl Into<String>) -> Self {
        self.queues.push(name.into());
        self
    }

    /// How many runs the worker drives at once (default 64).
    pub fn concurrency(mut self, runs: usize) -> Self {
        self.concurrency = runs;
        self
    }

    /// How long a lease lasts without renewal (default 30 s). A dead worker's
    /// runs are picked up by others after about this long; a live worker
    /// renews its leases every third of it.
    pub fn lease(mut self, lease_for: Duration) -> Self {
        self.lease_for = lease_for;
        self
    }

    /// How many times a run's task may be delivered before the run is parked
    /// as poisonous (default 20): each delivery past the first means the
    /// worker driving it died.
    pub fn max_deliveries(mut self, deliveries: u32) -> Self {
        self.max_deliveries = deliveries.max(1);
        self
    }

    /// How often the worker looks for due timers (durable sleeps, signal
    /// timeouts, execution timeouts) and due schedules (default 200 ms;
    /// schedules at most once a second).
    pub fn timer_poll(mut self, every: Duration) -> Self {
        self.timer_poll = every.max(Duration::from_millis(10));
        self
    }

    /// How long one poll of the task queues waits for work (default 1 s).
    pub fn poll_wait(mut self, wait: Duration) -> Self {
        self.poll_wait = wait;
        self
    }

    /// How long a shutdown waits for runs in progress before dropping them
    /// (they resume elsewhere from their last checkpoint; default 10 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// The clock workflows see (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The worker's name in leases and logs (default: host-pid-random).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = Some(id.into());
        self
    }

    /// How large a run's data may grow (default [`Limits::DEFAULT`]: 1 MiB
    /// of state, 256 KiB of activity input, 1 MiB of result, ...). A
    /// transition whose data is over a limit is not written: the run is
    /// parked with its last good checkpoint and a reason naming the size
    /// and the limit; raise the limit and resume it.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Continues the trace context stored with each run (captured by a
    /// client given a propagator too:
    /// [`Client::with_trace_propagator`](crate::Client::with_trace_propagator))
    /// in the spans of its drives; a child run started here stores the
    /// context of the parent's drive. Without one, each drive's spans
    /// start on their own.
    pub fn trace_propagator(mut self, propagator: impl TracePropagator) -> Self {
        self.propagation = Propagation::new(Arc::new(propagator));
        self
    }

    /// How often the worker reads the store-wide gauges (runs in flight,
    /// timers due, queue lag: `docs/observability.md`) for its metrics;
    /// `None` never (default: every 10 s). Each read costs the store a few
    /// commands (on Redis, per shard, 2 + 2 × the queues served).
    pub fn store_gauges_every(mut self, every: Option<Duration>) -> Self {
        self.gauges_every = every.map(|e| e.max(Duration::from_millis(10)));
        self
    }

    /// Makes the worker crash where `plan` says (crash tests).
    pub fn crash_plan(mut self, plan: impl CrashPlan) -> Self {
        self.crash_plan = Some(Arc::new(plan));
        self
    }

    /// Checks the configuration and builds the worker.
    pub fn build(self) -> Result<Worker, WorkerError> {
        if let Some(conflict) = self.registry.conflicts().first() {
            return Err(WorkerError::Config(conflict.clone()));
        }
        if self.concurrency == 0 {
            return Err(WorkerError::Config("concurrency must be at least 1".into()));
        }
        if self.lease_for < Duration::from_millis(30) {
            return Err(WorkerError::Config(
                "the lease must last at least 30 ms".into(),
            ));
        }
        let mut queues = self.queues;
        if queues.is_empty() {
            for name in self.registry.workflow_names() {
                if let Some(w) = self.registry.find_workflow(name) {
                    let q = w.info().queue.to_owned();
                    if !queues.contains(&q) {
                        queues.push(q);
                    }
                }
            }
        }
        if queues.is_empty() {
            return Err(WorkerError::Config(
                "the worker serves no task queue: register a workflow or name a queue".into(),
            ));
        }
        let worker_id = self.worker_id.unwrap_or_else(default_worker_id);
        let fatal = Arc::new(Fatal::default());
        Ok(Worker {
            fatal: Arc::clone(&fatal),
            engine: Arc::new(Engine {
                registry: Arc::new(self.registry),
                store: Arc::new(Watched::new(self.store, fatal)),
                resources: Arc::new(self.resources),
                clock: self.clock,
                worker_id,
                queues: queues.clone(),
                lease_for: self.lease_for,
                max_deliveries: self.max_deliveries,
                crash_plan: self.crash_plan,
                halt: Halt::default(),
                limits: self.limits,
                propagation: self.propagation,
            }),
            queues,
            concurrency: self.concurrency,
            poll_wait: self.poll_wait,
            shutdown_grace: self.shutdown_grace,
            timer_poll: self.timer_poll,
            gauges_every: self.gauges_every,
        })
    }
}

/// Takes tasks from its task queues and drives the runs they name, many at
/// once, in the current tokio runtime.
///
/// ## Behavior
/// - A run is driven under a lease, from checkpoint to checkpoint, until it
///   settles or waits for something outside the worker; leases are renewed
///   while a long activity runs.
/// - When the store is unreachable the worker keeps retrying with backoff;
///   it does not stop.
/// - When the store refuses it for good (refused credentials, a missing
///   permission, a misconfigured URL: [`StoreError::is_fatal`]), the worker
///   stops at once, dropping the runs it drives (they resume from their
///   last checkpoints elsewhere), and `run`/`run_until` return
///   [`WorkerError::Store`].
/// - On shutdown it stops taking tasks and gives runs in progress
///   [`shutdown_grace`](WorkerBuilder::shutdown_grace) to reach a checkpoint;
///   whatever is still running then is dropped and resumes elsewhere from its
///   last checkpoint once its lease expires.
pub struct Worker {
    engine: Arc<Engine>,
    /// The first error of the store that no retry fixes.
    fatal: Arc<Fatal>,
    queues: Vec<String>,
    concurrency: usize,
    poll_wait: Duration,
    shutdown_grace: Duration,
    timer_poll: Duration,
    gauges_every: Option<Duration>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.engine.worker_id)
            .field("queues", &self.queues)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

impl Worker {
    /// Starts building a worker on `store`.
    pub fn builder(store: impl Store) -> WorkerBuilder {
        Self::builder_shared(Arc::new(store))
    }

    /// Starts building a worker on a store shared with other components.
    pub fn builder_shared(store: Arc<dyn Store>) -> WorkerBuilder {
        WorkerBuilder {
            store,
            registry: Registry::new(),
            resources: Resources::new(),
            queues: Vec::new(),
            concurrency: 64,
            lease_for: Duration::from_secs(30),
            max_deliveries: 20,
            poll_wait: Duration::from_secs(1),
            timer_poll: Duration::from_millis(200),
            shutdown_grace: Duration::from_secs(10),
            clock: Arc::new(SystemClock),
            worker_id: None,
            crash_plan: None,
            limits: Limits::DEFAULT,
            propagation: Propagation::default(),
            gauges_every: Some(Duration::from_secs(10)),
        }
    }

    /// The worker's id.
    pub fn id(&self) -> &str {
        &self.engine.worker_id
    }

    /// The task queues it serves.
    pub fn queues(&self) -> &[String] {
        &self.queues
    }

    /// Runs until Ctrl-C, then shuts down gracefully.
    pub async fn run(self) -> Result<(), WorkerError> {
        self.run_until(async {
            if let Err(e) = tokio::signal::ctrl_c().await {
                warn!(error = %e, "cannot listen for Ctrl-C; running until killed");
                std::future::pending::<()>().await;
            }
            info!("Ctrl-C received; shutting down");
        })
        .await
    }

    /// Runs until `shutdown` completes, then shuts down gracefully; or
    /// until the store refuses the worker for good
    /// ([`WorkerError::Store`]).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
        let engine = self.engine;
        let fatal = self.fatal;
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let mut runs = JoinSet::new();
        let in_progress: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let mut failures: u32 = 0;
        tokio::pin!(shutdown);
        info!(worker = %engine.worker_id, queues = ?self.queues, "worker started");
        // In the background: the catalog only draws diagrams, and must not
        // hold up the first poll.
        tokio::spawn(register_catalog(Arc::clone(&engine)));
        let _clockwork = AbortOnDrop(tokio::spawn(clockwork(
            Arc::clone(&engine),
            self.timer_poll,
            self.gauges_every,
        )));
        loop {
            while runs.try_join_next().is_some() {}
            let free = tokio::select! {
                biased;
                _ = fatal.wait() => break,
                _ = &mut shutdown => break,
                _ = engine.halt.wait() => break,
                p = Arc::clone(&permits).acquire_many_owned(1) => match p {
                    Ok(p) => { drop(p); permits.available_permits() }
                    Err(_) => break,
                },
            };
            let polled = tokio::select! {
                biased;
                _ = fatal.wait() => break,
                _ = &mut shutdown => break,
                _ = engine.halt.wait() => break,
                r = engine.store.poll(&engine.worker_id, &self.queues, free.max(1), self.poll_wait) => r,
            };
            let tasks = match polled {
                Ok(tasks) => {
                    failures = 0;
                    tasks
                }
                Err(e) if e.is_fatal() => break,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let backoff = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
                    warn!(error = %e, ?backoff, "polling the task queues failed; retrying");
                    tokio::select! {
                        _ = fatal.wait() => break,
                        _ = &mut shutdown => break,
                        _ = tokio::time::sleep(backoff) => continue,
                    }
                }
            };
            let mut fresh: Vec<Task> = Vec::with_capacity(tasks.len());
            for task in tasks {
                // A second task for a run this worker drives, or for a run
                // already in this batch (two signals woke it, say): the
                // driver will see whatever it announces. Acquiring it again
                // would start a second drive of the run in this worker.
                // Only the driver's own task (delivered again) must stay
                // pending.
                let duplicate = {
                    let held = lock(&in_progress);
                    held.get(&task.workflow_id)
                        .map(|receipt| *receipt != task.receipt)
                        .or_else(|| {
                            fresh
                                .iter()
                                .find(|f| f.workflow_id == task.workflow_id)
                                .map(|f| f.receipt != task.receipt)
                        })
                };
                match duplicate {
                    Some(true) => {
                        if let Err(e) = engine.store.ack(&task).await {
                            debug!(error = %e, "could not acknowledge a duplicate task");
                        }
                    }
                    Some(false) => {}
                    None => fresh.push(task),
                }
            }
            if fresh.is_empty() {
                continue;
            }
            // One round trip leases the whole batch; the lease is provably
            // ours from the moment the request left.
            let asked_at = std::time::Instant::now();
            let acquired = match engine
                .store
                .acquire_many(&fresh, &engine.worker_id, engine.lease_for)
                .await
            {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, tasks = fresh.len(), "acquiring runs failed; their tasks will be delivered again");
                    continue;
                }
            };
            for (task, acquired) in fresh.into_iter().zip(acquired) {
                let Acquired::Held(lease, record) = acquired else {
                    continue;
                };
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    break;
                };
                lock(&in_progress).insert(task.workflow_id.clone(), task.receipt.clone());
                let engine = Arc::clone(&engine);
                let in_progress = Arc::clone(&in_progress);
                runs.spawn(async move {
                    let id = task.workflow_id.clone();
                    engine.handle(task, lease, record, asked_at).await;
                    lock(&in_progress).remove(&id);
                    drop(permit);
                });
            }
        }
        if engine.halt.is_halted() {
            runs.abort_all();
            while runs.join_next().await.is_some() {}
            return Err(WorkerError::Crashed);
        }
        if let Some(e) = fatal.take() {
            // Nothing can be committed with this configuration: the runs in
            // progress are dropped at once, as a killed worker's would be.
            error!(error = %e, dropped = runs.len(), "the store refused the worker for good; stopping");
            runs.abort_all();
            while runs.join_next().await.is_some() {}
            return Err(WorkerError::Store(e));
        }
        info!(in_progress = runs.len(), "worker stopping");
        let drained = tokio::time::timeout(self.shutdown_grace, async {
            while runs.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                dropped = runs.len(),
                "runs still in progress after the grace period were dropped; they resume from their last checkpoint"
            );
            runs.abort_all();
            while runs.join_next().await.is_some() {}
        }
        info!("worker stopped");
        Ok(())
    }

    /// Runs in a background task until the returned handle shuts it down.
    pub fn spawn(self) -> WorkerHandle {
        let (tx, mut rx) = watch::channel(false);
        let task = tokio::spawn(self.run_until(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }));
        WorkerHandle { stop: tx, task }
    }
}

/// A worker running in the background.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), WorkerError>>,
}

impl WorkerHandle {
    /// Shuts the worker down gracefully and waits for it.
    pub async fn shutdown(self) -> Result<(), WorkerError> {
        let _ = self.stop.send(true);
        self.join().await
    }

    /// Waits for the worker to stop by itself (a crash plan fired).
    pub async fn join(self) -> Result<(), WorkerError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Ok(()),
        }
    }

    /// Stops the worker at once, as a killed process would: runs are dropped
    /// without releasing their leases.
    pub fn abort(self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `<host>-<pid>-<ms nonce>-<n>`: unique per worker, also among workers
/// one process builds in the same millisecond (two workers sharing an id
/// would each take the other's lease as its own).
fn default_worker_id() -> String {
    static BUILT: AtomicU64 = AtomicU64::new(0);
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
    let nonce = crate::clock::wall_clock_ms() % 1_000_000;
    let n = BUILT.fetch_add(1, Ordering::Relaxed);
    format!("{host}-{}-{nonce}-{n}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_built_together_get_distinct_ids() {
        let ids: std::collections::HashSet<String> =
            (0..100).map(|_| default_worker_id()).collect();
        assert_eq!(ids.len(), 100);
    }
}
