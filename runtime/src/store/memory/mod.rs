//! A store that keeps everything in process memory.

mod data;

use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::codec::{self, Fields};
use super::{
    Acquired, AdminStore, Applied, IndexedRun, Lease, PageQuery, RunList, RunPage, ScheduleStore,
    Started, Store, StoreError, StoreGauges, Task, Unreadable,
};
use crate::catalog::CatalogEntry;
use crate::core::{Decision, Guard, HistoryEntry, Interrupt, RunIndex, RunRecord, Status};
use crate::schedule::ScheduleSpec;
use data::{Delivery, Inner, LeaseState};

/// A [`Store`] in process memory, with the same semantics as the Redis store
/// (leases, fences, compare-and-set decisions, redelivery of abandoned
/// tasks, timers, signal buffers, schedules, the same record fields) and
/// none of its durability: everything is gone when the process exits.
/// Settled runs are kept until then (there is no retention).
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

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("reclaim_after", &self.shared.reclaim_after)
            .finish_non_exhaustive()
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
        // before it (every mutation is a few assignments), so carrying on
        // with the inner value is sound.
        self.shared
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sets (or, with `None`, deletes) one field of a run's record, as an
    /// operator (or a bug) could in Redis; for tests of how workers treat
    /// records they cannot read. Returns whether the run exists.
    pub fn tamper_field(&self, workflow_id: &str, field: &str, value: Option<&str>) -> bool {
        let mut inner = self.lock();
        let Some(run) = inner.runs.get_mut(workflow_id) else {
            return false;
        };
        match value {
            Some(v) => run.fields.insert(field.to_owned(), v.to_owned()),
            None => run.fields.remove(field),
        };
        true
    }

    /// Overwrites a run's stored state JSON; see [`tamper_field`](Self::tamper_field).
    pub fn tamper_state(&self, workflow_id: &str, state: serde_json::Value) -> bool {
        self.tamper_field(workflow_id, "state", Some(&state.to_string()))
    }

    /// Deletes a run's record and nothing else, as `DEL` on its hash in
    /// `redis-cli` would: its history, signals and index entry stay.
    pub fn delete_record_by_hand(&self, workflow_id: &str) -> bool {
        self.lock().runs.remove(workflow_id).is_some()
    }

    /// Appends a raw entry to a run's signal buffer, as `RPUSH` in
    /// `redis-cli` would; for tests of entries that do not read.
    pub fn push_raw_signal(&self, workflow_id: &str, raw: &str) {
        self.lock()
            .signals
            .entry(workflow_id.to_owned())
            .or_default()
            .push(raw.to_owned());
    }

    /// Every stored record that reads, in no particular order.
    pub fn records(&self) -> Vec<RunRecord> {
        self.lock()
            .runs
            .values()
            .filter_map(|r| codec::parse(&r.fields).ok())
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

    fn read(inner: &Inner, workflow_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let Some(run) = inner.runs.get(workflow_id) else {
            return Ok(None);
        };
        let corrupt = |reason| StoreError::Corrupt {
            workflow_id: workflow_id.to_owned(),
            reason,
        };
        let mut record = codec::parse_for_display(&run.fields).map_err(corrupt)?;
        // An entry that does not read is shown as such: it is the worker
        // that parks the run on it, not a reader.
        let raw = inner.signals.get(workflow_id).cloned().unwrap_or_default();
        record.signals = codec::parse_signals_for_display(&raw);
        Ok(Some(record))
    }
}

/// Whether a stored status is one a worker no longer acquires.
fn settled_fields(fields: &Fields) -> bool {
    fields
        .get("status")
        .and_then(|s| Status::parse(s))
        .is_some_and(Status::is_settled)
}

