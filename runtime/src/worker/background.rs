//! What a worker does beside driving runs: firing timers and schedules,
//! reading the store's gauges, registering its workflows in the catalog.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

use crate::engine::Engine;

/// Fires due timers every `every`, and due schedules about every second,
/// and reads the store's gauges about every `gauges_every`, until dropped.
pub(super) async fn clockwork(
    engine: Arc<Engine>,
    every: Duration,
    gauges_every: Option<Duration>,
) {
    let ticks = |period: Duration| (period.as_millis() / every.as_millis().max(1)).max(1);
    let schedule_every = ticks(Duration::from_secs(1));
    let gauge_every = gauges_every.map(ticks);
    let mut tick: u128 = 0;
    loop {
        tokio::time::sleep(every).await;
        if engine.halt.is_halted() {
            return;
        }
        if let Err(e) = engine.fire_due_timers().await {
            debug!(error = %e, "firing timers failed; retrying");
        }
        if tick.is_multiple_of(schedule_every)
            && let Err(e) = engine.fire_schedules().await
        {
            debug!(error = %e, "firing schedules failed; retrying");
        }
        if gauge_every.is_some_and(|g| tick.is_multiple_of(g))
            && let Err(e) = engine.read_store_gauges().await
        {
            debug!(error = %e, "reading the store's gauges failed; retrying");
        }
        tick += 1;
    }
}

/// A background task that ends when this is dropped.
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Writes what this worker runs to the store's catalog, for tools that do
/// not link the workflows' code. A failure is logged, not fatal: the
/// catalog only draws diagrams.
pub(super) async fn register_catalog(engine: Arc<Engine>) {
    let Some(admin) = engine.store.admin() else {
        return;
    };
    let now = crate::clock::wall_clock_ms();
    for entry in engine.registry.catalog(&engine.worker_id, now) {
        if let Err(e) = admin.register_workflow(&entry).await {
            warn!(workflow = %entry.workflow, error = %e, "cannot register the workflow in the catalog");
        }
    }
}
