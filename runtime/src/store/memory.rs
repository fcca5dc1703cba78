//! A store that keeps everything in process memory.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{
    Acquired, Commit, Committed, Lease, ResumeError, SendError, Started, Store, StoreError, Task,
    resumed_event, resumed_status,
};
use crate::envelope::{Envelope, HistoryEntry, Interrupt, Pending, SignalEntry, Status};
use crate::schedule::ScheduleSpec;

/// A [`Store`] in process memory, with the same semantics as the Redis store
/// (leases, fences, compare-and-set commits, redelivery of abandoned tasks,
/// timers, signal buffers, schedules) and none of its durability:
/// everything is gone when the process exits.
///
/// For unit tests and zero-setup demos. Clones share the same data, so
/// several workers and clients in one process can use it together.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    inner: Mutex<Inner>,
    tasks_ready: Notify,
    settled: Notify,
    reclaim_after: Duration,
    history_limit: usize,
}

#[derive(Default)]
struct Inner {
    runs: HashMap<String, Record>,
    ready: HashMap<String, VecDeque<Task>>,
    delivered: HashMap<String, Delivery>,
    /// Run id -> (due, queue).
    timers: HashMap<String, (u64, String)>,
    schedules: BTreeMap<String, ScheduleSpec>,
    next_receipt: u64,
}

struct Record {
    envelope: Envelope,
    fence: u64,
    lease: Option<LeaseState>,
    history: VecDeque<HistoryEntry>,
}

struct LeaseState {
    worker: String,
    until: Instant,
    receipt: String,
}

struct Delivery {
    task: Task,
    idle_since: Instant,
    count: u32,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store; abandoned tasks are delivered again after 30 seconds.
    pub fn new() -> Self {
        Self::with_reclaim_after(Duration::from_secs(30))
    }

    /// An empty store that delivers a task again once it has been delivered
    /// and left unacknowledged, untouched by lease renewals, for
    /// `reclaim_after` (keep it at least as long as workers' leases).
    pub fn with_reclaim_after(reclaim_after: Duration) -> Self {
        MemoryStore {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner::default()),
                tasks_ready: Notify::new(),
                settled: Notify::new(),
                reclaim_after,
                history_limit: 1000,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while the lock was held leaves data that was fully written
        // before it (every mutation below is a few field assignments), so
        // carrying on with the inner value is sound.
        self.shared
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Overwrites a run's stored state JSON as an operator (or a bug) could
    /// in Redis; for tests of how workers treat records they cannot read.
    pub fn tamper_state(&self, workflow_id: &str, state: serde_json::Value) -> bool {
        let mut inner = self.lock();
        match inner.runs.get_mut(workflow_id) {
            Some(rec) => {
                rec.envelope.state = state;
                true
            }
            None => false,
        }
    }

    /// Every stored envelope, in no particular order.
    pub fn envelopes(&self) -> Vec<Envelope> {
        self.lock()
            .runs
            .values()
            .map(|r| r.envelope.clone())
            .collect()
    }

    fn notify(&self, tasks: bool, settled: bool) {
        if tasks {
            self.shared.tasks_ready.notify_waiters();
        }
        if settled {
            self.shared.settled.notify_waiters();
        }
    }
}

impl Inner {
    fn enqueue(&mut self, workflow_id: &str, queue: &str) {
        self.next_receipt += 1;
        let task = Task::new(
            workflow_id.to_owned(),
            queue.to_owned(),
            format!("m{}", self.next_receipt),
        );
        self.ready
            .entry(queue.to_owned())
            .or_default()
            .push_back(task);
    }

    fn check_lease<'a>(&'a mut self, lease: &Lease) -> Result<&'a mut Record, StoreError> {
        let rec = self
            .runs
            .get_mut(&lease.workflow_id)
            .ok_or_else(|| StoreError::NotFound(lease.workflow_id.clone()))?;
        match &rec.lease {
            Some(l) if rec.fence == lease.fence && l.worker == lease.worker => Ok(rec),
            _ => Err(StoreError::Fenced {
                workflow_id: lease.workflow_id.clone(),
                fence: lease.fence,
            }),
        }
    }

    /// The run, unless it is missing or settled.
    fn open_run<'a>(&'a mut self, id: &str) -> Result<&'a mut Record, SendError> {
        let rec = self
            .runs
            .get_mut(id)
            .ok_or_else(|| SendError::NotFound(id.to_owned()))?;
        if rec.envelope.status.is_settled() {
            return Err(SendError::Settled {
                id: id.to_owned(),
                status: rec.envelope.status,
            });
        }
        Ok(rec)
    }
}

