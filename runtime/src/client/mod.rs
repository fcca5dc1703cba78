//! The client: start runs by id, wait for their results, describe them.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::core::{
    self, HistoryEntry, Input, Interrupt, Limits, Oversize, RunRecord, SignalEntry, StateSnapshot,
    Status,
};
use crate::operator;
use crate::schedule::{CronSchedule, MissedRuns, ScheduleSpec};
use crate::store::{ScheduleStore, Started, Store, StoreError};
use crate::telemetry::{Propagation, TracePropagator, spans};
use crate::workflow::{Signal, Workflow};
use tracing::Instrument;

mod errors;
mod handle;

pub use errors::{ClientError, ResumeError, RunError, SendError};
pub use handle::RunHandle;

/// Options for [`Client::start_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StartOptions {
    /// The workflow id: the idempotency key of the run.
    pub id: String,
    /// The task queue; the workflow's own queue when `None`.
    pub queue: Option<String>,
    /// Fail with [`ClientError::AlreadyStarted`] when the id is taken,
    /// instead of returning the existing run's handle.
    pub reject_duplicate: bool,
    /// How long the run may take, start to end: past it, the run stops and
    /// compensates, and ends as timed out.
    pub execution_timeout: Option<Duration>,
    /// How many signals may wait, unconsumed, in the run's buffer; the
    /// client's bound ([`Client::with_signal_bound`]) when `None`.
    pub signal_bound: Option<u32>,
}

impl StartOptions {
    /// Options for a run with this id, on the workflow's own queue.
    pub fn new(id: impl Into<String>) -> Self {
        StartOptions {
            id: id.into(),
            queue: None,
            reject_duplicate: false,
            execution_timeout: None,
            signal_bound: None,
        }
    }

    /// At most `bound` signals wait, unconsumed, in the run's buffer: past
    /// it, senders get [`SendError::BufferFull`]. Stored with the run, so
    /// every sender meets the same bound.
    pub fn signal_bound(mut self, bound: u32) -> Self {
        self.signal_bound = Some(bound.max(1));
        self
    }

    /// Stops the run (compensating it) if it has not ended after `timeout`.
    pub fn execution_timeout(mut self, timeout: Duration) -> Self {
        self.execution_timeout = Some(timeout);
        self
    }

    /// Serves the run on `queue`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Fails instead of returning the existing run when the id is taken.
    pub fn reject_duplicate(mut self) -> Self {
        self.reject_duplicate = true;
        self
    }
}

