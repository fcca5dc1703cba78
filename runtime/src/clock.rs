//! The runtime's clock: the wall clock, or a virtual one for tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the runtime reads the time that workflows see
/// ([`WorkflowContext::now`](crate::WorkflowContext::now)) and that
/// timestamps checkpoints.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        wall_clock_ms()
    }
}

/// Milliseconds since the Unix epoch on the system clock.
pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A clock that runs with the wall clock but can be moved forward by hand:
/// advance it by seven days and a seven-day timer is due. Clones share the
/// same offset.
#[derive(Debug, Default, Clone)]
pub struct ManualClock {
    offset_ms: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock that starts at the wall clock's time.
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock that reads `ms` (milliseconds since the Unix epoch) now, and
    /// runs on from there.
    pub fn starting_at(ms: u64) -> Self {
        let clock = Self::new();
        clock.set_ms(ms);
        clock
    }

    /// Sets the clock to read `ms` now; it runs on from there.
    pub fn set_ms(&self, ms: u64) {
        let offset = i128::from(ms) - i128::from(wall_clock_ms());
        let offset = i64::try_from(offset).unwrap_or(if offset < 0 { i64::MIN } else { i64::MAX });
        self.offset_ms.store(offset, Ordering::SeqCst);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        let offset = self.offset_ms.load(Ordering::SeqCst);
        wall_clock_ms().saturating_add_signed(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_forward() {
        let c = ManualClock::new();
        let before = c.now_ms();
        c.clone().advance(Duration::from_secs(7 * 24 * 3600));
        assert!(c.now_ms() >= before + 7 * 24 * 3600 * 1000);
    }
}