#[async_trait]
impl Store for MemoryStore {
    async fn create(&self, decision: &Decision) -> Result<Started, StoreError> {
        let Some(record) = decision.record() else {
            return Err(StoreError::Backend("a creation must write a record".into()));
        };
        let mut inner = self.lock();
        if inner.runs.contains_key(&record.id) {
            let existing = Self::read(&inner, &record.id)?
                .ok_or_else(|| StoreError::NotFound(record.id.clone()))?;
            return Ok(Started::Existing(Box::new(existing)));
        }
        let limit = self.shared.history_limit;
        let (_, wakes) = inner.apply(&record.id, &Guard::Absent, decision, limit)?;
        drop(inner);
        self.notify(wakes.tasks, wakes.settled);
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
                // Redeliver tasks abandoned by dead workers first, like the
                // Redis store's reclaim does.
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
                        let Some(task) = inner.ready.get_mut(q).and_then(|r| r.pop_front()) else {
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

    async fn acquire_many(
        &self,
        tasks: &[Task],
        worker: &str,
        lease_for: Duration,
    ) -> Result<Vec<Acquired>, StoreError> {
        let mut inner = self.lock();
        let now = Instant::now();
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            let id = &task.workflow_id;
            let Some(run) = inner.runs.get_mut(id) else {
                inner.delivered.remove(&task.receipt);
                out.push(Acquired::Missing);
                continue;
            };
            if settled_fields(&run.fields) {
                inner.delivered.remove(&task.receipt);
                out.push(Acquired::Settled);
                continue;
            }
            if let Some(l) = &run.lease
                && l.until > now
                && l.worker != worker
            {
                // A duplicate task for a run someone drives can go; the
                // holder's own task must stay, so that it is delivered
                // again if the holder dies.
                if l.receipt != task.receipt {
                    inner.delivered.remove(&task.receipt);
                }
                out.push(Acquired::Busy);
                continue;
            }
            let fence = run.fence() + 1;
            run.fields.insert("fence".into(), fence.to_string());
            run.lease = Some(LeaseState {
                worker: worker.to_owned(),
                until: now + lease_for,
                receipt: task.receipt.clone(),
            });
            let lease = Lease::new(id.clone(), worker.to_owned(), fence, task.clone());
            let seq = run.fields.get("seq").and_then(|s| s.parse().ok());
            let raw_signals = inner.signals.get(id).cloned().unwrap_or_default();
            let record = inner
                .runs
                .get(id)
                .map(|r| codec::parse(&r.fields))
                .unwrap_or_else(|| Err("the record vanished".into()))
                .and_then(|mut r| {
                    r.signals = codec::parse_signals(&raw_signals)?;
                    Ok(Box::new(r))
                })
                .map_err(|reason| Unreadable::new(reason, seq));
            if let Some(d) = inner.delivered.get_mut(&task.receipt) {
                d.idle_since = now;
            }
            out.push(Acquired::Held(lease, record));
        }
        Ok(out)
    }

    async fn apply(
        &self,
        workflow_id: &str,
        guard: &Guard,
        decision: &Decision,
    ) -> Result<Applied, StoreError> {
        let limit = self.shared.history_limit;
        let mut inner = self.lock();
        let (applied, wakes) = inner.apply(workflow_id, guard, decision, limit)?;
        drop(inner);
        self.notify(wakes.tasks, wakes.settled);
        Ok(applied)
    }

    async fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
    ) -> Result<Option<Interrupt>, StoreError> {
        let mut inner = self.lock();
        let fenced = || StoreError::Fenced {
            workflow_id: lease.workflow_id.clone(),
            fence: lease.fence,
        };
        let run = inner.runs.get_mut(&lease.workflow_id).ok_or_else(fenced)?;
        let fence = run.fence();
        let Some(held) = run.lease.as_mut().filter(|l| l.worker == lease.worker) else {
            return Err(fenced());
        };
        if fence != lease.fence {
            return Err(fenced());
        }
        let now = Instant::now();
        held.until = now + lease_for;
        let interrupt = run
            .fields
            .get("interrupt")
            .map(|raw| serde_json::from_str(raw))
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                workflow_id: lease.workflow_id.clone(),
                reason: format!("field `interrupt` does not decode: {e}"),
            })?;
        if let Some(d) = inner.delivered.get_mut(&lease.task.receipt) {
            d.idle_since = now;
        }
        Ok(interrupt)
    }

    async fn ack(&self, task: &Task) -> Result<(), StoreError> {
        self.lock().delivered.remove(&task.receipt);
        Ok(())
    }

    /// Runs in flight and timers due; no queue lag (tasks here keep no
    /// time).
    async fn gauges(
        &self,
        _queues: &[String],
        now_ms: u64,
    ) -> Result<Option<StoreGauges>, StoreError> {
        let inner = self.lock();
        let active = inner
            .indexes
            .values()
            .filter(|(index, _)| *index == RunIndex::Active)
            .count() as u64;
        let due = inner
            .timers
            .values()
            .filter(|(at, _)| *at <= now_ms)
            .count() as u64;
        Ok(Some(StoreGauges::new(active, due, Vec::new())))
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

    async fn load(&self, workflow_id: &str) -> Result<Option<RunRecord>, StoreError> {
        Self::read(&self.lock(), workflow_id)
    }

    async fn history(&self, workflow_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        Ok(self
            .lock()
            .histories
            .get(workflow_id)
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn wait_settled(
        &self,
        workflow_id: &str,
        timeout: Duration,
    ) -> Result<Option<RunRecord>, StoreError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut notified = pin!(self.shared.settled.notified());
            notified.as_mut().enable();
            match self.load(workflow_id).await? {
                Some(r) if !r.status().is_settled() => {}
                current => return Ok(current),
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => return self.load(workflow_id).await,
            }
        }
    }

    fn schedules(&self) -> Option<&dyn ScheduleStore> {
        Some(self)
    }

    fn admin(&self) -> Option<&dyn AdminStore> {
        Some(self)
    }
}

