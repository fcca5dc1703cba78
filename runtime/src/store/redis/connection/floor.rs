//! The least durability a store may start with
//! ([`RedisStoreBuilder::require`](crate::store::redis::RedisStoreBuilder::require)):
//! what a crash of a master may lose at most, and how many replicas each
//! master must have. The rule is a pure function of what the servers
//! report ([`DurabilityFloor::shortfall`]); reading them is
//! [`persistence`](super::persistence) and [`replicas`].

use std::fmt;

use redis::Value;

use super::probe::{PersistenceReport, RiskOfLoss};
use super::{ConnectError, RedisConnection};

/// The least durability a worker may start with.
///
/// ```
/// use steadfast_runtime::redis_connection::{DurabilityFloor, RiskOfLoss};
///
/// // Every commit on disk before it returns, and one replica per master.
/// let floor = DurabilityFloor::crash_loses_at_most(RiskOfLoss::Nothing).with_replicas(1);
/// assert_eq!(floor.replicas, 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DurabilityFloor {
    /// The most a crash of one master may lose (`RiskOfLoss::Nothing` needs
    /// `appendonly yes` and `appendfsync always` on every master).
    pub at_most: RiskOfLoss,
    /// How many replicas each master must have connected (0: none needed).
    /// Commits wait for them only with
    /// [`wait_for_replicas`](crate::store::redis::RedisStoreBuilder::wait_for_replicas).
    pub replicas: u32,
}

impl DurabilityFloor {
    /// A floor on what a crash of a master may lose, with no replica
    /// needed.
    pub fn crash_loses_at_most(at_most: RiskOfLoss) -> Self {
        DurabilityFloor {
            at_most,
            replicas: 0,
        }
    }

    /// Also needs `replicas` replicas connected to every master.
    pub fn with_replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    /// What the servers fall short of, one line per shortfall, or nothing
    /// when they meet the floor. Settings that could not be read fall
    /// short: the floor must be proven, not assumed.
    pub fn shortfall(
        &self,
        report: &PersistenceReport,
        replicas: &[MasterReplicas],
    ) -> Vec<String> {
        let mut short = Vec::new();
        if let Some(why) = &report.unreadable {
            short.push(format!(
                "the persistence settings cannot be read ({why}); grant `+config|get` \
                 or lower the requirement"
            ));
        }
        for node in report.nodes.iter().filter(|n| n.risk > self.at_most) {
            short.push(format!(
                "{}: appendonly {}, appendfsync {}, save \"{}\": {}, but at most this is \
                 required: {}",
                node.node,
                if node.append_only { "yes" } else { "no" },
                node.append_fsync,
                node.save,
                node.risk,
                self.at_most
            ));
        }
        if report.nodes.is_empty() && report.unreadable.is_none() {
            short.push("no master reported its persistence settings".to_owned());
        }
        if self.replicas > 0 {
            for master in replicas.iter().filter(|m| m.connected < self.replicas) {
                short.push(format!(
                    "{}: {} replica(s) connected, {} required",
                    master.node, master.connected, self.replicas
                ));
            }
            if replicas.is_empty() {
                short.push("no master reported its replicas".to_owned());
            }
        }
        short
    }
}

impl fmt::Display for DurabilityFloor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at most: {}", self.at_most)?;
        if self.replicas > 0 {
            write!(f, "; {} replica(s) per master", self.replicas)?;
        }
        Ok(())
    }
}

/// How many replicas one master has connected (`INFO replication`,
/// `connected_slaves`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MasterReplicas {
    /// The master (`host:port`, or `-` for the only server).
    pub node: String,
    /// Its connected replicas.
    pub connected: u32,
}

/// Reads how many replicas each master has connected. A master whose
/// answer does not read counts as having none.
pub async fn replicas(conn: &RedisConnection) -> Result<Vec<MasterReplicas>, ConnectError> {
    let mut cmd = redis::cmd("INFO");
    cmd.arg("replication");
    let replies = conn.each_master(&cmd).await.map_err(|e| conn.error(&e))?;
    let mut masters = Vec::new();
    for (node, reply) in replies {
        let reply = reply.map_err(|e| conn.error(&e))?;
        masters.push(MasterReplicas {
            node,
            connected: connected_replicas(&reply).unwrap_or(0),
        });
    }
    Ok(masters)
}

/// `connected_slaves:<n>` in an `INFO replication` answer.
fn connected_replicas(reply: &Value) -> Option<u32> {
    let text = match reply {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::VerbatimString { text, .. } => text.clone(),
        Value::SimpleString(s) => s.clone(),
        _ => return None,
    };
    text.lines()
        .find_map(|line| line.trim().strip_prefix("connected_slaves:"))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::super::probe::NodePersistence;
    use super::*;

    fn node(name: &str, append_only: bool, fsync: &str, save: &str) -> NodePersistence {
        NodePersistence {
            node: name.to_owned(),
            append_only,
            append_fsync: fsync.to_owned(),
            save: save.to_owned(),
            risk: RiskOfLoss::of(append_only, fsync, save),
        }
    }

    fn report(nodes: Vec<NodePersistence>) -> PersistenceReport {
        PersistenceReport {
            nodes,
            unreadable: None,
            replicated: false,
        }
    }

    #[test]
    fn a_floor_names_each_master_below_it() {
        let floor = DurabilityFloor::crash_loses_at_most(RiskOfLoss::AboutOneSecond);
        let ok = report(vec![
            node("a:1", true, "always", ""),
            node("b:1", true, "everysec", ""),
        ]);
        assert!(floor.shortfall(&ok, &[]).is_empty());
        let short = report(vec![
            node("a:1", true, "everysec", ""),
            node("b:1", false, "everysec", ""),
        ]);
        let lines = floor.shortfall(&short, &[]);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("b:1: appendonly no"), "{lines:?}");
        assert!(lines[0].contains("every checkpoint"), "{lines:?}");
    }

    #[test]
    fn unreadable_settings_and_missing_replicas_fall_short() {
        let floor = DurabilityFloor::crash_loses_at_most(RiskOfLoss::Everything).with_replicas(1);
        let mut unread = report(vec![]);
        unread.unreadable = Some("-: NOPERM".to_owned());
        let lines = floor.shortfall(
            &unread,
            &[MasterReplicas {
                node: "-".to_owned(),
                connected: 0,
            }],
        );
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("cannot be read"), "{lines:?}");
        assert!(
            lines[1].contains("0 replica(s) connected, 1 required"),
            "{lines:?}"
        );
    }

    #[test]
    fn info_replication_reads() {
        let info = Value::BulkString(
            b"# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=x\r\n".to_vec(),
        );
        assert_eq!(connected_replicas(&info), Some(2));
        assert_eq!(connected_replicas(&Value::Nil), None);
    }
}
