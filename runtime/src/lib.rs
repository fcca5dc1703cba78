//! The runtime of [steadfast](https://docs.rs/steadfast): workers that drive
//! workflows compiled by `#[workflow]` from checkpoint to checkpoint,
//! checkpoint stores, and the client.
//!
//! Use it through the `steadfast` crate, which re-exports everything here
//! together with the macros.

mod activity;
pub mod catalog;
pub mod check;
mod client;
mod clock;
mod context;
pub mod core;
mod crash;
mod engine;
mod layout;
mod migration;
mod operator;
mod options;
mod registry;
mod resources;
mod schedule;
mod store;
pub mod telemetry;
pub mod testing;
mod worker;
mod workflow;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use activity::{Activity, ActivityContext, ActivityError, ActivityFailure, CompensationCall};
pub use client::{
    Client, ClientError, ResumeError, RunError, RunHandle, ScheduleOptions, SendError, StartOptions,
};
pub use clock::{Clock, ManualClock, SystemClock, wall_clock_ms};
pub use context::{ChildStart, ContinueAsNew, SignalWait, Sleep, WorkflowContext};
pub use core::{
    CompensationEntry, Ending, HistoryEntry, Interrupt, Limits, Outcome, ParkKind, Phase,
    RunRecord, SignalEntry, StateSnapshot, Status, Wait, Work,
};
pub use crash::{CrashPlan, CrashPoint};
pub use migration::Migration;
pub use options::{ActivityOptions, RetryPolicy};
pub use registry::Registry;
pub use resources::Resources;
pub use schedule::{
    CronSchedule, MissedRuns, ScheduleError, ScheduleSpec, run_id as schedule_run_id,
};
#[cfg(feature = "redis")]
pub use store::{AccessCheck, RedisStore, RedisStoreBuilder, redis_connection};
pub use store::{
    Acquired, AdminStore, Applied, BadCursor, Cursor, IndexedRun, Lease, MemoryStore, PageQuery,
    RunList, RunPage, ScheduleStore, Started, Store, StoreError, StoreGauges, Task, Unreadable,
};
pub use worker::{Worker, WorkerBuilder, WorkerError, WorkerHandle};
pub use workflow::{
    ChildError, Command, Resume, Signal, StateInfo, StepError, Transition, Workflow, WorkflowInfo,
};
