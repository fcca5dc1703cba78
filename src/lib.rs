//! steadfast: durable workflows and sagas.
pub use steadfast_runtime::*;
