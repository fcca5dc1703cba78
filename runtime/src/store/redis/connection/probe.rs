//! Checks made once at connect time, so that a misconfiguration is a clear
//! error (or a printed warning) instead of retries: whether the user may
//! run what steadfast sends, and what a crash or failover of Redis can lose.

use std::fmt;

use redis::{Script, Value};

use super::error::{ConnectError, FailureKind};
use super::{RedisConnection, Topology};

/// What a Redis user must be allowed to do, as commands with example
/// arguments (keys and channels under the store's prefix).
#[derive(Clone, Debug)]
pub struct Access {
    prefix: String,
    /// Checked inside a script with `redis.acl_check_cmd` (never run).
    checked: Vec<Vec<String>>,
    /// Run as they are: harmless reads of a key that does not exist.
    run: Vec<Vec<String>>,
    scripting: bool,
}

impl Access {
    /// What a worker (and an operator's `steadfast` command that changes
    /// runs) sends: the scripts (`EVALSHA`, `SCRIPT LOAD`), every command
    /// they call, the reads made outside scripts, the blocking task reads,
    /// and the settled-run subscription.
    pub fn worker(prefix: &str) -> Self {
        let key = format!("{prefix}{{s0}}:probe");
        let channel = format!("{prefix}{{s0}}:settled");
        let pattern = format!("{prefix}{{s*}}:settled");
        let k = key.as_str();
        let checked: Vec<Vec<&str>> = vec![
            // Called by the scripts.
            vec!["HSET", k, "f", "v"],
            vec!["HINCRBY", k, "f", "1"],
            vec!["HDEL", k, "f"],
            vec!["HGET", k, "f"],
            vec!["HGETALL", k],
            vec!["HMGET", k, "f"],
            vec!["EXISTS", k],
            vec!["DEL", k],
            vec!["PEXPIRE", k, "1"],
            vec!["LLEN", k],
            vec!["LRANGE", k, "0", "-1"],
            vec!["LREM", k, "0", "v"],
            vec!["RPUSH", k, "v"],
            vec!["XADD", k, "*", "f", "v"],
            vec!["XACK", k, "g", "0-1"],
            vec!["XCLAIM", k, "g", "c", "0", "0-1"],
            vec!["XDEL", k, "0-1"],
            vec!["XPENDING", k, "g"],
            vec!["ZADD", k, "1", "m"],
            vec!["ZRANGEBYSCORE", k, "0", "1"],
            vec!["ZREM", k, "m"],
            vec!["ZREMRANGEBYSCORE", k, "0", "1"],
            vec!["ZSCORE", k, "m"],
            vec!["PUBLISH", &channel, "m"],
            vec!["TIME"],
            // Sent outside the scripts.
            vec!["XREADGROUP", "GROUP", "g", "c", "STREAMS", k, ">"],
            vec!["XGROUP", "CREATE", k, "g", "0", "MKSTREAM"],
            vec!["ZRANGE", k, "0", "-1"],
            vec!["ZREVRANGE", k, "0", "-1"],
            vec!["XRANGE", k, "-", "+"],
            vec!["PSUBSCRIBE", &pattern],
        ];
        Access {
            prefix: prefix.to_owned(),
            checked: owned(checked),
            run: Vec::new(),
            scripting: true,
        }
    }

    /// What the read-only views of the `steadfast` command send (`runs`,
    /// `show`, `history`, `schedules`): reads only, no scripts.
    pub fn reader(prefix: &str) -> Self {
        let key = format!("{prefix}{{s0}}:probe");
        let k = key.as_str();
        let run: Vec<Vec<&str>> = vec![
            vec!["HGETALL", k],
            vec!["HGET", k, "f"],
            vec!["HMGET", k, "f"],
            vec!["LRANGE", k, "0", "-1"],
            vec!["XRANGE", k, "-", "+"],
            vec!["ZRANGE", k, "0", "-1"],
            vec!["ZREVRANGE", k, "0", "-1"],
            vec!["ZRANGEBYSCORE", k, "-inf", "+inf"],
            // The counts of the console's tabs.
            vec!["ZCARD", k],
        ];
        Access {
            prefix: prefix.to_owned(),
            checked: Vec::new(),
            run: owned(run),
            scripting: false,
        }
    }

