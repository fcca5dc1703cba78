//! One call of a Lua script by its hash, written straight into the command
//! that is sent. (`redis::ScriptInvocation` keeps each key and argument in
//! a vector of its own and copies them all again into the command: two
//! allocations and a copy per argument, on every commit.)

use redis::aio::ConnectionLike;
use redis::{Cmd, ErrorKind, FromRedisValue, RedisResult, Script, ServerErrorKind, ToRedisArgs};

use super::durability::ReplicaAck;

/// `EVALSHA` of `script` with its keys and arguments, loading the script
/// first when the server does not know it (after a restart, say).
///
/// The number of keys is given first (`EVALSHA` writes it before them);
/// then exactly that many [`Self::key`] calls, then [`Self::arg`]s. A
/// wrong count would route a call to the wrong node of a cluster, so it is
/// checked (in debug builds) when the call is sent.
pub struct ScriptCall<'a> {
    script: &'a Script,
    cmd: Cmd,
    keys: usize,
    keys_given: usize,
}

impl<'a> ScriptCall<'a> {
    /// A call of `script` with `keys` keys; `args` (keys included) and
    /// `bytes` size the command (a guess is fine).
    pub fn new(script: &'a Script, keys: usize, args: usize, bytes: usize) -> Self {
        let mut cmd = Cmd::with_capacity(3 + args, 64 + bytes);
        cmd.arg("EVALSHA")
            .arg(script.get_hash().as_bytes())
            .arg(keys);
        ScriptCall {
            script,
            cmd,
            keys,
            keys_given: 0,
        }
    }

    /// Adds a key.
    pub fn key<T: ToRedisArgs>(&mut self, key: T) -> &mut Self {
        debug_assert!(self.keys_given < self.keys, "more keys than announced");
        self.keys_given += 1;
        self.cmd.arg(key);
        self
    }

    /// Adds an argument, after every key.
    pub fn arg<T: ToRedisArgs>(&mut self, value: T) -> &mut Self {
        debug_assert_eq!(
            self.keys_given, self.keys,
            "an argument before the last key"
        );
        self.cmd.arg(value);
        self
    }

    /// Runs the call.
    pub async fn invoke<T, C>(&self, conn: &mut C) -> RedisResult<T>
    where
        T: FromRedisValue,
        C: ConnectionLike,
    {
        debug_assert_eq!(self.keys_given, self.keys, "fewer keys than announced");
        match self.cmd.query_async(conn).await {
            Err(e) if unknown_script(&e) => {
                self.script.load_async(conn).await?;
                self.cmd.query_async(conn).await
            }
            other => other,
        }
    }

    /// Runs the call followed by `WAIT` in one round trip (on a cluster the
    /// pipeline goes to the master of the script's slot, so `WAIT` counts
    /// that master's replicas). Returns the script's answer and how many
    /// replicas acknowledged; fewer than asked means the write is committed
    /// on the master but may be lost in a failover.
    pub async fn invoke_and_wait<T, C>(
        &self,
        conn: &mut C,
        ack: ReplicaAck,
    ) -> RedisResult<(T, u32)>
    where
        T: FromRedisValue,
        C: ConnectionLike,
    {
        debug_assert_eq!(self.keys_given, self.keys, "fewer keys than announced");
        let timeout_ms = u64::try_from(ack.timeout.as_millis()).unwrap_or(u64::MAX);
        let mut pipe = redis::pipe();
        pipe.add_command(self.cmd.clone())
            .cmd("WAIT")
            .arg(ack.replicas)
            .arg(timeout_ms);
        match pipe.query_async::<(T, u32)>(conn).await {
            Err(e) if unknown_script(&e) => {
                self.script.load_async(conn).await?;
                pipe.query_async(conn).await
            }
            other => other,
        }
    }
}

fn unknown_script(e: &redis::RedisError) -> bool {
    e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) || e.code() == Some("NOSCRIPT")
}