impl Record {
    fn leased(&self) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|l| l.until > Instant::now())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn start(&self, envelope: Envelope) -> Result<Started, StoreError> {
        let mut inner = self.lock();
        if let Some(rec) = inner.runs.get(&envelope.id) {
            return Ok(Started::Existing(Box::new(rec.envelope.clone())));
        }
        let (id, queue) = (envelope.id.clone(), envelope.queue.clone());
        let mut history = VecDeque::new();
        history.push_back(HistoryEntry::of(&envelope, "created".to_owned()));
        inner.runs.insert(
            id.clone(),
            Record {
                envelope,
                fence: 0,
                lease: None,
                history,
            },
        );
        inner.enqueue(&id, &queue);
        drop(inner);
        self.notify(true, false);
        Ok(Started::Created)
    }

    async fn poll(
        &self,
        _worker: &str,
        queues: &[String],
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Task>, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let mut notified = pin!(self.shared.tasks_ready.notified());
            notified.as_mut().enable();
            {
                let mut inner = self.lock();
                let now = Instant::now();
                let mut out = Vec::new();
                // Redeliver tasks abandoned by dead workers first, like
                // XAUTOCLAIM does.
                let reclaim_after = self.shared.reclaim_after;
                for d in inner.delivered.values_mut() {
                    if out.len() >= max {
                        break;
                    }
                    if queues.contains(&d.task.queue)
                        && now.duration_since(d.idle_since) >= reclaim_after
                    {
                        d.idle_since = now;
                        d.count += 1;
                        let mut task = d.task.clone();
                        task.deliveries = d.count;
                        out.push(task);
                    }
                }
                for q in queues {
                    while out.len() < max {
                        let Some(task) = inner.ready.get_mut(q).and_then(VecDeque::pop_front)
                        else {
                            break;
                        };
                        inner.delivered.insert(
                            task.receipt.clone(),
                            Delivery {
                                task: task.clone(),
                                idle_since: now,
                                count: 1,
                            },
                        );
                        out.push(task);
                    }
                }
                if !out.is_empty() {
                    return Ok(out);
                }
            }
            let until_reclaim = tokio::time::sleep(self.shared.reclaim_after.min(wait));
            tokio::select! {
                _ = notified => {}
                _ = until_reclaim => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
            }
        }
    }

    async fn acquire(
        &self,
        task: &Task,
        worker: &str,
        lease_for: Duration,
    ) -> Result<Acquired, StoreError> {
        let mut inner = self.lock();
        let now = Instant::now();
        let Some(rec) = inner.runs.get_mut(&task.workflow_id) else {
            inner.delivered.remove(&task.receipt);
            return Ok(Acquired::Missing);
        };
        if rec.envelope.status.is_settled() {
            inner.delivered.remove(&task.receipt);
            return Ok(Acquired::Settled);
        }
        if let Some(l) = &rec.lease {
            if l.until > now && l.worker != worker {
                // A duplicate task for a run someone drives can go; the
                // holder's own task must stay, so that it is delivered again
                // if the holder dies.
                if l.receipt != task.receipt {
                    inner.delivered.remove(&task.receipt);
                }
                return Ok(Acquired::Busy);
            }
        }
        rec.fence += 1;
        rec.lease = Some(LeaseState {
            worker: worker.to_owned(),
            until: now + lease_for,
            receipt: task.receipt.clone(),
        });
        let lease = Lease::new(
            task.workflow_id.clone(),
            worker.to_owned(),
            rec.fence,
            task.clone(),
        );
        let envelope = rec.envelope.clone();
        if let Some(d) = inner.delivered.get_mut(&task.receipt) {
            d.idle_since = now;
        }
        Ok(Acquired::Held(lease, Ok(Box::new(envelope))))
    }

    async fn commit(
        &self,
        lease: &Lease,
        commit: Commit<'_>,
        lease_for: Duration,
    ) -> Result<Committed, StoreError> {
        let history_limit = self.shared.history_limit;
        let mut inner = self.lock();
        let rec = inner.check_lease(lease)?;
        let expected = commit.envelope.seq.wrapping_sub(1);
        if rec.envelope.seq != expected {
            return Err(StoreError::Stale {
                workflow_id: lease.workflow_id.clone(),
                expected,
                found: rec.envelope.seq,
            });
        }
        let mut env = commit.envelope.clone();
        // Messages belong to their senders: keep what is stored.
        env.signals = std::mem::take(&mut rec.envelope.signals);
        if let Some(nonce) = commit.consume_signal {
            env.signals.retain(|s| s.nonce != nonce);
        }
        env.interrupt = rec.envelope.interrupt.take();
        if commit.clear_interrupt.is_some() && env.interrupt == commit.clear_interrupt {
            env.interrupt = None;
        }
        let buffered = commit
            .await_signal
            .as_ref()
            .and_then(|name| env.signals.iter().find(|s| &s.name == name).cloned());
        let release = commit.release && buffered.is_none();
        let settled = env.status.is_settled();
        if commit.trim_history {
            rec.history.clear();
        }
        rec.history.push_back(HistoryEntry::of(&env, commit.event));
        while rec.history.len() > history_limit {
            rec.history.pop_front();
        }
        let committed = Committed {
            interrupt: env.interrupt.clone(),
            signal: buffered.clone(),
        };
        let (id, queue) = (env.id.clone(), env.queue.clone());
        rec.envelope = env;
        let now = Instant::now();
        if release {
            rec.lease = None;
        } else if let Some(l) = rec.lease.as_mut() {
            l.until = now + lease_for;
        }
        if settled {
            inner.timers.remove(&id);
        } else if let (Some(due), None) = (commit.wake_at, &buffered) {
            inner.timers.insert(id.clone(), (due, queue));
        }
        let mut woke = false;
        if release {
            inner.delivered.remove(&lease.task.receipt);
            if let Some(q) = &commit.dispatch {
                inner.enqueue(&id, q);
                woke = true;
            }
        } else if let Some(d) = inner.delivered.get_mut(&lease.task.receipt) {
            d.idle_since = now;
        }
        drop(inner);
        self.notify(woke, settled);
        Ok(committed)
    }

    async fn park(&self, lease: &Lease, reason: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let rec = inner.check_lease(lease)?;
        rec.envelope.status = Status::Parked;
        rec.envelope.reason = Some(reason.to_owned());
        rec.envelope.seq += 1;
        let entry = HistoryEntry::of(&rec.envelope, format!("parked: {reason}"));
        rec.history.push_back(entry);
        rec.lease = None;
        inner.delivered.remove(&lease.task.receipt);
        drop(inner);
        self.notify(false, true);
        Ok(())
    }

    async fn resume(
        &self,
        workflow_id: &str,
        note: &str,
        now_ms: u64,
    ) -> Result<Status, ResumeError> {
        let history_limit = self.shared.history_limit;
        let mut inner = self.lock();
        let rec = inner
            .runs
            .get_mut(workflow_id)
            .ok_or_else(|| ResumeError::NotFound(workflow_id.to_owned()))?;
        let env = &mut rec.envelope;
        if !matches!(env.status, Status::Parked | Status::CompensationFailed) {
            return Err(ResumeError::NotStopped {
                id: workflow_id.to_owned(),
                status: env.status,
            });
        }
        if rec.leased() {
            return Err(ResumeError::Held(workflow_id.to_owned()));
        }
        let env = &mut rec.envelope;
        env.status = resumed_status(env.ending.is_some());
        env.seq += 1;
        env.attempts = 0;
        env.last_error = None;
        // Back to why it stopped, if it was stopped; the failure is resolved.
        env.reason.clone_from(&env.stopped);
        env.updated_at_ms = now_ms;
        let status = env.status;
        let queue = env.queue.clone();
        let entry = HistoryEntry::of(env, resumed_event(note));
        rec.lease = None;
        rec.history.push_back(entry);
        while rec.history.len() > history_limit {
            rec.history.pop_front();
        }
        inner.enqueue(workflow_id, &queue);
        drop(inner);
        self.notify(true, false);
        Ok(status)
    }

    async fn release(
        &self,
        lease: &Lease,
        dispatch: Option<&str>,
        wake_at: Option<u64>,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let rec = inner.check_lease(lease)?;
        rec.lease = None;
        let queue = rec.envelope.queue.clone();
        if let Some(due) = wake_at {
            inner.timers.insert(lease.workflow_id.clone(), (due, queue));
        }
        inner.delivered.remove(&lease.task.receipt);
        if let Some(q) = dispatch {
            inner.enqueue(&lease.workflow_id, q);
        }
        drop(inner);
        self.notify(dispatch.is_some(), false);
        Ok(())
    }

    async fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
    ) -> Result<Option<Interrupt>, StoreError> {
        let mut inner = self.lock();
        let rec = inner.check_lease(lease)?;
        let now = Instant::now();
        if let Some(l) = rec.lease.as_mut() {
            l.until = now + lease_for;
        }
        let interrupt = rec.envelope.interrupt.clone();
        if let Some(d) = inner.delivered.get_mut(&lease.task.receipt) {
            d.idle_since = now;
        }
        Ok(interrupt)
    }

    async fn fire_timers(
        &self,
        now_ms: u64,
        queues: &[String],
        max: usize,
    ) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let due: Vec<(String, String)> = inner
            .timers
            .iter()
            .filter(|(_, (at, q))| *at <= now_ms && queues.contains(q))
            .take(max)
            .map(|(id, (_, q))| (id.clone(), q.clone()))
            .collect();
        for (id, q) in &due {
            inner.timers.remove(id);
            inner.enqueue(id, q);
        }
        drop(inner);
        self.notify(!due.is_empty(), false);
        Ok(due.len())
    }

    async fn signal(
        &self,
        workflow_id: &str,
        signal: SignalEntry,
        bound: usize,
    ) -> Result<(), SendError> {
        let mut inner = self.lock();
        let rec = inner.open_run(workflow_id)?;
        let bound = rec
            .envelope
            .signal_bound
            .map_or(bound, |b| usize::try_from(b).unwrap_or(usize::MAX));
        if rec.envelope.signals.len() >= bound {
            return Err(SendError::BufferFull {
                id: workflow_id.to_owned(),
                bound,
            });
        }
        let waits = matches!(&rec.envelope.pending, Some(Pending::Signal { name, .. }) if *name == signal.name);
        let wake = waits && !rec.leased();
        rec.envelope.signals.push(signal);
        let queue = rec.envelope.queue.clone();
        if wake {
            inner.enqueue(workflow_id, &queue);
        }
        drop(inner);
        self.notify(wake, false);
        Ok(())
    }

    async fn interrupt(&self, workflow_id: &str, interrupt: Interrupt) -> Result<(), SendError> {
        let mut inner = self.lock();
        let rec = inner.open_run(workflow_id)?;
        rec.envelope.interrupt = Some(interrupt);
        let wake = !rec.leased();
        let queue = rec.envelope.queue.clone();
        if wake {
            inner.enqueue(workflow_id, &queue);
        }
        drop(inner);
        self.notify(wake, false);
        Ok(())
    }

    async fn wake(&self, workflow_id: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let Ok(rec) = inner.open_run(workflow_id) else {
            return Ok(());
        };
        let queue = rec.envelope.queue.clone();
        inner.enqueue(workflow_id, &queue);
        drop(inner);
        self.notify(true, false);
        Ok(())
    }

    async fn put_schedule(&self, spec: ScheduleSpec) -> Result<(), StoreError> {
        self.lock().schedules.insert(spec.id.clone(), spec);
        Ok(())
    }

    async fn schedules(&self) -> Result<Vec<ScheduleSpec>, StoreError> {
        Ok(self.lock().schedules.values().cloned().collect())
    }

    async fn due_schedules(
        &self,
        now_ms: u64,
        max: usize,
    ) -> Result<Vec<ScheduleSpec>, StoreError> {
        Ok(self
            .lock()
            .schedules
            .values()
            .filter(|s| !s.paused && s.next_ms.is_some_and(|n| n <= now_ms))
            .take(max)
            .cloned()
            .collect())
    }

    async fn advance_schedule(
        &self,
        spec: &ScheduleSpec,
        expected_next_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        match inner.schedules.get_mut(&spec.id) {
            Some(current) if current.next_ms == Some(expected_next_ms) => {
                let paused = current.paused;
                *current = spec.clone();
                current.paused = paused;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().schedules.remove(id).is_some())
    }

    async fn ack(&self, task: &Task) -> Result<(), StoreError> {
        self.lock().delivered.remove(&task.receipt);
        Ok(())
    }

    async fn load(&self, workflow_id: &str) -> Result<Option<Envelope>, StoreError> {
        Ok(self
            .lock()
            .runs
            .get(workflow_id)
            .map(|r| r.envelope.clone()))
    }

    async fn history(&self, workflow_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        Ok(self
            .lock()
            .runs
            .get(workflow_id)
            .map(|r| r.history.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn wait_settled(
        &self,
        workflow_id: &str,
        timeout: Duration,
    ) -> Result<Option<Envelope>, StoreError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut notified = pin!(self.shared.settled.notified());
            notified.as_mut().enable();
            let current = self.load(workflow_id).await?;
            match &current {
                Some(env) if !env.status.is_settled() => {}
                _ => return Ok(current),
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => return self.load(workflow_id).await,
            }
        }
    }
}
