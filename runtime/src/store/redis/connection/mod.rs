//! Connecting to Redis in any of its topologies: one server, Redis Cluster,
//! or a master behind Sentinels, in plain text or TLS (rustls).
//!
//! [`RedisTarget::parse`] reads the URL (`redis://`, `rediss://`,
//! `redis+cluster://`, `redis+sentinel://`, ...); [`RedisConnection::connect`]
//! opens a cloneable handle for commands, pipelines and scripts that
//! implements [`redis::aio::ConnectionLike`]. Two kinds of connection are
//! separate, because they must not hold up commands:
//!
//! - [`RedisConnection::blocking`]: a dedicated connection for blocking
//!   reads (`XREADGROUP ... BLOCK`). On a cluster it routes the read to the
//!   node owning the streams' slot, so all streams of one read must share
//!   one hash tag (one `{s<n>}` shard per read).
//! - [`RedisConnection::pubsub`]: a subscription connection. On a cluster,
//!   classic `PUBLISH` (which the scripts use) is broadcast to every node
//!   over the cluster bus, so one subscription on any node hears every
//!   shard's `settled` channel.
//!
//! ## Behavior
//! - One server: a `ConnectionManager` that reconnects by itself.
//! - Cluster: redis-rs's cluster connection, which follows `MOVED`/`ASK`,
//!   refreshes the slot map on topology changes and retries (about 3 s in
//!   all) while a failover promotes a replica.
//! - Sentinel: the master the Sentinels name, looked up again when it
//!   stops answering or answers `READONLY`; a command refused for that
//!   reason is sent once to the new master.
//! - Errors: [`ConnectError`] sorts them ([`FailureKind`]): authentication
//!   and permission failures are not transient, so callers stop instead of
//!   retrying; every message has the passwords replaced by `***`.

mod blocking;
mod durability;
mod error;
mod floor;
mod nodes;
mod probe;
mod redact;
mod script_call;
mod sentinel;
mod tls;
mod url;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
use redis::{Client, Cmd, Pipeline, RedisError, RedisFuture, TlsCertificates, Value};

pub use blocking::BlockingConnection;
pub use durability::ReplicaAck;
pub use error::{ConnectError, FailureKind, classify, classify_on};
pub use floor::{DurabilityFloor, MasterReplicas, replicas};
pub use probe::{
    Access, NodePersistence, PersistenceReport, RiskOfLoss, check_access, persistence,
};
pub use redact::{REDACTED, Secret, redact_url, scrub};
pub use script_call::ScriptCall;
pub use url::{DEFAULT_PORT, DEFAULT_SENTINEL_PORT, NodeAddr, RedisTarget, TlsOptions, Topology};

use nodes::{cluster_client, node_client, parse_cluster_nodes};
use sentinel::SentinelMaster;

/// Timeouts and retries of a [`RedisConnection`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// How long one command may take before it fails (default 10 s).
    pub response_timeout: Duration,
    /// How long opening a TCP (and TLS) connection may take (default 5 s).
    pub connection_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            response_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(5),
        }
    }
}

impl ConnectOptions {
    /// Sets how long one command may take.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Sets how long opening a connection may take.
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }
}

/// A cloneable handle on Redis for commands, pipelines and scripts, in any
/// topology. Clones share the connections.
///
/// Use it as a [`redis::aio::ConnectionLike`]: `cmd.query_async(&mut conn)`,
/// `script.invoke_async(&mut conn)`, `pipe.query_async(&mut conn)`. On a
/// cluster, a script's keys and a pipeline's commands must share one hash
/// slot (one `{s<n>}` tag), as the store's always do.
#[derive(Clone)]
pub struct RedisConnection {
    shared: Arc<Shared>,
    conn: Conn,
}

struct Shared {
    target: RedisTarget,
    options: ConnectOptions,
    certs: Option<TlsCertificates>,
    source: Source,
}

enum Source {
    Single(Box<Client>),
    Cluster,
    Sentinel(Arc<SentinelMaster>),
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(Arc<SentinelMaster>),
}