/// Starts runs and reads their results. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    signal_bound: usize,
    limits: Limits,
    propagation: Propagation,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// A client on `store`.
    pub fn new(store: impl Store) -> Self {
        Self::new_shared(Arc::new(store))
    }

    /// A client on a store shared with other components.
    pub fn new_shared(store: Arc<dyn Store>) -> Self {
        Client {
            store,
            clock: Arc::new(SystemClock),
            signal_bound: 100,
            limits: Limits::DEFAULT,
            propagation: Propagation::default(),
        }
    }

    /// The limits starts and signals are checked against before they are
    /// sent (default [`Limits::DEFAULT`]; give the workers the same). A
    /// start whose input or start state is over a limit fails with
    /// [`ClientError::TooLarge`], a signal whose payload is with
    /// [`SendError::TooLarge`]; nothing is written.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Uses `clock` for creation timestamps, execution deadlines and
    /// schedules (share a [`ManualClock`](crate::ManualClock) with the
    /// workers to move time in tests).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How many signals may wait, unconsumed, in the buffer of a run this
    /// client starts (default 100), unless [`StartOptions::signal_bound`]
    /// says otherwise; the bound is stored with the run. Also the bound
    /// this client applies to runs stored without one (children, scheduled
    /// runs). Past it, sending fails with [`SendError::BufferFull`].
    pub fn with_signal_bound(mut self, bound: usize) -> Self {
        self.signal_bound = bound.max(1);
        self
    }

    /// Captures the trace context of each start (the `steadfast.start`
    /// span, a child of the caller's current span) with `propagator` and
    /// stores it with the run, so that the workers driving it continue the
    /// caller's trace (give them a propagator too:
    /// [`WorkerBuilder::trace_propagator`](crate::WorkerBuilder::trace_propagator)).
    /// Without one, no trace context is stored.
    pub fn with_trace_propagator(mut self, propagator: impl TracePropagator) -> Self {
        self.propagation = Propagation::new(Arc::new(propagator));
        self
    }

    /// The store the client works on.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Starts a run of `W` with workflow id `id`. The id is the idempotency
    /// key: if a run with this id exists, nothing new starts and its handle
    /// is returned.
    pub async fn start<W: Workflow>(
        &self,
        id: impl Into<String>,
        input: W::Input,
    ) -> Result<RunHandle<W>, ClientError> {
        self.start_with::<W>(StartOptions::new(id), input).await
    }

    /// Starts a run of `W` with the given options.
    pub async fn start_with<W: Workflow>(
        &self,
        options: StartOptions,
        input: W::Input,
    ) -> Result<RunHandle<W>, ClientError> {
        let encode = |source| ClientError::Encode {
            workflow: W::NAME,
            source,
        };
        let input_json = serde_json::to_value(&input).map_err(encode)?;
        let state = W::start(input);
        let state_json = serde_json::to_value(&state).map_err(encode)?;
        let name = W::state_name(&state);
        let start_fp = W::info().state(name).map(|s| s.fingerprint).unwrap_or("");
        let now = self.clock.now_ms();
        let mut record = RunRecord::new_run(
            options.id.clone(),
            W::NAME,
            options.queue.unwrap_or_else(|| W::info().queue.to_owned()),
            input_json,
            StateSnapshot::new(name, start_fp, state_json),
            now,
        );
        record.patches = W::info().patches.iter().map(|p| (*p).to_owned()).collect();
        record.signal_bound = Some(
            options
                .signal_bound
                .unwrap_or_else(|| u32::try_from(self.signal_bound).unwrap_or(u32::MAX)),
        );
        record.deadline_ms = options
            .execution_timeout
            .map(|t| now.saturating_add(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)));
        self.limits
            .check_start(&record)
            .map_err(ClientError::TooLarge)?;
        let span = spans::start(&record.id, W::NAME, &record.queue);
        record.trace = self.propagation.context_of(&span);
        let created = self
            .store
            .create(&core::create(record))
            .instrument(span)
            .await?;
        match created {
            Started::Created => {}
            Started::Existing(existing) => {
                if options.reject_duplicate {
                    return Err(ClientError::AlreadyStarted {
                        id: options.id,
                        status: existing.status(),
                        workflow: existing.workflow,
                    });
                }
                if existing.workflow != W::NAME {
                    return Err(ClientError::WrongType {
                        id: options.id,
                        expected: W::NAME,
                        found: existing.workflow,
                    });
                }
            }
        }
        Ok(self.handle(options.id))
    }

    /// A handle on the run with workflow id `id` (not checked until used).
    pub fn handle<W: Workflow>(&self, id: impl Into<String>) -> RunHandle<W> {
        RunHandle {
            id: id.into(),
            client: self.clone(),
            _workflow: PhantomData,
        }
    }

    /// The run's record as it is now, if the run exists.
    pub async fn describe(&self, id: &str) -> Result<Option<RunRecord>, ClientError> {
        Ok(self.store.load(id).await?)
    }

    /// The run's committed transitions, oldest first.
    pub async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>, ClientError> {
        Ok(self.store.history(id).await?)
    }

    /// Sends signal `S` to run `id`. It waits in the run's buffer until the
    /// workflow awaits it (`ctx.signal::<S>()`), and wakes the run if it is
    /// waiting for it. Fails when the run is unknown or settled, or when its
    /// buffer is full.
    pub async fn signal<S: Signal>(&self, id: &str, signal: S) -> Result<(), SendError> {
        let payload =
            serde_json::to_value(&signal).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.signal_json(id, S::NAME, payload).await
    }

    /// Sends the signal named `name` with a JSON payload, for tools that do
    /// not link the workflow's types (the `steadfast` CLI). The payload must
    /// decode as the signal type the workflow awaits under that name, or
    /// the run parks when it consumes it.
    pub async fn signal_json(
        &self,
        id: &str,
        name: &str,
        payload: serde_json::Value,
    ) -> Result<(), SendError> {
        let now = self.clock.now_ms();
        let signal = SignalEntry {
            name: name.to_owned(),
            payload,
            sent_at_ms: now,
            nonce: nonce(),
        };
        self.limits
            .check_signal(&signal)
            .map_err(SendError::TooLarge)?;
        let bound = u32::try_from(self.signal_bound).unwrap_or(u32::MAX);
        self.send(id, Input::SendSignal { signal, bound }).await
    }

    async fn send(&self, id: &str, input: Input) -> Result<(), SendError> {
        operator::send(self.store.as_ref(), id, input, self.clock.now_ms())
            .await
            .map(|_| ())
            .map_err(|f| SendError::of(id, f))
    }

    /// Puts run `id` back to work after an operator fixed why it stopped:
    /// a parked run (a state that no longer decoded, an unknown workflow
    /// type, workers that kept dying) or a compensation that failed for
    /// good. It goes back to the phase it stopped in (running, waiting, or
    /// compensating, the failed compensation first) with a fresh retry
    /// budget; one history entry records `note`. Refused while a worker
    /// holds the run. Returns the status it resumed with.
    pub async fn resume(&self, id: &str, note: &str) -> Result<Status, ResumeError> {
        let input = Input::Resume {
            note: note.to_owned(),
        };
        let (_, status) = operator::send(self.store.as_ref(), id, input, self.clock.now_ms())
            .await
            .map_err(|f| ResumeError::of(id, f))?;
        status.ok_or_else(|| {
            ResumeError::Store(StoreError::Backend(
                "a resume decided no new status".to_owned(),
            ))
        })
    }

    /// Removes a buffered signal from run `id` (one whose payload parks the
    /// run, say), by its nonce; one history entry records `note`. Works on
    /// parked runs; refused while a worker holds the run.
    pub async fn remove_signal(&self, id: &str, nonce: u64, note: &str) -> Result<(), SendError> {
        let note = note.to_owned();
        self.send(id, Input::RemoveSignal { nonce, note }).await
    }

    /// Asks run `id` to stop at its next suspension point and run its
    /// compensations; it ends as cancelled. A running activity is
    /// cancelled; a child it waits for is cancelled too. A parked run
    /// cannot be cancelled (resume or terminate it).
    pub async fn cancel(&self, id: &str, reason: impl Into<String>) -> Result<(), SendError> {
        let reason = reason.into();
        self.send(id, Input::RequestStop(Interrupt::Cancel { reason }))
            .await
    }

    /// Stops run `id` at once, without compensating (for operators); it
    /// ends as terminated, with its compensations still recorded. A parked
    /// run is terminated on the spot.
    pub async fn terminate(&self, id: &str, reason: impl Into<String>) -> Result<(), SendError> {
        let reason = reason.into();
        self.send(id, Input::RequestStop(Interrupt::Terminate { reason }))
            .await
    }

    fn schedule_store(&self) -> Result<&dyn ScheduleStore, ClientError> {
        self.store.schedules().ok_or(ClientError::NoSchedules)
    }

    /// Creates (or replaces) a schedule that starts a run of `W` with
    /// `input` at every time of `options.cron`. Workers that register `W`
    /// fire it; each firing's run id is `<schedule id>@<time, UTC>`, so
    /// several workers never start one firing twice.
    pub async fn schedule<W: Workflow>(
        &self,
        options: ScheduleOptions,
        input: W::Input,
    ) -> Result<ScheduleSpec, ClientError> {
        let cron = CronSchedule::parse(&options.cron, &options.timezone)?;
        let input = serde_json::to_value(&input).map_err(|source| ClientError::Encode {
            workflow: W::NAME,
            source,
        })?;
        let size = crate::core::encoded_len(&input);
        if size > self.limits.workflow_input_bytes {
            return Err(ClientError::TooLarge(Oversize::new(
                "the schedule's input",
                size,
                self.limits.workflow_input_bytes,
                "workflow_input_bytes",
            )));
        }
        let spec = ScheduleSpec {
            id: options.id,
            workflow: W::NAME.to_owned(),
            queue: options.queue.unwrap_or_else(|| W::info().queue.to_owned()),
            cron: options.cron,
            timezone: options.timezone,
            input,
            missed: options.missed,
            paused: false,
            next_ms: cron.next_after(self.clock.now_ms()),
            last_fired_ms: None,
            runs_started: 0,
        };
        self.schedule_store()?.put_schedule(spec.clone()).await?;
        Ok(spec)
    }

    /// Every schedule.
    pub async fn schedules(&self) -> Result<Vec<ScheduleSpec>, ClientError> {
        Ok(self.schedule_store()?.list_schedules().await?)
    }

    /// Stops a schedule from firing until [`resume_schedule`](Self::resume_schedule),
    /// in one step (a firing in progress keeps its progress).
    pub async fn pause_schedule(&self, id: &str) -> Result<(), ClientError> {
        if self.schedule_store()?.set_schedule_paused(id, true).await? {
            Ok(())
        } else {
            Err(ClientError::NoSchedule(id.to_owned()))
        }
    }

    /// Lets a paused schedule fire again, from its next time after now
    /// (times passed while paused are not caught up).
    pub async fn resume_schedule(&self, id: &str) -> Result<(), ClientError> {
        let mut spec = self.find_schedule(id).await?;
        let cron = CronSchedule::parse(&spec.cron, &spec.timezone)?;
        spec.paused = false;
        spec.next_ms = cron.next_after(self.clock.now_ms());
        Ok(self.schedule_store()?.put_schedule(spec).await?)
    }

    /// Deletes a schedule (its runs stay); returns whether it existed.
    pub async fn delete_schedule(&self, id: &str) -> Result<bool, ClientError> {
        Ok(self.schedule_store()?.delete_schedule(id).await?)
    }

    async fn find_schedule(&self, id: &str) -> Result<ScheduleSpec, ClientError> {
        self.schedule_store()?
            .list_schedules()
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| ClientError::NoSchedule(id.to_owned()))
    }
}

