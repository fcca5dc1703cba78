//! Store errors that stop a worker: refused credentials, a missing
//! permission, servers that are not what the configuration says. No retry
//! fixes them, so a worker that meets one (in a poll, a commit, a timer
//! sweep, anywhere) stops with it instead of retrying forever.
//!
//! [`Watched`] wraps the worker's store and notes the first such error any
//! call returns; the worker's loop waits on [`Fatal::wait`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use super::{
    Acquired, AdminStore, Applied, Lease, ScheduleStore, Started, Store, StoreError, StoreGauges,
    Task,
};
use crate::core::{Decision, Guard, HistoryEntry, Interrupt, RunRecord};
use crate::schedule::ScheduleSpec;

/// The first fatal error met, and a way to wait for one.
pub(crate) struct Fatal {
    first: Mutex<Option<StoreError>>,
    met: watch::Sender<bool>,
}

impl Default for Fatal {
    fn default() -> Self {
        Fatal {
            first: Mutex::new(None),
            met: watch::channel(false).0,
        }
    }
}

impl Fatal {
    /// Notes `e` if it is fatal (the first one only); returns it.
    fn note(&self, e: StoreError) -> StoreError {
        if let Some(copy) = fatal_copy(&e) {
            let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
            if first.is_none() {
                *first = Some(copy);
                self.met.send_replace(true);
            }
        }
        e
    }

    /// Waits until a fatal error is met.
    pub(crate) async fn wait(&self) {
        let mut rx = self.met.subscribe();
        // The sender lives as long as `self`: this ends only when one is met.
        let _ = rx.wait_for(|met| *met).await;
    }