    /// Also requires `WAIT` (commits that wait for replicas).
    pub fn with_wait(mut self) -> Self {
        self.checked
            .push(vec!["WAIT".into(), "1".into(), "0".into()]);
        self
    }
}

fn owned(commands: Vec<Vec<&str>>) -> Vec<Vec<String>> {
    commands
        .into_iter()
        .map(|c| c.into_iter().map(str::to_owned).collect())
        .collect()
}

/// The script that asks Redis whether the current user may run each
/// command it is given (`redis.acl_check_cmd`, Redis 7+), without running
/// any. Its arguments are the commands, each as its argument count then
/// its arguments; it answers 1 or 0 per command.
const ACL_CHECK: &str = r"
local out, i = {}, 1
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local cmd = {}
  for j = 1, n do cmd[j] = ARGV[i + j] end
  local ok, allowed = pcall(redis.acl_check_cmd, unpack(cmd))
  out[#out + 1] = (ok and allowed) and 1 or 0
  i = i + n + 1
end
return out
";

/// Checks that the connection's user may do everything `access` lists.
/// Fails with [`ConnectError::Permission`] naming every command it may not
/// run (and, when scripts are refused, saying so first), or with
/// [`ConnectError::Auth`] when the credentials are refused.
pub async fn check_access(conn: &RedisConnection, access: &Access) -> Result<(), ConnectError> {
    let target = conn.target();
    let denied = |missing: String, message: String| ConnectError::Permission {
        target: target.to_string(),
        user: target.user_label().to_owned(),
        missing,
        message,
    };
    let mut refused = Vec::new();
    let mut handle = conn.clone();
    for command in &access.run {
        let mut cmd = redis::cmd(&command[0]);
        cmd.arg(&command[1..]);
        if let Err(e) = cmd.query_async::<Value>(&mut handle).await {
            match conn.error(&e) {
                ConnectError::Permission { .. } => refused.push(command[0].clone()),
                other => return Err(other),
            }
        }
    }
    if access.scripting {
        let mut checked = access.checked.clone();
        // What the client library itself sends in these topologies.
        match target.topology() {
            Topology::Cluster { .. } => {
                checked.push(vec!["CLUSTER".into(), "SLOTS".into()]);
                checked.push(vec!["CLUSTER".into(), "NODES".into()]);
            }
            Topology::Sentinel { .. } => checked.push(vec!["ROLE".into()]),
            _ => {}
        }
        let script = Script::new(ACL_CHECK);
        let mut invocation = script.key(format!("{}{{s0}}:probe", access.prefix));
        for command in &checked {
            invocation.arg(command.len());
            for a in command {
                invocation.arg(a);
            }
        }
        let answers: Vec<i64> = match invocation.invoke_async(&mut handle).await {
            Ok(a) => a,
            Err(e) => {
                let error = conn.error(&e);
                return Err(match error.kind() {
                    FailureKind::Permission => denied(
                        "run scripts (EVALSHA and SCRIPT LOAD; ACL `+evalsha +script|load`)".into(),
                        target.scrub(&e.to_string()),
                    ),
                    _ => error,
                });
            }
        };
        for (command, allowed) in checked.iter().zip(answers) {
            if allowed != 1 {
                refused.push(describe_command(command));
            }
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(denied(
        format!("run {}", refused.join(", ")),
        "the ACL refuses these commands on the store's keys and channels".into(),
    ))
}

/// `HSET`, `PSUBSCRIBE steadfast:{s*}:settled`, `CLUSTER SLOTS`: the
/// command, with the channel or subcommand that matters.
fn describe_command(command: &[String]) -> String {
    let name = &command[0];
    match name.as_str() {
        "PSUBSCRIBE" | "PUBLISH" | "CLUSTER" | "XGROUP" => {
            format!("{name} {}", command.get(1).map_or("", |c| c))
        }
        _ => name.clone(),
    }
}

/// What a crash of Redis can lose, from the least to the most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RiskOfLoss {
    /// `appendonly yes`, `appendfsync always`: nothing acknowledged.
    Nothing,
    /// `appendfsync everysec`: about the last second of commits.
    AboutOneSecond,
    /// `appendfsync no`: what the operating system had not yet written
    /// (up to about 30 s on Linux).
    UnflushedWrites,
    /// Snapshots only (`save ...`): everything since the last snapshot.
    SinceLastSnapshot,
    /// No persistence: everything.
    Everything,
}

impl RiskOfLoss {
    /// Reads `appendonly`, `appendfsync` and `save`.
    pub fn of(append_only: bool, append_fsync: &str, save: &str) -> Self {
        match (append_only, append_fsync, save.trim().is_empty()) {
            (true, "always", _) => RiskOfLoss::Nothing,
            (true, "everysec", _) => RiskOfLoss::AboutOneSecond,
            (true, _, _) => RiskOfLoss::UnflushedWrites,
            (false, _, false) => RiskOfLoss::SinceLastSnapshot,
            (false, _, true) => RiskOfLoss::Everything,
        }
    }
}

impl fmt::Display for RiskOfLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RiskOfLoss::Nothing => "a crash loses nothing acknowledged",
            RiskOfLoss::AboutOneSecond => "a crash can lose about the last second of commits",
            RiskOfLoss::UnflushedWrites => {
                "a crash can lose what the OS had not written yet (about 30 s)"
            }
            RiskOfLoss::SinceLastSnapshot => "a crash loses every commit since the last snapshot",
            RiskOfLoss::Everything => "a restart loses every checkpoint",
        })
    }
}

