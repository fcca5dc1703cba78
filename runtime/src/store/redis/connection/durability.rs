//! Commits that wait for replicas: the script and `WAIT` sent in one
//! pipeline, so the wait costs no extra round trip
//! ([`super::ScriptCall::invoke_and_wait`]).
//!
//! Replication in Redis is asynchronous: a write acknowledged by a master
//! that dies before its replica received it is lost when the replica is
//! promoted. `WAIT n timeout` returns once `n` replicas have acknowledged
//! every write sent before it on the connection (or the timeout passed,
//! with how many did). It narrows that window; it does not make Redis
//! strongly consistent (a replica that acknowledged can still lose the
//! write in a crash of its own, depending on its persistence settings).

use std::time::Duration;

/// How many replicas a commit waits for, and for how long at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaAck {
    /// Replicas that must acknowledge the write.
    pub replicas: u32,
    /// How long to wait for them; the commit itself stands either way.
    pub timeout: Duration,
}

impl ReplicaAck {
    /// Waits for `replicas` replicas, at most `timeout`.
    pub fn new(replicas: u32, timeout: Duration) -> Self {
        ReplicaAck { replicas, timeout }
    }
}
