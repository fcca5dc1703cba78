//! How an activity is run: its timeout and its retry policy.

use std::time::Duration;

/// How one activity is run: how long an attempt may take and how failures
/// are retried. Set with `#[activity(timeout = "..", retry(..))]`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ActivityOptions {
    /// The longest one attempt may run (start to close). An attempt that
    /// runs longer is cancelled and counts as a failed, retryable attempt.
    pub timeout: Duration,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
}

impl ActivityOptions {
    /// The options of an activity with no attributes: a one-minute timeout
    /// and [`RetryPolicy::default`].
    pub const DEFAULT: ActivityOptions = ActivityOptions {
        timeout: Duration::from_secs(60),
        retry: RetryPolicy::DEFAULT,
    };

    /// Options with the given timeout and retry policy.
    pub fn new(timeout: Duration, retry: RetryPolicy) -> Self {
        Self { timeout, retry }
    }
}

impl Default for ActivityOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Bounded retries with exponential backoff.
///
/// Attempt `n` (counting from 1) that fails is followed, if `n <
/// max_attempts`, by a wait of `initial_interval * backoff_coefficient^(n-1)`,
/// capped at `max_interval`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included; at least 1.
    pub max_attempts: u32,
    /// The wait after the first failed attempt.
    pub initial_interval: Duration,
    /// Each further wait is the previous one times this (at least 1.0).
    pub backoff_coefficient: f64,
    /// No wait is longer than this.
    pub max_interval: Duration,
}

impl RetryPolicy {
    /// Three attempts, waiting 1 s then 2 s, never more than 60 s.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        initial_interval: Duration::from_secs(1),
        backoff_coefficient: 2.0,
        max_interval: Duration::from_secs(60),
    };

    /// A policy that never retries: one attempt.
    pub const NONE: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::DEFAULT
    };

    /// A policy with every field given; `max_attempts` below 1 counts as 1
    /// and a coefficient below 1.0 as 1.0.
    pub fn new(
        max_attempts: u32,
        initial_interval: Duration,
        backoff_coefficient: f64,
        max_interval: Duration,
    ) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            initial_interval,
            backoff_coefficient: if backoff_coefficient.is_finite() {
                backoff_coefficient.max(1.0)
            } else {
                1.0
            },
            max_interval,
        }
    }

    /// The wait after failed attempt `attempt` (1-based), or `None` when
    /// that was the last attempt the policy allows.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let factor = self.backoff_coefficient.powi(exponent);
        let secs = self.initial_interval.as_secs_f64() * factor;
        let capped = secs.min(self.max_interval.as_secs_f64());
        Some(Duration::try_from_secs_f64(capped).unwrap_or(self.max_interval))
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::new(
            5,
            Duration::from_millis(100),
            3.0,
            Duration::from_millis(500),
        );
        assert_eq!(p.delay_after(1), Some(Duration::from_millis(100)));
        assert_eq!(p.delay_after(2), Some(Duration::from_millis(300)));
        assert_eq!(p.delay_after(3), Some(Duration::from_millis(500)));
        assert_eq!(p.delay_after(4), Some(Duration::from_millis(500)));
        assert_eq!(p.delay_after(5), None);
    }

    #[test]
    fn one_attempt_never_retries() {
        assert_eq!(RetryPolicy::NONE.delay_after(1), None);
        assert_eq!(
            RetryPolicy::new(0, Duration::ZERO, 0.5, Duration::ZERO).max_attempts,
            1
        );
    }
}