/// Options for [`Client::schedule`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScheduleOptions {
    /// The schedule's id.
    pub id: String,
    /// A cron expression: five fields (`0 9 * * 1`: Mondays at 09:00), or
    /// six with seconds first.
    pub cron: String,
    /// The IANA time zone the expression is read in (default `UTC`).
    pub timezone: String,
    /// The task queue of its runs; the workflow's own when `None`.
    pub queue: Option<String>,
    /// What to do about firing times missed while no worker ran.
    pub missed: MissedRuns,
}

impl ScheduleOptions {
    /// A schedule `id` firing at the times of `cron`, in UTC.
    pub fn new(id: impl Into<String>, cron: impl Into<String>) -> Self {
        ScheduleOptions {
            id: id.into(),
            cron: cron.into(),
            timezone: "UTC".to_owned(),
            queue: None,
            missed: MissedRuns::default(),
        }
    }

    /// Reads the cron expression in this IANA time zone.
    pub fn timezone(mut self, tz: impl Into<String>) -> Self {
        self.timezone = tz.into();
        self
    }

    /// Runs on this task queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Handles missed firing times this way.
    pub fn missed(mut self, missed: MissedRuns) -> Self {
        self.missed = missed;
        self
    }
}

/// A value that makes two otherwise equal signals distinct entries.
fn nonce() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = crate::clock::wall_clock_ms()
        ^ (u64::from(std::process::id()) << 32)
        ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^= h >> 29;
    // Kept below 2^53 so it survives JSON numbers everywhere.
    h & ((1 << 53) - 1)
}
