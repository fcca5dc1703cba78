//! The console's pages.

pub(crate) mod catalog;
pub(crate) mod layout;
pub(crate) mod run;
mod run_parts;
pub(crate) mod runs;
pub(crate) mod schedules;
