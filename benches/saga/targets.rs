//! Where the benchmark's Redis comes from, and what can be measured of it:
//! a private `redis-server` per durability mode, a private master with a
//! replica (commits with and without `WAIT 1`), a private Redis Cluster of
//! 3 masters and 3 replicas, or the Redis at `REDIS_URL` / `--redis-url`.

use std::any::Any;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use steadfast::RedisStore;

use crate::redis_cluster::RedisCluster;
use crate::redis_proc::{RedisProcess, private_dir, wait_until};
use crate::redis_server::{Durability, RedisServer};

/// How long a commit waits for its replica at most.
const WAIT_TIMEOUT: Duration = Duration::from_secs(2);

/// One column of the results table: a Redis and how the store uses it.
pub(crate) struct Target {
    /// The column's title.
    pub(crate) label: String,
    pub(crate) url: String,
    pub(crate) shards: u32,
    /// Keys of this target start with it, so that targets sharing servers
    /// (and a Redis given by URL) keep apart.
    pub(crate) prefix: String,
    /// Replicas every commit waits for (0: no `WAIT`).
    pub(crate) replicas: u32,
    /// The redis-server process whose CPU and memory are read, when there
    /// is one of ours.
    pub(crate) pid: Option<String>,
    /// The port whose `INFO commandstats` is read, when there is one.
    stats_port: Option<u16>,
    /// The servers, kept running while the target lives.
    _servers: Rc<dyn Any>,
}

impl Target {
    /// A private server keeping data as `durability` says.
    pub(crate) fn private(durability: Durability) -> Self {
        let server = RedisServer::start_with(durability);
        let mode = match durability {
            Durability::EverySec => "everysec",
            Durability::Always => "always",
            Durability::None => "none",
        };
        Target {
            label: format!("appendfsync {mode}"),
            url: server.url(),
            shards: 1,
            prefix: "steadfast:".to_owned(),
            replicas: 0,
            pid: server.pid().map(|p| p.to_string()),
            stats_port: Some(server.port),
            _servers: Rc::new(server),
        }
    }

    /// A private master (`appendfsync everysec`) with one replica: two
    /// targets on it, commits without `WAIT` and commits waiting for the
    /// replica, measured in the same run.
    pub(crate) fn replicated() -> [Self; 2] {
        let pair = Rc::new(Pair::start());
        let make = |replicas: u32, label: &str| Target {
            label: label.to_owned(),
            url: format!("redis://127.0.0.1:{}/", pair.master.port),
            shards: 1,
            prefix: format!("wait{replicas}:"),
            replicas,
            pid: pair.master.pid().map(|p| p.to_string()),
            stats_port: Some(pair.master.port),
            _servers: pair.clone(),
        };
        [make(0, "replica, no WAIT"), make(1, "replica, WAIT 1")]
    }

    /// A private Redis Cluster (3 masters, 3 replicas, no persistence),
    /// runs over `shards` shards: commits without and with `WAIT 1`.
    pub(crate) fn cluster(shards: u32) -> [Self; 2] {
        let cluster = Rc::new(RedisCluster::start());
        let make = |replicas: u32, label: &str| Target {
            label: label.to_owned(),
            url: cluster.url(),
            shards,
            prefix: format!("cluster{replicas}:"),
            replicas,
            pid: None,
            stats_port: None,
            _servers: cluster.clone(),
        };
        [make(0, "cluster, no WAIT"), make(1, "cluster, WAIT 1")]
    }

    /// The Redis at `url` (any topology), keys under a prefix of this
    /// run's own; with `replicas`, commits wait for that many replicas.
    pub(crate) fn given(url: &str, shards: u32, replicas: u32) -> Self {
        let label = if replicas > 0 {
            format!("REDIS_URL, WAIT {replicas}")
        } else {
            "REDIS_URL, no WAIT".to_owned()
        };
        Target {
            label,
            url: url.to_owned(),
            shards,
            prefix: format!("bench-{}-w{replicas}:", std::process::id()),
            replicas,
            pid: None,
            stats_port: None,
            _servers: Rc::new(()),
        }
    }

    /// A store on the target, as the workers and clients use it.
    pub(crate) async fn store(&self) -> RedisStore {
        RedisStore::builder(self.url.as_str())
            .prefix(self.prefix.as_str())
            .shards(self.shards)
            .wait_for_replicas(self.replicas, WAIT_TIMEOUT)
            .check_persistence(false)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connects to {}: {e}", self.label))
    }

    /// Calls of each command so far (`INFO commandstats`), when readable.
    pub(crate) fn commandstats(&self) -> Option<HashMap<String, u64>> {
        let port = self.stats_port?;
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "INFO", "commandstats"])
            .output()
            .ok()?;
        Some(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| {
                    let (name, stats) = l.strip_prefix("cmdstat_")?.split_once(':')?;
                    let calls = stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
                    Some((name.to_owned(), calls.trim().parse().ok()?))
                })
                .collect(),
        )
    }
}

/// A master and its replica, in sync.
struct Pair {
    master: RedisProcess,
    replica: RedisProcess,
    dir: std::path::PathBuf,
}

impl Pair {
    fn start() -> Self {
        let dir = private_dir("bench-pair");
        let sub = |name: &str| {
            let d = dir.join(name);
            std::fs::create_dir_all(&d).expect("creates a directory");
            d
        };
        let args: Vec<String> = [
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let master = RedisProcess::start(&sub("master"), None, &args);
        let mut replica_args = args.clone();
        replica_args.extend([
            "--replicaof".to_owned(),
            "127.0.0.1".to_owned(),
            master.port.to_string(),
        ]);
        let replica = RedisProcess::start(&sub("replica"), None, &replica_args);
        let pair = Pair {
            master,
            replica,
            dir,
        };
        wait_until(
            "the replica in sync",
            Duration::from_secs(30),
            || match pair
                .replica
                .info_field("replication", "master_link_status")
                .as_deref()
            {
                Some("up") => Ok(()),
                other => Err(format!("{other:?}")),
            },
        );
        pair
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.replica.kill();
        self.master.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