/// One master's persistence settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodePersistence {
    /// The node (`host:port`), or `-` for the only server.
    pub node: String,
    /// `appendonly`.
    pub append_only: bool,
    /// `appendfsync`.
    pub append_fsync: String,
    /// `save` (empty: no snapshots).
    pub save: String,
    /// What a crash of this node can lose.
    pub risk: RiskOfLoss,
}

/// What a crash or failover of Redis can lose, as a value the store and the
/// `steadfast` command print.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PersistenceReport {
    /// Each master's settings (one for a single server or Sentinel).
    pub nodes: Vec<NodePersistence>,
    /// Why some settings could not be read (`CONFIG GET` refused, as on
    /// many managed services), if so.
    pub unreadable: Option<String>,
    /// Whether a failover to a replica is possible (Cluster, Sentinel):
    /// replication is asynchronous, so it can lose commits the replica had
    /// not received, whatever the settings.
    pub replicated: bool,
}

impl PersistenceReport {
    /// The worst risk over the masters read.
    pub fn risk(&self) -> Option<RiskOfLoss> {
        self.nodes.iter().map(|n| n.risk).max()
    }

    /// Whether a crash or failover can lose acknowledged commits (also when
    /// the settings could not be read).
    pub fn can_lose_data(&self) -> bool {
        self.replicated
            || self.unreadable.is_some()
            || self.risk().is_none_or(|r| r > RiskOfLoss::Nothing)
    }
}

impl fmt::Display for PersistenceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(risk) = self.risk() {
            let worst: Vec<&str> = self
                .nodes
                .iter()
                .filter(|n| n.risk == risk)
                .map(|n| n.node.as_str())
                .collect();
            let settings = self.nodes.iter().find(|n| n.risk == risk).map(|n| {
                format!(
                    "appendonly {}, appendfsync {}, save \"{}\"",
                    if n.append_only { "yes" } else { "no" },
                    n.append_fsync,
                    n.save
                )
            });
            let on = if self.nodes.len() > 1 {
                format!(" (on {})", worst.join(", "))
            } else {
                String::new()
            };
            parts.push(format!("{}: {risk}{on}", settings.unwrap_or_default()));
        }
        if let Some(why) = &self.unreadable {
            parts.push(format!(
                "persistence settings unreadable ({why}): assume a crash can lose data"
            ));
        }
        if self.replicated {
            parts.push(
                "replication is asynchronous: a failover loses commits the replica had not \
                 received, unless commits wait for replicas"
                    .into(),
            );
        }
        f.write_str(&parts.join("; "))
    }
}

