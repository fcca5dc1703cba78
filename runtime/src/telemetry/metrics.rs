//! The worker's metrics, through the `metrics` facade: with no recorder
//! installed each call is a no-op behind one atomic load. Labels are
//! bounded: a workflow type, an activity, a queue, an outcome or a status,
//! never a run id. `docs/observability.md` lists every metric.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

use crate::core::Status;

/// Committed transitions, by `workflow` and the `status` they left the run
/// in.
pub const TRANSITIONS: &str = "steadfast_transitions_total";
/// Activity attempts, by `workflow`, `activity` and `outcome`
/// (`succeeded`, `failed`, `timed_out`, `panicked`, `broken`,
/// `interrupted`).
pub const ACTIVITY_ATTEMPTS: &str = "steadfast_activity_attempts_total";
/// Failed activity attempts that will be retried, by `workflow` and
/// `activity`.
pub const ACTIVITY_RETRIES: &str = "steadfast_activity_retries_total";
/// Activity calls that failed for good (retries exhausted or not
/// retryable), by `workflow` and `activity`.
pub const ACTIVITY_FAILURES: &str = "steadfast_activity_failures_total";
/// Compensations run to an end, by `workflow`, `activity` and `outcome`
/// (`succeeded`, `failed`).
pub const COMPENSATIONS: &str = "steadfast_compensations_total";
/// Runs parked for an operator, by `workflow`.
pub const RUNS_PARKED: &str = "steadfast_runs_parked_total";
/// Runs whose compensation failed (stopped for an operator), by
/// `workflow`.
pub const RUNS_COMPENSATION_FAILED: &str = "steadfast_runs_compensation_failed_total";
/// Runs this worker drives now, by `queue`.
pub const RUNS_DRIVING: &str = "steadfast_worker_runs_driving";
/// Runs not settled in the store (every worker's), read on the worker's
/// clock.
pub const RUNS_IN_FLIGHT: &str = "steadfast_runs_in_flight";
/// Time to commit one decision (all retries included), in seconds, by
/// `workflow`.
pub const COMMIT_DURATION: &str = "steadfast_commit_duration_seconds";
/// Time of one activity attempt, in seconds, by `workflow`, `activity`
/// and `outcome`.
pub const ACTIVITY_DURATION: &str = "steadfast_activity_duration_seconds";
/// Age of the oldest task not yet delivered, in seconds, by `queue` (0
/// when none waits).
pub const QUEUE_LAG: &str = "steadfast_queue_lag_seconds";
/// Timers due and not yet fired, read on the worker's clock.
pub const TIMERS_DUE: &str = "steadfast_timers_due";

/// One committed transition.
pub(crate) fn transition(workflow: &str, status: Status, commit: Duration) {
    let workflow = workflow.to_owned();
    counter!(TRANSITIONS, "workflow" => workflow.clone(), "status" => status.as_str()).increment(1);
    histogram!(COMMIT_DURATION, "workflow" => workflow.clone()).record(commit.as_secs_f64());
    match status {
        Status::Parked => counter!(RUNS_PARKED, "workflow" => workflow).increment(1),
        Status::CompensationFailed => {
            counter!(RUNS_COMPENSATION_FAILED, "workflow" => workflow).increment(1);
        }
        _ => {}
    }
}

/// How one attempt ended, as a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptOutcome {
    Succeeded,
    Failed,
    TimedOut,
    Panicked,
    Broken,
    Interrupted,
}

impl AttemptOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::TimedOut => "timed_out",
            AttemptOutcome::Panicked => "panicked",
            AttemptOutcome::Broken => "broken",
            AttemptOutcome::Interrupted => "interrupted",
        }
    }
}

/// One activity attempt that ended (or was cut short).
pub(crate) fn attempt(workflow: &str, activity: &str, outcome: AttemptOutcome, took: Duration) {
    let (workflow, activity) = (workflow.to_owned(), activity.to_owned());
    counter!(ACTIVITY_ATTEMPTS, "workflow" => workflow.clone(), "activity" => activity.clone(), "outcome" => outcome.as_str())
        .increment(1);
    histogram!(ACTIVITY_DURATION, "workflow" => workflow, "activity" => activity, "outcome" => outcome.as_str())
        .record(took.as_secs_f64());
}

