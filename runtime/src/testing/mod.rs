//! Testing workflows and stores.
//!
//! - [`InterruptEverywhere`]: crash a run at every transition and check that
//!   it ends exactly as an uninterrupted run does.
//! - [`conformance`]: the scenarios every [`Store`](crate::Store)
//!   implementation must pass.

pub mod conformance;
mod interrupt;

pub use interrupt::{InterruptEverywhere, InterruptFailure, InterruptReport, RunOutcome};
