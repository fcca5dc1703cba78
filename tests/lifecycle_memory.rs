//! Lifecycle features on the in-memory store: durable sleep, signals,
//! queries, cancel/terminate/timeout, continue-as-new, child workflows,
//! activity task queues, cron schedules and versioning. The same scenarios
//! run against a real Redis in `lifecycle_redis.rs`.

mod support;

use support::lifecycle_scenarios as scenario;
use support::rig::Rig;

macro_rules! on_memory {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            scenario::$name(Rig::memory()).await;
        }
    )*};
}

on_memory!(
    durable_sleep_waits_for_the_clock,
    a_sleeping_run_survives_its_worker,
    a_signal_sent_early_is_buffered,
    a_signal_wakes_a_waiting_run,
    a_signal_wait_times_out,
    signals_arrive_in_order_once_each,
    signal_errors_are_clear,
    queries_read_the_checkpoint,
    cancel_compensates,
    cancel_stops_a_running_activity,
    terminate_skips_compensations,
    execution_timeout_compensates,
    continue_as_new_keeps_history_small,
    a_child_result_reaches_its_parent,
    cancelling_a_parent_cancels_its_child,
    a_failed_child_is_an_error_for_the_parent,
    an_activity_runs_on_its_queue,
    a_weekly_schedule_fires_on_time_once,
    missed_schedule_times_follow_the_policy,
    invalid_schedules_are_refused,
    in_flight_runs_keep_their_version,
    plain_sagas_are_unaffected,
);