impl RedisConnection {
    /// Connects to `target` and checks that the server answers (`PING`).
    /// Fails with [`ConnectError::Auth`] on bad credentials, and with
    /// [`ConnectError::Misconfigured`] when the servers are not what the
    /// URL says (a cluster URL for a single server, a TLS certificate that
    /// does not verify, ...).
    pub async fn connect(
        target: &RedisTarget,
        options: &ConnectOptions,
    ) -> Result<Self, ConnectError> {
        let certs = target.tls().map(tls::certificates).transpose()?;
        let error = |e: RedisError| ConnectError::from_redis(target, &e);
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.response_timeout))
            .set_connection_timeout(Some(options.connection_timeout))
            .set_number_of_retries(2);
        let (source, conn) = match target.topology() {
            Topology::Single { node, db } => {
                let client = node_client(target, node, *db, certs.as_ref()).map_err(error)?;
                let manager = ConnectionManager::new_with_config(client.clone(), manager_config)
                    .await
                    .map_err(error)?;
                (Source::Single(Box::new(client)), Conn::Single(manager))
            }
            Topology::Cluster { seeds } => {
                let client =
                    cluster_client(target, seeds, certs.as_ref(), options, None).map_err(error)?;
                let conn = client.get_async_connection().await.map_err(error)?;
                (Source::Cluster, Conn::Cluster(conn))
            }
            Topology::Sentinel {
                sentinels,
                master,
                db,
            } => {
                let resolved = SentinelMaster::connect(
                    target,
                    sentinels,
                    master,
                    *db,
                    certs.clone(),
                    manager_config,
                )
                .await?;
                (Source::Sentinel(resolved.clone()), Conn::Sentinel(resolved))
            }
        };
        let mut handle = RedisConnection {
            shared: Arc::new(Shared {
                target: target.clone(),
                options: options.clone(),
                certs,
                source,
            }),
            conn,
        };
        // A connection is made lazily by some of the clients: make sure the
        // server answers, and that the credentials are accepted.
        redis::cmd("PING")
            .query_async::<String>(&mut handle)
            .await
            .map_err(|e| handle.error(&e))?;
        Ok(handle)
    }

    /// Parses `url` and connects (see [`RedisConnection::connect`]).
    pub async fn open(url: &str, options: &ConnectOptions) -> Result<Self, ConnectError> {
        Self::connect(&RedisTarget::parse(url)?, options).await
    }

    /// Where this handle connects.
    pub fn target(&self) -> &RedisTarget {
        &self.shared.target
    }

    /// A Redis error from a call on this handle, sorted and redacted.
    pub fn error(&self, e: &RedisError) -> ConnectError {
        ConnectError::from_redis(&self.shared.target, e)
    }

    /// Whether this is a cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    /// The master the Sentinels named last (Sentinel URLs only).
    pub fn sentinel_master(&self) -> Option<NodeAddr> {
        match &self.shared.source {
            Source::Sentinel(s) => Some(s.address()),
            _ => None,
        }
    }

    /// A dedicated connection for blocking reads that may wait up to
    /// `max_block` (its commands time out a little after that, so a dead
    /// server is noticed). Keep one per concurrent blocking read; a
    /// blocking read on the shared handle would hold up every command
    /// queued behind it.
    ///
    /// On a cluster the connection routes each read to the node owning its
    /// first key's slot and follows `MOVED`; every stream of one
    /// `XREADGROUP` must carry the same hash tag.
    pub async fn blocking(&self, max_block: Duration) -> Result<BlockingConnection, ConnectError> {
        let timeout = max_block + Duration::from_secs(5);
        let target = &self.shared.target;
        let error = |e: RedisError| self.error(&e);
        match &self.shared.source {
            Source::Single(client) => {
                blocking::single(client, self.shared.options.connection_timeout, timeout)
                    .await
                    .map_err(error)
            }
            Source::Sentinel(master) => {
                let connect = || {
                    blocking::single_owned(
                        master.client(),
                        self.shared.options.connection_timeout,
                        timeout,
                    )
                };
                match connect().await {
                    Ok(c) => Ok(c),
                    Err(e) => {
                        let _ = master.refresh(&master.address()).await;
                        connect().await.map_err(|_| error(e))
                    }
                }
            }
            Source::Cluster => {
                let Topology::Cluster { seeds } = target.topology() else {
                    return Err(ConnectError::Misconfigured {
                        target: target.to_string(),
                        message: "a cluster connection for a URL that is not a cluster's".into(),
                    });
                };
                let client = cluster_client(
                    target,
                    seeds,
                    self.shared.certs.as_ref(),
                    &self.shared.options,
                    Some(timeout),
                )
                .map_err(error)?;
                blocking::cluster(&client).await.map_err(error)
            }
        }
    }

    /// A connection for `SUBSCRIBE`/`PSUBSCRIBE` (not reconnected: when its
    /// message stream ends, ask for another and subscribe again).
    ///
    /// - One server: a connection to it.
    /// - Sentinel: a connection to the current master (looked up again if
    ///   it does not answer).
    /// - Cluster: a connection to any reachable node, tried in the order of
    ///   the current cluster layout, then the seeds. Classic `PUBLISH` is
    ///   broadcast to every node, so one node hears every shard.
    pub async fn pubsub(&self) -> Result<PubSub, ConnectError> {
        let target = &self.shared.target;
        match &self.shared.source {
            Source::Single(client) => client.get_async_pubsub().await.map_err(|e| self.error(&e)),
            Source::Sentinel(master) => match master.client().get_async_pubsub().await {
                Ok(p) => Ok(p),
                Err(e) => {
                    let _ = master.refresh(&master.address()).await;
                    master
                        .client()
                        .get_async_pubsub()
                        .await
                        .map_err(|_| self.error(&e))
                }
            },
            Source::Cluster => {
                let mut nodes = self.cluster_nodes().await.unwrap_or_default();
                if let Topology::Cluster { seeds } = target.topology() {
                    nodes.extend(seeds.iter().cloned());
                }
                let mut last = None;
                for node in &nodes {
                    let client = node_client(target, node, 0, self.shared.certs.as_ref());
                    match client {
                        Ok(c) => match c.get_async_pubsub().await {
                            Ok(p) => return Ok(p),
                            Err(e) => last = Some(e),
                        },
                        Err(e) => last = Some(e),
                    }
                }
                Err(match last {
                    Some(e) => self.error(&e),
                    None => ConnectError::Unavailable {
                        target: target.to_string(),
                        message: "no cluster node to subscribe on".into(),
                    },
                })
            }
        }
    }

    /// The addresses of the cluster's nodes that are not marked failed,
    /// masters first (`CLUSTER NODES` on any node). Empty for other
    /// topologies.
    pub async fn cluster_nodes(&self) -> Result<Vec<NodeAddr>, ConnectError> {
        if !self.is_cluster() {
            return Ok(Vec::new());
        }
        let mut conn = self.clone();
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error(&e))?;
        Ok(parse_cluster_nodes(&text))
    }

    /// Sends `cmd` to every master (the one master outside a cluster) and
    /// returns each one's answer with its address. Fails only when the
    /// masters cannot be reached at all.
    pub(crate) async fn each_master(
        &self,
        cmd: &Cmd,
    ) -> redis::RedisResult<Vec<(String, redis::RedisResult<Value>)>> {
        match &self.conn {
            Conn::Cluster(c) => {
                let mut c = c.clone();
                let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                let reply = c.route_command(cmd.clone(), routing).await?;
                let Value::Map(pairs) = reply else {
                    return Ok(vec![("cluster".to_owned(), Ok(reply))]);
                };
                Ok(pairs
                    .into_iter()
                    .map(|(node, answer)| {
                        let node = match node {
                            Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
                            Value::SimpleString(s) => s,
                            other => format!("{other:?}"),
                        };
                        let answer = match answer {
                            Value::ServerError(e) => Err(RedisError::from(e)),
                            v => Ok(v),
                        };
                        (node, answer)
                    })
                    .collect())
            }
            Conn::Single(_) | Conn::Sentinel(_) => {
                let node = match (&self.shared.source, self.shared.target.topology()) {
                    (Source::Sentinel(s), _) => s.address().to_string(),
                    (_, Topology::Single { node, .. }) => node.to_string(),
                    _ => "-".to_owned(),
                };
                let mut handle = self.clone();
                let answer = cmd.query_async::<Value>(&mut handle).await;
                match answer {
                    Err(e) if classify(&e) == FailureKind::Unavailable => Err(e),
                    answer => Ok(vec![(node, answer)]),
                }
            }
        }
    }
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection")
            .field("target", &self.shared.target)
            .finish_non_exhaustive()
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.conn {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(s) => Box::pin(async move { s.command(cmd).await }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.conn {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Sentinel(s) => Box::pin(async move { s.pipeline(cmd, offset, count).await }),
        }
    }

    fn get_db(&self) -> i64 {
        match self.shared.target.topology() {
            Topology::Single { db, .. } | Topology::Sentinel { db, .. } => *db,
            _ => 0,
        }
    }
}
