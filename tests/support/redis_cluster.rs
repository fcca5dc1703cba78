//! A private Redis Cluster for one test: 3 masters and 3 replicas on
//! loopback, each on a free port with its own directory, created with
//! `redis-cli --cluster create`. A short `cluster-node-timeout` makes a
//! failover take a couple of seconds.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::redis_proc::{RedisProcess, private_dir, require, wait_until};
use super::redis_server::free_port;
use super::redis_tls::TestCerts;

/// How long a node may be unreachable before it is failed over (ms): short,
/// so a failover takes a few seconds, but not so short that a node starved
/// of CPU on a loaded 2-core machine is failed over by mistake.
pub const NODE_TIMEOUT_MS: u64 = 2000;

/// The cluster's nodes, killed and removed when dropped.
pub struct RedisCluster {
    pub nodes: Vec<RedisProcess>,
    /// Each node's TLS port, for a cluster started with TLS.
    pub tls_ports: Vec<Option<u16>>,
    dir: PathBuf,
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct NodeLine {
    pub id: String,
    pub port: u16,
    pub master: bool,
    pub failed: bool,
    /// The id of its master, for a replica.
    pub master_id: Option<String>,
    pub slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// Starts 6 nodes and joins them into 3 masters with a replica each;
    /// returns once every node sees `cluster_state:ok` and every replica
    /// is in sync.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// The same with every node also listening for TLS (with `certs`), and
    /// the cluster bus and replication over TLS.
    pub fn start_tls(certs: &TestCerts) -> Self {
        Self::start_with(Some(certs))
    }

    fn start_with(certs: Option<&TestCerts>) -> Self {
        require("redis-cli", "redis-server");
        let dir = private_dir("cluster");
        let mut nodes = Vec::new();
        let mut tls_ports = Vec::new();
        for i in 0..6 {
            let node_dir = dir.join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir).expect("creates a node directory");
            let extra: Vec<String> = [
                "--save",
                "",
                "--appendonly",
                "no",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                &NODE_TIMEOUT_MS.to_string(),
                // A replica may always be promoted, however long it was
                // disconnected: the tests kill masters on purpose.
                "--cluster-replica-validity-factor",
                "0",
                "--cluster-port",
                &free_port().to_string(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let mut extra = extra;
            let mut tls_port = None;
            if let Some(certs) = certs {
                let port = free_port();
                tls_port = Some(port);
                extra.extend(certs.server_args(port, false));
                extra
                    .extend(["--tls-cluster", "yes", "--tls-replication", "yes"].map(String::from));
            }
            nodes.push(RedisProcess::start(&node_dir, None, &extra));
            tls_ports.push(tls_port);
        }
        // Owned from here, so that a failure below still removes it all.
        let cluster = RedisCluster {
            nodes,
            tls_ports,
            dir,
        };
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for n in &cluster.nodes {
            create.arg(n.addr());
        }
        let out = create
            .arg("--cluster-replicas")
            .arg("1")
            .arg("--cluster-yes")
            .output()
            .expect("runs redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    /// `rediss+cluster://` URL with two seed nodes' TLS ports and the CA.
    pub fn tls_url(&self, ca: &std::path::Path) -> String {
        let port = |i: usize| self.tls_ports.get(i).copied().flatten().unwrap_or(0);
        format!(
            "rediss+cluster://127.0.0.1:{},127.0.0.1:{}?ca_file={}",
            port(0),
            port(1),
            ca.display()
        )
    }

    /// `redis+cluster://` URL with two seed nodes.
    pub fn url(&self) -> String {
        format!(
            "redis+cluster://{},{}",
            self.nodes[0].addr(),
            self.nodes[1].addr()
        )
    }

    fn running(&self) -> impl Iterator<Item = &RedisProcess> {
        self.nodes.iter().filter(|n| n.is_running())
    }

    /// Waits until every running node reports `cluster_state:ok`, knows all
    /// slots, and each master of a slot range has an in-sync replica.
    pub fn wait_healthy(&self, within: Duration) {
        wait_until("a healthy cluster", within, || {
            for n in self.running() {
                let info = n.cli(&["CLUSTER", "INFO"]);
                if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_ok:16384") {
                    return Err(format!("{}: {info}", n.port));
                }
            }
            for n in self.running() {
                if n.info_field("replication", "role").as_deref() == Some("slave")
                    && n.info_field("replication", "master_link_status").as_deref() != Some("up")
                {
                    return Err(format!("replica {} not in sync", n.port));
                }
            }
            Ok(())
        });
    }

    /// `CLUSTER NODES` as seen by a running node.
    pub fn layout(&self) -> Vec<NodeLine> {
        let Some(n) = self.running().next() else {
            return Vec::new();
        };
        parse_nodes(&n.cli(&["CLUSTER", "NODES"]))
    }

    /// Runs `redis-cli -c` (following redirections) against a running
    /// node; returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let n = self.running().next().expect("a running node");
        let out = Command::new("redis-cli")
            .arg("-c")
            .arg("-p")
            .arg(n.port.to_string())
            .args(args)
            .output()
            .expect("runs redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The slot of `key`.
    pub fn slot_of(&self, key: &str) -> u16 {
        let n = self.running().next().expect("a running node");
        n.cli(&["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .expect("CLUSTER KEYSLOT answers a number")
    }

    /// The port of the master serving `slot`, as a running node sees it.
    pub fn master_of(&self, slot: u16) -> Option<u16> {
        self.layout()
            .into_iter()
            .find(|l| {
                l.master && !l.failed && l.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
            })
            .map(|l| l.port)
    }

    /// The port of a replica of the master on `master_port`, in sync.
    pub fn replica_of(&self, master_port: u16) -> Option<u16> {
        let layout = self.layout();
        let id = layout.iter().find(|l| l.port == master_port)?.id.clone();
        layout
            .iter()
            .find(|l| !l.failed && l.master_id.as_deref() == Some(id.as_str()))
            .map(|l| l.port)
    }

    /// The node process on `port`.
    pub fn node(&self, port: u16) -> Option<&RedisProcess> {
        self.nodes.iter().find(|n| n.port == port)
    }

    /// Kills (SIGKILL) the node on `port`.
    pub fn kill_node(&mut self, port: u16) {
        if let Some(n) = self.nodes.iter_mut().find(|n| n.port == port) {
            n.kill();
        }
    }

    /// Kills (SIGKILL) the master serving `key`'s slot; returns its port
    /// and the slot. See [`RedisCluster::wait_failover`].
    pub fn kill_master_of(&mut self, key: &str) -> (u16, u16) {
        let slot = self.slot_of(key);
        let old = self.master_of(slot).expect("the slot has a master");
        if let Some(n) = self.nodes.iter_mut().find(|n| n.port == old) {
            n.kill();
        }
        (old, slot)
    }

    /// Waits until a node other than `old` serves `slot` and every running
    /// node reports `cluster_state:ok`; returns the new master's port.
    pub fn wait_failover(&self, slot: u16, old: u16) -> u16 {
        let mut new = 0;
        wait_until(
            "a replica promoted in place of the killed master",
            Duration::from_secs(60),
            || match self.master_of(slot) {
                Some(p) if p != old => {
                    new = p;
                    Ok(())
                }
                other => Err(format!("slot {slot} served by {other:?}")),
            },
        );
        wait_until(
            "cluster_state:ok after the failover",
            Duration::from_secs(60),
            || {
                for n in self.running() {
                    let info = n.cli(&["CLUSTER", "INFO"]);
                    if !info.contains("cluster_state:ok") {
                        return Err(format!("{}: {info}", n.port));
                    }
                }
                Ok(())
            },
        );
        new
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Parses `CLUSTER NODES`.
pub fn parse_nodes(text: &str) -> Vec<NodeLine> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let addr = fields.get(1)?;
            let flags = fields.get(2)?;
            let port = addr.split('@').next()?.rsplit_once(':')?.1.parse().ok()?;
            let slots = fields
                .iter()
                .skip(8)
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|x| (x, x)),
                })
                .collect();
            Some(NodeLine {
                id: (*fields.first()?).to_owned(),
                master_id: fields
                    .get(3)
                    .filter(|m| **m != "-")
                    .map(|m| (*m).to_owned()),
                port,
                master: flags.split(',').any(|f| f == "master"),
                failed: flags.split(',').any(|f| f == "fail" || f == "fail?"),
                slots,
            })
        })
        .collect()
}
