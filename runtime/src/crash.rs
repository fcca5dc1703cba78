//! Simulated crashes: where a crash test stops a worker dead.

/// A moment in a transition at which a worker can be made to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CrashPoint {
    /// The transition's work is done (activities ran) but its checkpoint is
    /// not written: the work is lost and runs again.
    BeforeCommit,
    /// The checkpoint is written; the worker dies before going on.
    AfterCommit,
}

/// Decides where a worker crashes; install one with
/// [`WorkerBuilder::crash_plan`](crate::WorkerBuilder::crash_plan).
///
/// When [`should_crash`](Self::should_crash) answers `true`, the worker
/// stops at once as if its process had been killed: it drops every run it
/// holds without releasing its lease or acknowledging its task, and its
/// running activities are cancelled. Another worker picks the runs up once
/// their leases expire.
pub trait CrashPlan: Send + Sync + 'static {
    /// Whether to crash at `point` of the commit that takes run
    /// `workflow_id` to sequence number `seq`.
    fn should_crash(&self, workflow_id: &str, seq: u64, point: CrashPoint) -> bool;
}
