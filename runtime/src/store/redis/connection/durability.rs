//! Commits that wait for replicas: the script and `WAIT` sent in one
//! pipeline, so the wait costs no extra round trip.
//!
//! Replication in Redis is asynchronous: a write acknowledged by a master
//! that dies before its replica received it is lost when the replica is
//! promoted. `WAIT n timeout` returns once `n` replicas have acknowledged
//! every write sent before it on the connection (or the timeout passed,
//! with how many did). It narrows that window; it does not make Redis
//! strongly consistent (a replica that acknowledged can still lose the
//! write in a crash of its own, depending on its persistence settings).

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{FromRedisValue, RedisResult, ScriptInvocation};

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

/// Runs `invocation` followed by `WAIT` in one round trip (on a cluster the
/// pipeline goes to the master of the script's slot, so `WAIT` counts that
/// master's replicas). Returns the script's answer and how many replicas
/// acknowledged; fewer than asked means the write is committed on the
/// master but may be lost in a failover. A script the server does not know
/// yet is loaded and the pipeline sent again.
pub async fn invoke_and_wait<T, C>(
    conn: &mut C,
    invocation: &ScriptInvocation<'_>,
    ack: ReplicaAck,
) -> RedisResult<(T, u32)>
where
    T: FromRedisValue,
    C: ConnectionLike,
{
    let timeout_ms = u64::try_from(ack.timeout.as_millis()).unwrap_or(u64::MAX);
    let mut pipe = redis::pipe();
    pipe.invoke_script(invocation)
        .cmd("WAIT")
        .arg(ack.replicas)
        .arg(timeout_ms);
    match pipe.query_async::<(T, u32)>(conn).await {
        Err(e) if e.code() == Some("NOSCRIPT") => {
            invocation.load_async(conn).await?;
            pipe.query_async(conn).await
        }
        other => other,
    }
}
