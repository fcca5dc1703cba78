//! The memory store's data, shaped like the Redis keys it stands in for
//! (a run's fields, its history, its signal buffer, the indexes, the task
//! queues), and the one function that applies a decision to it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::core::{Decision, Effect, Guard, HistoryEntry, Interrupt, RunIndex, SignalEntry, Write};
use crate::schedule::ScheduleSpec;
use crate::store::codec::{self, Fields};
use crate::store::{Applied, StoreError, Task};

/// Everything, behind the store's one mutex.
#[derive(Default)]
pub(super) struct Inner {
    /// Run hashes (a record deleted by hand leaves the rest, as in Redis).
    pub(super) runs: HashMap<String, Run>,
    pub(super) histories: HashMap<String, VecDeque<HistoryEntry>>,
    /// Buffered signals, as their stored JSON text.
    pub(super) signals: HashMap<String, Vec<String>>,
    /// Run id -> (index, score).
    pub(super) indexes: HashMap<String, (RunIndex, u64)>,
    pub(super) ready: HashMap<String, VecDeque<Task>>,
    pub(super) delivered: HashMap<String, Delivery>,
    /// Run id -> (due, queue).
    pub(super) timers: HashMap<String, (u64, String)>,
    pub(super) schedules: BTreeMap<String, ScheduleSpec>,
    /// Catalog entries (JSON) by workflow type.
    pub(super) catalog: BTreeMap<String, String>,
    pub(super) next_receipt: u64,
}

/// A run's hash, and its lease.
pub(super) struct Run {
    pub(super) fields: Fields,
    pub(super) lease: Option<LeaseState>,
}

pub(super) struct LeaseState {
    pub(super) worker: String,
    pub(super) until: Instant,
    pub(super) receipt: String,
}

pub(super) struct Delivery {
    pub(super) task: Task,
    pub(super) idle_since: Instant,
    pub(super) count: u32,
}

impl Run {
    pub(super) fn leased(&self) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|l| l.until > Instant::now())
    }

    pub(super) fn fence(&self) -> u64 {
        self.fields
            .get("fence")
            .and_then(|f| f.parse().ok())
            .unwrap_or(0)
    }
}

/// What applying a decision does besides its result: whom to wake.
#[derive(Default)]
pub(super) struct Wakes {
    pub(super) tasks: bool,
    pub(super) settled: bool,
}

