//! Configuring and opening a [`RedisStore`]: the URL (any topology), the
//! key layout, timeouts, TLS files, commits that wait for replicas, and the
//! checks made once at connect time (permissions, persistence), so that a
//! misconfiguration is one clear error instead of retries.

use std::path::PathBuf;
use std::time::Duration;

use tracing::{info, warn};

use super::RedisStore;
use super::connection::{
    Access, ConnectError, ConnectOptions, DurabilityFloor, PersistenceReport, RedisConnection,
    RedisTarget, ReplicaAck, Secret, check_access, persistence, redact_url, replicas,
};
use crate::store::StoreError;

/// The largest decision the apply script writes by default (see
/// [`RedisStoreBuilder::max_decision_bytes`]).
pub(super) const DEFAULT_MAX_DECISION_BYTES: usize = 16 * 1024 * 1024;

/// Which permissions [`RedisStoreBuilder::connect`] checks before it
/// returns, so that a user without them is refused at once, naming what it
/// lacks, instead of failing on its first command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessCheck {
    /// Everything workers and clients send (the default): the scripts,
    /// task queue reads, the `settled` subscription, and `WAIT` when
    /// commits wait for replicas.
    #[default]
    Worker,
    /// The reads of read-only tools (listing and showing runs, histories,
    /// schedules): the `steadfast-reader` user of `docs/operations.md`.
    ReadOnly,
    /// No check (a server that does not support `redis.acl_check_cmd`,
    /// older than Redis 7).
    Skip,
}

/// Builds a [`RedisStore`].
///
/// ```no_run
/// # async fn demo() -> Result<(), steadfast_runtime::StoreError> {
/// use std::time::Duration;
/// use steadfast_runtime::RedisStore;
///
/// let store = RedisStore::builder("rediss+cluster://worker:s3cret@10.0.1.1:6379,10.0.1.2:6379")
///     .ca_file("/etc/steadfast/ca.pem")
///     .shards(16)
///     .wait_for_replicas(1, Duration::from_millis(500))
///     .connect()
///     .await?;
/// if let Some(report) = store.persistence_report().filter(|r| r.can_lose_data()) {
///     eprintln!("warning: {report}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStoreBuilder {
    url: Secret,
    pub(super) prefix: String,
    pub(super) shards: u32,
    pub(super) reclaim_after: Duration,
    pub(super) history_len: u64,
    pub(super) retention: Duration,
    response_timeout: Duration,
    connection_timeout: Duration,
    check_persistence: bool,
    access: AccessCheck,
    ca_file: Option<PathBuf>,
    client_certificate: Option<(PathBuf, PathBuf)>,
    pub(super) replica_ack: Option<ReplicaAck>,
    commit_connections: usize,
    pub(super) max_decision_bytes: usize,
    floor: Option<DurabilityFloor>,
}

