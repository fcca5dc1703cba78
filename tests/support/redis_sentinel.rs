//! A private master, its replica and 3 Sentinels on loopback, with a short
//! `down-after-milliseconds` so a failover takes a couple of seconds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::redis_proc::{RedisProcess, private_dir, require, wait_until};

/// The name the Sentinels monitor the master under.
pub const MASTER_NAME: &str = "steadfast-test";

/// How long the master may be silent before the Sentinels fail it over:
/// short, but not so short that a master starved of CPU on a loaded 2-core
/// machine is failed over by mistake.
pub const DOWN_AFTER_MS: u64 = 1000;

pub struct RedisSentinels {
    pub master: RedisProcess,
    pub replica: RedisProcess,
    pub sentinels: Vec<RedisProcess>,
    dir: PathBuf,
}

impl RedisSentinels {
    /// Starts the master, the replica and the Sentinels; returns once the
    /// replica is in sync and every Sentinel knows the replica and the two
    /// other Sentinels (a failover needs a majority of them).
    pub fn start() -> Self {
        require("redis-sentinel", "redis-sentinel");
        let dir = private_dir("sentinel");
        let plain = |d: &str| {
            let dir = dir.join(d);
            std::fs::create_dir_all(&dir).expect("creates a directory");
            dir
        };
        let no_persistence: Vec<String> = ["--save", "", "--appendonly", "no"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let master = RedisProcess::start(&plain("master"), None, &no_persistence);
        let mut replica_args = no_persistence.clone();
        replica_args.extend([
            "--replicaof".into(),
            "127.0.0.1".into(),
            master.port.to_string(),
        ]);
        let replica = RedisProcess::start(&plain("replica"), None, &replica_args);
        // Owned from here, so that a failure below still removes it all.
        let mut setup = RedisSentinels {
            master,
            replica,
            sentinels: Vec::new(),
            dir: dir.clone(),
        };
        for i in 0..3 {
            let config = format!(
                "sentinel monitor {MASTER_NAME} 127.0.0.1 {port} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
                 sentinel failover-timeout {MASTER_NAME} 5000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n",
                port = setup.master.port
            );
            setup.sentinels.push(RedisProcess::start(
                &plain(&format!("sentinel{i}")),
                Some(&config),
                &["--sentinel".to_owned()],
            ));
        }
        setup.wait_ready(Duration::from_secs(30));
        setup
    }

    /// `redis+sentinel://` URL naming the three Sentinels and the master.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.sentinels.iter().map(RedisProcess::addr).collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    fn wait_ready(&self, within: Duration) {
        wait_until(
            "the replica in sync and the Sentinels aware of each other",
            within,
            || {
                if self
                    .replica
                    .info_field("replication", "master_link_status")
                    .as_deref()
                    != Some("up")
                {
                    return Err("replica link not up".into());
                }
                for s in &self.sentinels {
                    let master = s.cli(&["SENTINEL", "MASTER", MASTER_NAME]);
                    let field = |name: &str| {
                        let lines: Vec<&str> = master.lines().collect();
                        lines
                            .iter()
                            .position(|l| *l == name)
                            .and_then(|i| lines.get(i + 1))
                            .map(|v| v.to_string())
                    };
                    if field("num-other-sentinels").as_deref() != Some("2")
                        || field("num-slaves").as_deref() != Some("1")
                    {
                        return Err(format!("sentinel {}: {master}", s.port));
                    }
                }
                Ok(())
            },
        );
    }

    /// The master's port according to each Sentinel.
    pub fn master_ports(&self) -> Vec<Option<u16>> {
        self.sentinels
            .iter()
            .filter(|s| s.is_running())
            .map(|s| {
                s.cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME])
                    .lines()
                    .nth(1)
                    .and_then(|p| p.trim().parse().ok())
            })
            .collect()
    }

    /// Kills the master (SIGKILL) and waits until every Sentinel names the
    /// replica and the replica acts as master. Returns how long it took.
    pub fn kill_master(&mut self) -> Duration {
        let started = Instant::now();
        self.master.kill();
        let replica = self.replica.port;
        wait_until(
            "the Sentinels to promote the replica",
            Duration::from_secs(60),
            || {
                let ports = self.master_ports();
                if ports.iter().any(|p| *p != Some(replica)) {
                    return Err(format!("sentinels name {ports:?}"));
                }
                match self.replica.info_field("replication", "role").as_deref() {
                    Some("master") => Ok(()),
                    other => Err(format!("replica role {other:?}")),
                }
            },
        );
        started.elapsed()
    }
}

impl Drop for RedisSentinels {
    fn drop(&mut self) {
        for s in &mut self.sentinels {
            s.kill();
        }
        self.replica.kill();
        self.master.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