#[async_trait]
impl ScheduleStore for MemoryStore {
    async fn put_schedule(&self, spec: ScheduleSpec) -> Result<(), StoreError> {
        self.lock().schedules.insert(spec.id.clone(), spec);
        Ok(())
    }

    async fn list_schedules(&self) -> Result<Vec<ScheduleSpec>, StoreError> {
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

    async fn set_schedule_paused(&self, id: &str, paused: bool) -> Result<bool, StoreError> {
        Ok(match self.lock().schedules.get_mut(id) {
            Some(spec) => {
                spec.paused = paused;
                true
            }
            None => false,
        })
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().schedules.remove(id).is_some())
    }
}

#[async_trait]
impl AdminStore for MemoryStore {
    async fn list_runs(&self, list: RunList, limit: usize) -> Result<Vec<String>, StoreError> {
        let wanted = match list {
            RunList::Active => RunIndex::Active,
            RunList::Attention => RunIndex::Attention,
            RunList::Finished => RunIndex::Done,
        };
        let mut ids: Vec<(u64, String)> = self
            .lock()
            .indexes
            .iter()
            .filter(|(_, (index, _))| *index == wanted)
            .map(|(id, (_, score))| (*score, id.clone()))
            .collect();
        ids.sort();
        if list == RunList::Finished {
            ids.reverse();
        }
        Ok(ids.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    async fn count_runs(&self, list: RunList) -> Result<u64, StoreError> {
        Ok(self.list_runs(list, usize::MAX).await?.len() as u64)
    }

    async fn page_runs(&self, query: &PageQuery) -> Result<RunPage, StoreError> {
        let wanted = match query.list {
            RunList::Active => RunIndex::Active,
            RunList::Attention => RunIndex::Attention,
            RunList::Finished => RunIndex::Done,
        };
        let entries: Vec<IndexedRun> = self
            .lock()
            .indexes
            .iter()
            .filter(|(_, (index, _))| *index == wanted)
            .map(|(id, (_, score))| IndexedRun::new(id.clone(), *score))
            .collect();
        let read = entries.len();
        Ok(RunPage::merge(query, entries, read, false))
    }

    async fn register_workflow(&self, entry: &CatalogEntry) -> Result<(), StoreError> {
        let json = entry
            .to_json()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        self.lock().catalog.insert(entry.workflow.clone(), json);
        Ok(())
    }

    async fn catalog(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .lock()
            .catalog
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn delete_run(&self, workflow_id: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let mut found = inner.runs.remove(workflow_id).is_some();
        found |= inner.histories.remove(workflow_id).is_some();
        found |= inner.signals.remove(workflow_id).is_some();
        found |= inner.timers.remove(workflow_id).is_some();
        found |= inner.indexes.remove(workflow_id).is_some();
        Ok(found)
    }

    async fn raw_record(
        &self,
        workflow_id: &str,
    ) -> Result<Option<Vec<(String, String)>>, StoreError> {
        Ok(self.lock().runs.get(workflow_id).map(|r| {
            let mut fields: Vec<(String, String)> = r
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            fields.sort();
            fields
        }))
    }
}
