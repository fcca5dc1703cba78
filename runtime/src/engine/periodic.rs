//! What a worker does on a clock: fire due timers, fire due schedules,
//! read the store's gauges.

use std::sync::Arc;

use tracing::{debug, info, warn};

use super::Engine;
use crate::core::{self, RunRecord, StateSnapshot};
use crate::registry::ErasedWorkflow;
use crate::schedule::{CronSchedule, MissedRuns, ScheduleSpec, run_id};
use crate::store::{ScheduleStore, StoreError};

/// A firing time this close to now is on time, not missed.
const ON_TIME_MS: u64 = 60_000;

/// At most this many missed firings are caught up at once.
const MAX_CATCH_UP: usize = 100;

impl Engine {
    /// Moves timers that are due on this worker's clock to their queues.
    pub(crate) async fn fire_due_timers(&self) -> Result<usize, StoreError> {
        self.store
            .fire_timers(self.clock.now_ms(), &self.queues, 200)
            .await
    }

    /// Reads the store-wide gauges into the metrics.
    pub(crate) async fn read_store_gauges(&self) -> Result<(), StoreError> {
        if let Some(gauges) = self.store.gauges(&self.queues, self.clock.now_ms()).await? {
            crate::telemetry::metrics::store_gauges(&gauges);
        }
        Ok(())
    }

    /// Starts the runs of due schedules of workflows this worker knows.
    pub(crate) async fn fire_schedules(&self) -> Result<usize, StoreError> {
        let Some(schedules) = self.store.schedules() else {
            return Ok(0);
        };
        let now = self.clock.now_ms();
        let mut started = 0;
        for spec in schedules.due_schedules(now, 50).await? {
            let Some(workflow) = self.registry.find_workflow(&spec.workflow).cloned() else {
                continue;
            };
            started += self.fire_schedule(schedules, &workflow, spec, now).await?;
        }
        Ok(started)
    }

    async fn fire_schedule(
        &self,
        schedules: &dyn ScheduleStore,
        workflow: &Arc<dyn ErasedWorkflow>,
        mut spec: ScheduleSpec,
        now: u64,
    ) -> Result<usize, StoreError> {
        // A spec read after another worker advanced it is not due yet.
        let Some(expected) = spec.next_ms.filter(|&n| n <= now) else {
            return Ok(0);
        };
        let cron = match CronSchedule::parse(&spec.cron, &spec.timezone) {
            Ok(c) => c,
            Err(e) => {
                warn!(schedule = %spec.id, error = %e, "schedule cannot be read; pausing it");
                spec.paused = true;
                spec.next_ms = None;
                schedules.advance_schedule(&spec, expected).await?;
                return Ok(0);
            }
        };
        let mut times = vec![expected];
        times.extend(cron.between(expected, now, MAX_CATCH_UP));
        let to_run: Vec<u64> = match spec.missed {
            MissedRuns::RunAll => times.into_iter().take(MAX_CATCH_UP).collect(),
            MissedRuns::RunOnce => times.last().copied().into_iter().collect(),
            MissedRuns::Skip => times
                .into_iter()
                .rfind(|t| now.saturating_sub(*t) <= ON_TIME_MS)
                .into_iter()
                .collect(),
        };
        for &t in &to_run {
            let id = run_id(&spec.id, t);
            let start = match workflow.start_state(spec.input.clone()) {
                Ok(s) => s,
                Err(reason) => {
                    warn!(schedule = %spec.id, %reason, "schedule input does not fit the workflow");
                    continue;
                }
            };
            let mut run = RunRecord::new_run(
                id.clone(),
                spec.workflow.clone(),
                spec.queue.clone(),
                start.input,
                StateSnapshot::new(start.name, start.fingerprint, start.state),
                now,
            );
            run.patches = workflow
                .info()
                .patches
                .iter()
                .map(|p| (*p).to_owned())
                .collect();
            self.store.create(&core::create(run)).await?;
            debug!(schedule = %spec.id, run = %id, "schedule fired");
        }
        spec.next_ms = cron.next_after(now);
        if let Some(&last) = to_run.last() {
            spec.last_fired_ms = Some(last);
        }
        spec.runs_started += to_run.len() as u64;
        // Two workers may fire the same time: both start the same run ids
        // (starting is idempotent), and only one advances the schedule.
        if schedules.advance_schedule(&spec, expected).await? {
            if !to_run.is_empty() {
                info!(schedule = %spec.id, runs = to_run.len(), "schedule fired");
            }
            Ok(to_run.len())
        } else {
            Ok(0)
        }
    }
}