/// Reads each master's persistence settings (`CONFIG GET appendonly
/// appendfsync save`). A refused `CONFIG GET` is reported in
/// [`PersistenceReport::unreadable`], not as an error; a server that cannot
/// be reached is an error.
pub async fn persistence(conn: &RedisConnection) -> Result<PersistenceReport, ConnectError> {
    let mut cmd = redis::cmd("CONFIG");
    cmd.arg("GET")
        .arg("appendonly")
        .arg("appendfsync")
        .arg("save");
    let replies: Vec<(String, Result<Value, redis::RedisError>)> =
        conn.each_master(&cmd).await.map_err(|e| conn.error(&e))?;
    let mut report = PersistenceReport {
        nodes: Vec::new(),
        unreadable: None,
        replicated: !matches!(conn.target().topology(), Topology::Single { .. }),
    };
    for (node, reply) in replies {
        match reply {
            Ok(value) => {
                let settings = config_pairs(value);
                let get = |name: &str| {
                    settings
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let append_only = get("appendonly") == "yes";
                let append_fsync = get("appendfsync");
                let save = get("save");
                report.nodes.push(NodePersistence {
                    risk: RiskOfLoss::of(append_only, &append_fsync, &save),
                    node,
                    append_only,
                    append_fsync,
                    save,
                });
            }
            Err(e) => match conn.error(&e) {
                ConnectError::Permission { .. } | ConnectError::Server { .. } => {
                    report.unreadable =
                        Some(format!("{node}: {}", conn.target().scrub(&e.to_string())));
                }
                other => return Err(other),
            },
        }
    }
    Ok(report)
}

/// `CONFIG GET`'s answer (a flat array, or a map in RESP3) as pairs.
fn config_pairs(value: Value) -> Vec<(String, String)> {
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        _ => String::new(),
    };
    match value {
        Value::Map(kvs) => kvs.iter().map(|(k, v)| (text(k), text(v))).collect(),
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|c| match c {
                [k, v] => Some((text(k), text(v))),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risks_follow_the_settings() {
        assert_eq!(RiskOfLoss::of(true, "always", ""), RiskOfLoss::Nothing);
        assert_eq!(
            RiskOfLoss::of(true, "everysec", "3600 1"),
            RiskOfLoss::AboutOneSecond
        );
        assert_eq!(RiskOfLoss::of(true, "no", ""), RiskOfLoss::UnflushedWrites);
        assert_eq!(
            RiskOfLoss::of(false, "always", "3600 1"),
            RiskOfLoss::SinceLastSnapshot
        );
        assert_eq!(
            RiskOfLoss::of(false, "everysec", ""),
            RiskOfLoss::Everything
        );
    }

    #[test]
    fn a_report_names_the_worst_node_and_replication() {
        let node = |name: &str, fsync: &str| NodePersistence {
            node: name.into(),
            append_only: true,
            append_fsync: fsync.into(),
            save: String::new(),
            risk: RiskOfLoss::of(true, fsync, ""),
        };
        let report = PersistenceReport {
            nodes: vec![node("a:1", "always"), node("b:2", "everysec")],
            unreadable: None,
            replicated: true,
        };
        assert_eq!(report.risk(), Some(RiskOfLoss::AboutOneSecond));
        assert!(report.can_lose_data());
        let text = report.to_string();
        assert!(
            text.contains("appendfsync everysec") && text.contains("(on b:2)"),
            "{text}"
        );
        assert!(text.contains("failover"), "{text}");
        let safe = PersistenceReport {
            nodes: vec![node("-", "always")],
            unreadable: None,
            replicated: false,
        };
        assert!(!safe.can_lose_data(), "{safe}");
    }
}
