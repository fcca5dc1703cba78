//! What a workflow's code sees of its run.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What a workflow's code sees of its run: its id, the time, a
/// deterministic random source.
///
/// Workflow code must not read the wall clock or a random generator
/// directly (`#[workflow]` rejects `SystemTime::now`, `rand::..` and the
/// like): use [`now`](Self::now) and [`random_u64`](Self::random_u64), which
/// follow the runtime's clock (a virtual one in tests).
#[derive(Debug)]
pub struct WorkflowContext {
    workflow_id: String,
    workflow_type: &'static str,
    seq: u64,
    now_ms: u64,
    rng: u64,
}

impl WorkflowContext {
    /// A context for one transition of a run; `now_ms` is the clock at the
    /// start of the transition, in milliseconds since the Unix epoch.
    pub fn new(
        workflow_id: impl Into<String>,
        workflow_type: &'static str,
        seq: u64,
        now_ms: u64,
    ) -> Self {
        let workflow_id = workflow_id.into();
        let rng = seed(&workflow_id, seq);
        Self {
            workflow_id,
            workflow_type,
            seq,
            now_ms,
            rng,
        }
    }

    /// The workflow's id (its idempotency key).
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// The workflow's registered name.
    pub fn workflow_type(&self) -> &'static str {
        self.workflow_type
    }

    /// How many transitions of this run were checkpointed before this one.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The time at which this transition started, on the runtime's clock.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_ms)
    }

    /// [`now`](Self::now) in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// A pseudo-random number, the same for the same workflow id, transition
    /// and call order (so a transition that runs again after a crash draws
    /// the same numbers).
    pub fn random_u64(&mut self) -> u64 {
        // splitmix64: small, fast, and good enough for ids and jitter.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn seed(id: &str, seq: u64) -> u64 {
    // FNV-1a over the id, mixed with the sequence number.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_is_repeatable_per_id_and_seq() {
        let mut a = WorkflowContext::new("order-1", "order", 3, 0);
        let mut b = WorkflowContext::new("order-1", "order", 3, 0);
        let mut c = WorkflowContext::new("order-1", "order", 4, 0);
        let (a1, a2) = (a.random_u64(), a.random_u64());
        assert_eq!((a1, a2), (b.random_u64(), b.random_u64()));
        assert_ne!(a1, a2);
        assert_ne!(a1, c.random_u64());
    }

    #[test]
    fn now_follows_the_given_clock() {
        let ctx = WorkflowContext::new("w", "t", 0, 1_500);
        assert_eq!(ctx.now(), UNIX_EPOCH + Duration::from_millis(1_500));
    }
}