/// A failed attempt that will be retried.
pub(crate) fn retry(workflow: &str, activity: &str) {
    counter!(ACTIVITY_RETRIES, "workflow" => workflow.to_owned(), "activity" => activity.to_owned())
        .increment(1);
}

/// An activity call that failed for good.
pub(crate) fn gave_up(workflow: &str, activity: &str) {
    counter!(ACTIVITY_FAILURES, "workflow" => workflow.to_owned(), "activity" => activity.to_owned())
        .increment(1);
}

/// A compensation that ran to an end.
pub(crate) fn compensation(workflow: &str, activity: &str, succeeded: bool) {
    let outcome = if succeeded { "succeeded" } else { "failed" };
    counter!(COMPENSATIONS, "workflow" => workflow.to_owned(), "activity" => activity.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// What the worker's clock read from the store.
pub(crate) fn store_gauges(gauges: &crate::store::StoreGauges) {
    gauge!(RUNS_IN_FLIGHT).set(gauges.runs_in_flight as f64);
    gauge!(TIMERS_DUE).set(gauges.timers_due as f64);
    for (queue, lag) in &gauges.queue_lag {
        gauge!(QUEUE_LAG, "queue" => queue.clone()).set(lag.as_secs_f64());
    }
}

/// Counts a drive in [`RUNS_DRIVING`] while it lives (also when the drive
/// is dropped: a shutdown, an abort).
pub(crate) struct Driving(String);

impl Driving {
    pub(crate) fn new(queue: &str) -> Self {
        gauge!(RUNS_DRIVING, "queue" => queue.to_owned()).increment(1.0);
        Driving(queue.to_owned())
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        gauge!(RUNS_DRIVING, "queue" => std::mem::take(&mut self.0)).decrement(1.0);
    }
}

/// Registers each metric's unit and description with the installed
/// recorder (exporters show them: Prometheus's `# HELP` lines). Call it
/// once, after installing the recorder.
///
/// ```
/// // With no recorder installed, this does nothing.
/// steadfast_runtime::telemetry::metrics::describe();
/// ```
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        TRANSITIONS,
        Unit::Count,
        "Committed transitions, by the status they left the run in."
    );
    describe_counter!(
        ACTIVITY_ATTEMPTS,
        Unit::Count,
        "Activity attempts, by outcome."
    );
    describe_counter!(
        ACTIVITY_RETRIES,
        Unit::Count,
        "Failed activity attempts that will be retried."
    );
    describe_counter!(
        ACTIVITY_FAILURES,
        Unit::Count,
        "Activity calls that failed for good."
    );
    describe_counter!(
        COMPENSATIONS,
        Unit::Count,
        "Compensations run to an end, by outcome."
    );
    describe_counter!(RUNS_PARKED, Unit::Count, "Runs parked for an operator.");
    describe_counter!(
        RUNS_COMPENSATION_FAILED,
        Unit::Count,
        "Runs whose compensation failed."
    );
    describe_gauge!(RUNS_DRIVING, Unit::Count, "Runs this worker drives now.");
    describe_gauge!(
        RUNS_IN_FLIGHT,
        Unit::Count,
        "Runs not settled in the store."
    );
    describe_gauge!(TIMERS_DUE, Unit::Count, "Timers due and not yet fired.");
    describe_gauge!(
        QUEUE_LAG,
        Unit::Seconds,
        "Age of the oldest task not yet delivered."
    );
    describe_histogram!(
        COMMIT_DURATION,
        Unit::Seconds,
        "Time to commit one decision, retries included."
    );
    describe_histogram!(
        ACTIVITY_DURATION,
        Unit::Seconds,
        "Time of one activity attempt."
    );
}