impl Inner {
    pub(super) fn enqueue(&mut self, workflow_id: &str, queue: &str) {
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

    /// Checks the guard of a decision on an existing run.
    fn check(&self, id: &str, guard: &Guard, exclusive: bool) -> Result<(), StoreError> {
        let run = self
            .runs
            .get(id)
            .ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        let stored_seq = run.fields.get("seq").cloned().unwrap_or_default();
        let stale = |expected: u64| StoreError::Stale {
            workflow_id: id.to_owned(),
            expected: expected.to_string(),
            found: stored_seq.clone(),
        };
        match guard {
            Guard::Absent => {
                return Err(StoreError::Backend(format!(
                    "run `{id}` exists; a creation applies only where no run is"
                )));
            }
            Guard::Held {
                worker, fence, seq, ..
            } => {
                let holds = run.lease.as_ref().is_some_and(|l| &l.worker == worker);
                if run.fence() != *fence || !holds {
                    return Err(StoreError::Fenced {
                        workflow_id: id.to_owned(),
                        fence: *fence,
                    });
                }
                if let Some(seq) = seq
                    && stored_seq != seq.to_string()
                {
                    return Err(stale(*seq));
                }
            }
            Guard::Exists => {}
            Guard::Unended => {
                let status = run
                    .fields
                    .get("status")
                    .and_then(|s| crate::core::Status::parse(s));
                if let Some(status) = status.filter(|s| s.is_settled() && !s.needs_attention()) {
                    return Err(StoreError::Ended {
                        workflow_id: id.to_owned(),
                        status,
                    });
                }
            }
            Guard::Current { seq } => {
                if stored_seq != seq.to_string() {
                    return Err(stale(*seq));
                }
                if exclusive && run.leased() {
                    return Err(StoreError::Held(id.to_owned()));
                }
            }
        }
        Ok(())
    }

    /// Applies `decision` to run `id` under `guard`, all or nothing.
    pub(super) fn apply(
        &mut self,
        id: &str,
        guard: &Guard,
        decision: &Decision,
        history_limit: usize,
    ) -> Result<(Applied, Wakes), StoreError> {
        crate::store::check_fits(guard, decision)?;
        if matches!(guard, Guard::Absent) {
            if self.runs.contains_key(id) {
                return Err(StoreError::Backend(format!("run `{id}` exists")));
            }
        } else {
            self.check(id, guard, decision.exclusive)?;
        }
        // The one effect that can refuse the decision, checked before any write.
        for effect in &decision.effects {
            if let Effect::AppendSignal { bound, .. } = effect {
                let waiting = self.signals.get(id).map_or(0, Vec::len);
                if waiting >= usize::try_from(*bound).unwrap_or(usize::MAX) {
                    return Err(StoreError::BufferFull {
                        workflow_id: id.to_owned(),
                        bound: *bound,
                    });
                }
            }
        }
        let now = Instant::now();
        let mut wakes = Wakes::default();
        // Signals first: what the run waits for is looked up after this
        // decision's own consumption.
        let mut buffered: Option<SignalEntry> = None;
        for effect in &decision.effects {
            match effect {
                Effect::ConsumeSignal { nonce } => {
                    if let Some(list) = self.signals.get_mut(id)
                        && let Some(pos) = list.iter().position(|raw| nonce_of(raw) == Some(*nonce))
                    {
                        list.remove(pos);
                    }
                }
                Effect::AppendSignal { signal, .. } => self
                    .signals
                    .entry(id.to_owned())
                    .or_default()
                    .push(codec::signal_entry(signal)),
                Effect::AwaitSignal { name } => {
                    buffered = self.signals.get(id).and_then(|list| {
                        list.iter()
                            .filter_map(|raw| serde_json::from_str::<SignalEntry>(raw).ok())
                            .find(|s| &s.name == name)
                    });
                }
                _ => {}
            }
        }
        match &decision.write {
            Write::Nothing => {}
            Write::Record(record) => {
                let run = self.runs.entry(id.to_owned()).or_insert_with(|| Run {
                    fields: Fields::new(),
                    lease: None,
                });
                if matches!(guard, Guard::Absent) {
                    run.fields = codec::creation_fields(record).into_iter().collect();
                } else {
                    let (set, delete) = codec::transition_fields(record, decision.new_generation());
                    for name in delete {
                        run.fields.remove(name);
                    }
                    run.fields.extend(set);
                }
            }
            Write::Status {
                status,
                reason,
                seq,
                updated_at_ms,
            } => {
                if let Some(run) = self.runs.get_mut(id) {
                    run.fields
                        .extend(codec::status_fields(*status, reason, *seq, *updated_at_ms));
                }
            }
        }
        if decision
            .effects
            .iter()
            .any(|e| matches!(e, Effect::TrimHistory))
        {
            self.histories.remove(id);
        }
        if let Some(entry) = &decision.history {
            let history = self.histories.entry(id.to_owned()).or_default();
            history.push_back(entry.clone());
            while history.len() > history_limit {
                history.pop_front();
            }
        }
        let (receipt, lease_ms, holder) = match guard {
            Guard::Held {
                receipt,
                lease_ms,
                worker,
                ..
            } => (receipt.as_str(), *lease_ms, Some(worker.as_str())),
            _ => ("", 0, None),
        };
        for effect in &decision.effects {
            match effect {
                Effect::KeepLease => self.keep_lease(id, receipt, lease_ms, now),
                Effect::Release if buffered.is_some() => {
                    self.keep_lease(id, receipt, lease_ms, now)
                }
                Effect::Release => {
                    if let Some(run) = self.runs.get_mut(id)
                        && holder.is_some()
                    {
                        run.lease = None;
                    }
                    self.delivered.remove(receipt);
                }
                Effect::Dispatch { queue } => {
                    self.enqueue(id, queue);
                    wakes.tasks = true;
                }
                Effect::WakeIfWaiting { queue, signal } => {
                    let waits = self
                        .runs
                        .get(id)
                        .and_then(|r| r.fields.get("waiting"))
                        .is_some_and(|w| *w == format!("signal:{signal}"));
                    if waits {
                        self.enqueue(id, queue);
                        wakes.tasks = true;
                    }
                }
                Effect::DropUnreadableSignals => {
                    if let Some(list) = self.signals.get_mut(id) {
                        list.retain(|raw| serde_json::from_str::<SignalEntry>(raw).is_ok());
                    }
                }
                Effect::ArmTimer { queue, at_ms } if buffered.is_none() => {
                    self.timers.insert(id.to_owned(), (*at_ms, queue.clone()));
                }
                Effect::ClearTimer { .. } => {
                    self.timers.remove(id);
                }
                Effect::DropSignals => {
                    self.signals.remove(id);
                }
                Effect::SetInterrupt { interrupt } => {
                    if let Some(run) = self.runs.get_mut(id) {
                        let stored = run
                            .fields
                            .get("interrupt")
                            .and_then(|raw| serde_json::from_str::<Interrupt>(raw).ok());
                        if matches!(interrupt, Interrupt::Cancel { .. })
                            && matches!(stored, Some(Interrupt::Terminate { .. }))
                        {
                            continue;
                        }
                        run.fields.insert(
                            "interrupt".into(),
                            serde_json::to_string(interrupt).unwrap_or_default(),
                        );
                    }
                }
                Effect::ClearInterrupt { interrupt } => {
                    if let Some(run) = self.runs.get_mut(id) {
                        let stored = run
                            .fields
                            .get("interrupt")
                            .and_then(|raw| serde_json::from_str::<Interrupt>(raw).ok());
                        if stored.as_ref() == Some(interrupt) {
                            run.fields.remove("interrupt");
                        }
                    }
                }
                Effect::Index {
                    index, score_ms, ..
                } => {
                    self.indexes.insert(id.to_owned(), (*index, *score_ms));
                }
                Effect::Publish { .. } => wakes.settled = true,
                // Kept until the process exits: the memory store has no
                // retention.
                Effect::Expire => {}
                _ => {}
            }
        }
        let interrupt = self
            .runs
            .get(id)
            .and_then(|r| r.fields.get("interrupt"))
            .map(|raw| serde_json::from_str(raw))
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                workflow_id: id.to_owned(),
                reason: format!("field `interrupt` does not decode: {e}"),
            })?;
        Ok((Applied::new(interrupt, buffered), wakes))
    }

    fn keep_lease(&mut self, id: &str, receipt: &str, lease_ms: u64, now: Instant) {
        if let Some(lease) = self.runs.get_mut(id).and_then(|r| r.lease.as_mut()) {
            lease.until = now + Duration::from_millis(lease_ms);
        }
        if let Some(d) = self.delivered.get_mut(receipt) {
            d.idle_since = now;
        }
    }
}

/// The nonce of a stored signal entry, read by structure.
pub(super) fn nonce_of(raw: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(raw)
        .ok()?
        .get("nonce")?
        .as_u64()
}