    /// The first fatal error met, if any.
    pub(crate) fn take(&self) -> Option<StoreError> {
        self.first.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A copy of a fatal error (the error itself goes back to the caller).
fn fatal_copy(e: &StoreError) -> Option<StoreError> {
    match e {
        StoreError::Auth(m) => Some(StoreError::Auth(m.clone())),
        StoreError::Permission(m) => Some(StoreError::Permission(m.clone())),
        StoreError::Misconfigured(m) => Some(StoreError::Misconfigured(m.clone())),
        _ => None,
    }
}

/// A store whose fatal errors are noted in a [`Fatal`].
pub(crate) struct Watched {
    inner: Arc<dyn Store>,
    fatal: Arc<Fatal>,
}

impl Watched {
    pub(crate) fn new(inner: Arc<dyn Store>, fatal: Arc<Fatal>) -> Self {
        Watched { inner, fatal }
    }

    fn schedule_store(&self) -> Result<&dyn ScheduleStore, StoreError> {
        self.inner
            .schedules()
            .ok_or_else(|| StoreError::Backend("this store keeps no schedules".into()))
    }
}

#[async_trait]
impl Store for Watched {
    async fn create(&self, decision: &Decision) -> Result<Started, StoreError> {
        let r = self.inner.create(decision).await;
        r.map_err(|e| self.fatal.note(e))
    }

    async fn poll(
        &self,
        worker: &str,
        queues: &[String],
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Task>, StoreError> {
        let r = self.inner.poll(worker, queues, max, wait).await;
        r.map_err(|e| self.fatal.note(e))
    }

    async fn acquire_many(
        &self,
        tasks: &[Task],
        worker: &str,
        lease_for: Duration,
    ) -> Result<Vec<Acquired>, StoreError> {
        let r = self.inner.acquire_many(tasks, worker, lease_for).await;
        r.map_err(|e| self.fatal.note(e))
    }

    async fn apply(
        &self,
        workflow_id: &str,
        guard: &Guard,
        decision: &Decision,
    ) -> Result<Applied, StoreError> {
        let r = self.inner.apply(workflow_id, guard, decision).await;
        r.map_err(|e| self.fatal.note(e))
    }

    async fn renew(
        &self,
        lease: &Lease,
        lease_for: Duration,
    ) -> Result<Option<Interrupt>, StoreError> {
        let r = self.inner.renew(lease, lease_for).await;
        r.map_err(|e| self.fatal.note(e))
    }

    async fn ack(&self, task: &Task) -> Result<(), StoreError> {
        let r = self.inner.ack(task).await;
        r.map_err(|e| self.fatal.note(e))
    }

    async fn fire_timers(
        &self,
        now_ms: u64,
        queues: &[String],
        max: usize,
    ) -> Result<usize, StoreError> {
        let r = self.inner.fire_timers(now_ms, queues, max).await;
        r.map_err(|e| self.fatal.note(e))
    }

    async fn load(&self, workflow_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let r = self.inner.load(workflow_id).await;
        r.map_err(|e| self.fatal.note(e))
    }

    async fn history(&self, workflow_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let r = self.inner.history(workflow_id).await;
        r.map_err(|e| self.fatal.note(e))
    }

    async fn wait_settled(
        &self,
        workflow_id: &str,
        timeout: Duration,
    ) -> Result<Option<RunRecord>, StoreError> {
        let r = self.inner.wait_settled(workflow_id, timeout).await;
        r.map_err(|e| self.fatal.note(e))
    }

    async fn gauges(
        &self,
        queues: &[String],
        now_ms: u64,
    ) -> Result<Option<StoreGauges>, StoreError> {
        let r = self.inner.gauges(queues, now_ms).await;
        r.map_err(|e| self.fatal.note(e))
    }

    fn schedules(&self) -> Option<&dyn ScheduleStore> {
        self.inner.schedules().map(|_| self as &dyn ScheduleStore)
    }

    fn admin(&self) -> Option<&dyn AdminStore> {
        self.inner.admin()
    }
}

#[async_trait]
impl ScheduleStore for Watched {
    async fn put_schedule(&self, spec: ScheduleSpec) -> Result<(), StoreError> {
        let r = self.schedule_store()?.put_schedule(spec).await;
        r.map_err(|e| self.fatal.note(e))
    }

    async fn list_schedules(&self) -> Result<Vec<ScheduleSpec>, StoreError> {
        let r = self.schedule_store()?.list_schedules().await;
        r.map_err(|e| self.fatal.note(e))
    }

    async fn due_schedules(
        &self,
        now_ms: u64,
        max: usize,
    ) -> Result<Vec<ScheduleSpec>, StoreError> {
        let r = self.schedule_store()?.due_schedules(now_ms, max).await;
        r.map_err(|e| self.fatal.note(e))
    }

    async fn advance_schedule(
        &self,
        spec: &ScheduleSpec,
        expected_next_ms: u64,
    ) -> Result<bool, StoreError> {
        let r = self
            .schedule_store()?
            .advance_schedule(spec, expected_next_ms)
            .await;
        r.map_err(|e| self.fatal.note(e))
    }

    async fn set_schedule_paused(&self, id: &str, paused: bool) -> Result<bool, StoreError> {
        let r = self.schedule_store()?.set_schedule_paused(id, paused).await;
        r.map_err(|e| self.fatal.note(e))
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool, StoreError> {
        let r = self.schedule_store()?.delete_schedule(id).await;
        r.map_err(|e| self.fatal.note(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn only_errors_no_retry_fixes_are_noted() {
        let fatal = Fatal::default();
        let _ = fatal.note(StoreError::Unavailable("away".into()));
        let _ = fatal.note(StoreError::NotFound("r".into()));
        assert!(!*fatal.met.borrow());
        let e = fatal.note(StoreError::Permission("no EVALSHA".into()));
        assert!(matches!(e, StoreError::Permission(_)));
        let _ = fatal.note(StoreError::Auth("later".into()));
        fatal.wait().await;
        assert!(matches!(fatal.take(), Some(StoreError::Permission(m)) if m == "no EVALSHA"));
    }

    #[tokio::test]
    async fn a_watched_store_passes_calls_through() {
        let fatal = Arc::new(Fatal::default());
        let store = Watched::new(Arc::new(MemoryStore::new()), Arc::clone(&fatal));
        assert!(store.load("nobody").await.expect("loads").is_none());
        assert!(store.schedules().is_some() && store.admin().is_some());
        assert!(!*fatal.met.borrow());
    }
}
