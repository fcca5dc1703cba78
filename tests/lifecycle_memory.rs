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

support::lifecycle_scenarios::every_scenario!(on_memory);