impl std::fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &redact_url(self.url.expose()))
            .field("prefix", &self.prefix)
            .field("shards", &self.shards)
            .field("access", &self.access)
            .field("replica_ack", &self.replica_ack)
            .field("floor", &self.floor)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    pub(super) fn new(url: String) -> Self {
        RedisStoreBuilder {
            url: Secret::new(url),
            prefix: "steadfast:".to_owned(),
            shards: 1,
            reclaim_after: Duration::from_secs(30),
            history_len: 1000,
            retention: Duration::from_secs(7 * 24 * 3600),
            response_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(5),
            check_persistence: true,
            access: AccessCheck::Worker,
            ca_file: None,
            client_certificate: None,
            replica_ack: None,
            commit_connections: 16,
            max_decision_bytes: DEFAULT_MAX_DECISION_BYTES,
            floor: None,
        }
    }

    /// Every key starts with this (default `steadfast:`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The number of logical shards runs are spread over (default 1). Every
    /// key of a run, its shard's task streams and indexes share a hash tag
    /// (`{s<n>}`), so each script touches one Redis Cluster slot, and the
    /// shards spread over the cluster's masters: give a cluster at least a
    /// few shards per master. Changing the number moves runs to other
    /// shards: set it before the first run.
    pub fn shards(mut self, shards: u32) -> Self {
        self.shards = shards.max(1);
        self
    }

    /// How long a delivered task may go unacknowledged, without its lease
    /// being renewed, before another worker claims it (default 30 s; keep it
    /// at least as long as workers' leases).
    pub fn reclaim_after(mut self, after: Duration) -> Self {
        self.reclaim_after = after;
        self
    }

    /// How many history entries a run keeps (about; default 1000).
    pub fn history_len(mut self, entries: u64) -> Self {
        self.history_len = entries.max(1);
        self
    }

    /// How long completed and failed runs are kept (default 7 days;
    /// `Duration::ZERO` keeps them forever). Parked runs and failed
    /// compensations are always kept.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How long one Redis command may take before it counts as failed
    /// (default 10 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long opening a connection (TCP and TLS) may take (default 5 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// Whether to read every master's persistence settings on connect
    /// (default true): the report is kept
    /// ([`RedisStore::persistence_report`]) and logged as a warning when a
    /// crash or failover of Redis can lose acknowledged checkpoints.
    pub fn check_persistence(mut self, check: bool) -> Self {
        self.check_persistence = check;
        self
    }

    /// Which permissions to check on connect (default
    /// [`AccessCheck::Worker`]).
    pub fn access_check(mut self, check: AccessCheck) -> Self {
        self.access = check;
        self
    }

    /// Trusts the CA certificates in this PEM file instead of the system's
    /// (as the URL's `ca_file` parameter does; this one wins). TLS URLs
    /// (`rediss...`) only.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Presents this client certificate and key (PEM files) to servers
    /// that require one (`tls-auth-clients yes`), as the URL's `cert_file`
    /// and `key_file` do. TLS URLs only.
    pub fn client_certificate(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_certificate = Some((cert.into(), key.into()));
        self
    }

    /// Makes every commit (a run's creation, each transition, each message
    /// to a run) wait until `replicas` replicas of its master have it, at
    /// most `timeout`: the script and `WAIT` go in one pipeline, so this
    /// costs no extra round trip, only the replication delay.
    ///
    /// A commit the replicas did not acknowledge in time is *not* undone
    /// (Redis cannot): it stands on the master, and a failover before the
    /// replica catches up can lose it. Such a commit fails with
    /// [`StoreError::Unreplicated`]: a worker then stops driving the run
    /// (it starts nothing on a checkpoint that may vanish) and the run goes
    /// on once its lease expires, from whichever checkpoint survived; a
    /// client's start or message can be sent again (starts are idempotent
    /// by workflow id). While fewer than `replicas` replicas are up, runs
    /// make no progress: this trades availability for durability.
    ///
    /// `WAIT` holds its connection until it is answered, so commits that
    /// wait go over connections of their own
    /// ([`commit_connections`](Self::commit_connections) of them), not the
    /// one polls and reads share.
    ///
    /// The user needs `+wait`. `replicas` 0 turns it off.
    pub fn wait_for_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.replica_ack = (replicas > 0).then(|| ReplicaAck::new(replicas, timeout));
        self
    }

    /// How many connections commits that wait for replicas are spread over
    /// (default 16): as many commits can wait at once. Unused without
    /// [`wait_for_replicas`](Self::wait_for_replicas).
    pub fn commit_connections(mut self, connections: usize) -> Self {
        self.commit_connections = connections.max(1);
        self
    }

    /// The largest decision (record fields, history entry and effects, in
    /// bytes) the apply script accepts (default 16 MiB). The runtime's own
    /// limits ([`crate::core::Limits`]) park a run whose data outgrows
    /// them long before; this is the store's last line of defence, checked
    /// before anything is written. (What is counted is the script call's
    /// arguments: a plain step's fixed arguments are a few hundred bytes
    /// shorter than the general script's document for the same decision.)
    pub fn max_decision_bytes(mut self, bytes: usize) -> Self {
        self.max_decision_bytes = bytes.max(1024);
        self
    }

    /// Refuses to connect to servers less durable than `floor`: a master
    /// whose persistence can lose more on a crash than
    /// [`DurabilityFloor::at_most`], or with fewer replicas connected than
    /// [`DurabilityFloor::replicas`], fails [`connect`](Self::connect) with
    /// [`StoreError::Misconfigured`] naming each master and what it lacks.
    /// Settings that cannot be read (`CONFIG GET` refused) fall short too.
    /// The check is made once, at connect; pair a replica floor with
    /// [`wait_for_replicas`](Self::wait_for_replicas) so that commits
    /// wait for them.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), steadfast_runtime::StoreError> {
    /// use steadfast_runtime::RedisStore;
    /// use steadfast_runtime::redis_connection::{DurabilityFloor, RiskOfLoss};
    ///
    /// // Every commit on disk before it returns (appendfsync always).
    /// let store = RedisStore::builder("redis://127.0.0.1:6379")
    ///     .require(DurabilityFloor::crash_loses_at_most(RiskOfLoss::Nothing))
    ///     .connect()
    ///     .await?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub fn require(mut self, floor: DurabilityFloor) -> Self {
        self.floor = Some(floor);
        self
    }

    /// Connects, then checks that the user may do what the store needs
    /// ([`access_check`](Self::access_check)) and reads the persistence
    /// settings ([`check_persistence`](Self::check_persistence)).
    ///
    /// Fails with [`StoreError::Auth`] for refused credentials,
    /// [`StoreError::Permission`] naming what the user may not run,
    /// [`StoreError::Misconfigured`] when the servers are not what the URL
    /// says, and [`StoreError::Unavailable`] when they cannot be reached.
    /// No message shows a password.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let target = RedisTarget::parse(self.url.expose())?
            .with_tls_files(self.ca_file.clone(), self.client_certificate.clone())?;
        let options = ConnectOptions::default()
            .response_timeout(self.response_timeout)
            .connection_timeout(self.connection_timeout);
        let conn = RedisConnection::connect(&target, &options).await?;
        match self.access {
            AccessCheck::Worker => {
                let mut access = Access::worker(&self.prefix);
                if self.replica_ack.is_some() {
                    access = access.with_wait();
                }
                check_access(&conn, &access).await?;
            }
            AccessCheck::ReadOnly => check_access(&conn, &Access::reader(&self.prefix)).await?,
            AccessCheck::Skip => {}
        }
        let report = if self.check_persistence {
            match persistence(&conn).await {
                Ok(report) => {
                    if report.can_lose_data() {
                        warn!(target = %conn.target(), "Redis can lose checkpoints: {report}");
                    } else {
                        info!(target = %conn.target(), "Redis persistence: {report}");
                    }
                    Some(report)
                }
                Err(e) => {
                    warn!(error = %e, "cannot read the Redis persistence settings");
                    None
                }
            }
        } else {
            None
        };
        if let Some(floor) = self.floor {
            check_floor(&conn, &floor, report.as_ref()).await?;
        }
        // `WAIT` blocks the connection it is sent on until it is answered:
        // commits that wait get connections of their own.
        let mut commit_conns = Vec::new();
        if self.replica_ack.is_some() {
            for _ in 0..self.commit_connections {
                commit_conns.push(RedisConnection::connect(&target, &options).await?);
            }
        }
        Ok(RedisStore::open(conn, commit_conns, &self, report))
    }
}

/// Refuses servers below `floor`, reading what the connect-time report did
/// not (the persistence settings when that check is off, the replicas).
async fn check_floor(
    conn: &RedisConnection,
    floor: &DurabilityFloor,
    report: Option<&PersistenceReport>,
) -> Result<(), StoreError> {
    let read;
    let report = match report {
        Some(r) => r,
        None => {
            read = persistence(conn).await?;
            &read
        }
    };
    let masters = if floor.replicas > 0 {
        replicas(conn).await?
    } else {
        Vec::new()
    };
    let shortfall = floor.shortfall(report, &masters);
    if shortfall.is_empty() {
        return Ok(());
    }
    Err(ConnectError::BelowFloor {
        target: conn.target().to_string(),
        required: floor.to_string(),
        shortfall: shortfall.join("; "),
    }
    .into())
}
