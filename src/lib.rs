#![doc = include_str!("../docs/overview.md")]

#[doc = include_str!("../docs/workflow-macro.md")]
pub use steadfast_macros::workflow;

#[doc = include_str!("../docs/activity-macro.md")]
pub use steadfast_macros::activity;

#[doc(inline)]
pub use steadfast_runtime::*;

#[doc(hidden)]
pub use steadfast_runtime::__private;

/// Guides: the pages of `docs/` whose code is compiled as doctests.
pub mod guide {
    #[doc = include_str!("../docs/lifecycle.md")]
    pub mod lifecycle {}

    #[doc = include_str!("../docs/versioning.md")]
    pub mod versioning {}

    #[doc = include_str!("../docs/testing.md")]
    pub mod testing {}

    #[doc = include_str!("../docs/observability.md")]
    pub mod observability {}
}

/// Everything a workflow module needs: `use steadfast::prelude::*;`.
pub mod prelude {
    pub use steadfast_macros::{activity, workflow};
    pub use steadfast_runtime::{
        ActivityContext, ActivityError, ActivityFailure, ChildError, Client, MemoryStore, RunError,
        RunHandle, ScheduleOptions, Signal, StartOptions, Worker, WorkflowContext,
    };
}
