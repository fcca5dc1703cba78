//! A master found through Sentinels, followed across failovers.
//!
//! redis-rs's `SentinelClient` asks the Sentinels for the master's address
//! and checks that the node there is a master, but a `ConnectionManager`
//! made from the resulting client keeps reconnecting to that one address:
//! after a failover it reaches a dead node (connection refused) or the old
//! master demoted to replica (`READONLY`). So on those errors the master is
//! looked up again and, when it moved, a new manager replaces the old one.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Client, Cmd, ConnectionAddr, Pipeline, RedisError, RedisResult, TlsMode, Value};
use tokio::sync::Mutex;
use tracing::{debug, info};

use super::error::ConnectError;
use super::url::{NodeAddr, RedisTarget};

/// Lookups of the master closer together than this reuse the last answer,
/// so that a burst of failing commands asks the Sentinels once.
const MIN_LOOKUP_INTERVAL: Duration = Duration::from_millis(100);

/// The current master and the way to find the next one.
pub(crate) struct SentinelMaster {
    sentinel: Mutex<Lookup>,
    current: RwLock<Current>,
    config: ConnectionManagerConfig,
}

struct Lookup {
    client: SentinelClient,
    last: Option<Instant>,
}

#[derive(Clone)]
struct Current {
    addr: NodeAddr,
    client: Client,
    manager: ConnectionManager,
}

impl SentinelMaster {
    /// Asks the Sentinels for the master and connects to it.
    pub(crate) async fn connect(
        target: &RedisTarget,
        sentinels: &[NodeAddr],
        master: &str,
        db: i64,
        certs: Option<redis::TlsCertificates>,
        config: ConnectionManagerConfig,
    ) -> Result<Arc<Self>, ConnectError> {
        let tls = target.tls().is_some();
        let addrs = sentinels.iter().map(|n| {
            if tls {
                ConnectionAddr::TcpTls {
                    host: n.host.clone(),
                    port: n.port,
                    insecure: false,
                    tls_params: None,
                }
            } else {
                ConnectionAddr::Tcp(n.host.clone(), n.port)
            }
        });
        let error = |e: RedisError| ConnectError::from_redis(target, &e);
        let mut builder = SentinelClientBuilder::new(addrs, master, SentinelServerType::Master)
            .map_err(error)?
            .set_client_to_redis_db(db);
        if let Some(user) = target.username() {
            builder = builder.set_client_to_redis_username(user);
        }
        if let Some(password) = target.password() {
            builder = builder.set_client_to_redis_password(password.expose());
        }
        if let Some(user) = target.sentinel_username() {
            builder = builder.set_client_to_sentinel_username(user);
        }
        if let Some(password) = target.sentinel_password() {
            builder = builder.set_client_to_sentinel_password(password.expose());
        }
        if tls {
            builder = builder
                .set_client_to_redis_tls_mode(TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(TlsMode::Secure);
            if let Some(certs) = certs {
                builder = builder
                    .set_client_to_redis_certificates(certs.clone())
                    .set_client_to_sentinel_certificates(certs);
            }
        }
        let mut client = builder.build().map_err(error)?;
        let current = resolve(&mut client, &config).await.map_err(error)?;
        info!(master = %current.addr, "Sentinels name the master");
        Ok(Arc::new(SentinelMaster {
            sentinel: Mutex::new(Lookup {
                client,
                last: Some(Instant::now()),
            }),
            current: RwLock::new(current),
            config,
        }))
    }

    fn current(&self) -> Current {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The master's address as last resolved.
    pub(crate) fn address(&self) -> NodeAddr {
        self.current().addr
    }

    /// A client for the master as last resolved (for dedicated
    /// connections: blocking reads, pub/sub).
    pub(crate) fn client(&self) -> Client {
        self.current().client
    }

    /// Asks the Sentinels again, and switches to the master they name if
    /// it moved from `seen`. Returns whether it moved.
    pub(crate) async fn refresh(&self, seen: &NodeAddr) -> RedisResult<bool> {
        let mut lookup = self.sentinel.lock().await;
        // Another caller may have switched while we waited for the lock.
        if self.address() != *seen {
            return Ok(true);
        }
        if lookup
            .last
            .is_some_and(|t| t.elapsed() < MIN_LOOKUP_INTERVAL)
        {
            return Ok(false);
        }
        lookup.last = Some(Instant::now());
        let next = resolve(&mut lookup.client, &self.config).await?;
        if next.addr == *seen {
            return Ok(false);
        }
        info!(from = %seen, to = %next.addr, "the master moved; switching to the new one");
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(true)
    }

    /// Runs a command on the master, following it once if it moved.
    pub(crate) async fn command(&self, cmd: &Cmd) -> RedisResult<Value> {
        let mut current = self.current();
        let first = current.manager.req_packed_command(cmd).await;
        match first {
            Err(e) if self.should_refresh(&e) => {
                let moved = self.refresh(&current.addr).await.unwrap_or(false);
                if moved && was_not_run(&e) {
                    current = self.current();
                    return current.manager.req_packed_command(cmd).await;
                }
                Err(e)
            }
            other => other,
        }
    }

    /// Runs a pipeline on the master, following it once if it moved.
    pub(crate) async fn pipeline(
        &self,
        pipeline: &Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let mut current = self.current();
        let first = current
            .manager
            .req_packed_commands(pipeline, offset, count)
            .await;
        match first {
            Err(e) if self.should_refresh(&e) => {
                let moved = self.refresh(&current.addr).await.unwrap_or(false);
                if moved && was_not_run(&e) {
                    current = self.current();
                    return current
                        .manager
                        .req_packed_commands(pipeline, offset, count)
                        .await;
                }
                Err(e)
            }
            other => other,
        }
    }

    fn should_refresh(&self, e: &RedisError) -> bool {
        let refresh = e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.code() == Some("READONLY")
            || e.code() == Some("MASTERDOWN");
        if refresh {
            debug!(error = %e, "master unreachable or demoted; asking the Sentinels");
        }
        refresh
    }
}

/// Whether the failed command certainly did not run, so that sending it
/// to the new master cannot run it twice: refused by a replica, or never
/// sent because the connection was refused.
fn was_not_run(e: &RedisError) -> bool {
    e.code() == Some("READONLY") || e.code() == Some("MASTERDOWN") || e.is_connection_refusal()
}

async fn resolve(
    client: &mut SentinelClient,
    config: &ConnectionManagerConfig,
) -> RedisResult<Current> {
    let master = client.async_get_client().await?;
    let addr = match master.get_connection_info().addr() {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
            NodeAddr::new(host.clone(), *port)
        }
        _ => NodeAddr::new("unix-socket", 0),
    };
    let manager = ConnectionManager::new_with_config(master.clone(), config.clone()).await?;
    Ok(Current {
        addr,
        client: master,
        manager,
    })
}
