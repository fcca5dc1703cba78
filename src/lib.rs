//! steadfast: durable workflows and sagas for Rust.
#![doc = include_str!("../docs/overview.md")]

#[doc(inline)]
pub use steadfast_macros::{activity, workflow};
#[doc(inline)]
pub use steadfast_runtime::*;

#[doc(hidden)]
pub use steadfast_runtime::__private;

/// Everything a workflow module needs: `use steadfast::prelude::*;`.
pub mod prelude {
    pub use steadfast_macros::{activity, workflow};
    pub use steadfast_runtime::{
        ActivityContext, ActivityError, ActivityFailure, Client, MemoryStore, RunError, RunHandle,
        StartOptions, Worker, WorkflowContext,
    };
}
