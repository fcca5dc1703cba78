//! redis-rs clients for the nodes of a target: one node, or a cluster's
//! seeds, with the target's credentials and TLS certificates, and the
//! reading of `CLUSTER NODES`.

use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::{
    Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo,
    TlsCertificates,
};

use super::ConnectOptions;
use super::url::{NodeAddr, RedisTarget};

/// The redis-rs connection settings of one node, with the target's
/// credentials (never through a URL string, which error messages could
/// quote).
pub(crate) fn node_info(
    target: &RedisTarget,
    node: &NodeAddr,
    db: i64,
) -> redis::RedisResult<ConnectionInfo> {
    let addr = if target.tls().is_some() {
        ConnectionAddr::TcpTls {
            host: node.host.clone(),
            port: node.port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(node.host.clone(), node.port)
    };
    let mut redis = RedisConnectionInfo::default().set_db(db);
    if let Some(user) = target.username() {
        redis = redis.set_username(user);
    }
    if let Some(password) = target.password() {
        redis = redis.set_password(password.expose());
    }
    Ok(addr.into_connection_info()?.set_redis_settings(redis))
}

pub(crate) fn node_client(
    target: &RedisTarget,
    node: &NodeAddr,
    db: i64,
    certs: Option<&TlsCertificates>,
) -> redis::RedisResult<Client> {
    let info = node_info(target, node, db)?;
    match certs {
        Some(certs) => Client::build_with_tls(info, certs.clone()),
        None => Client::open(info),
    }
}

/// A cluster client; `blocking_timeout` set makes it one for blocking
/// reads (no overall timeout, per-node response timeout as given).
pub(crate) fn cluster_client(
    target: &RedisTarget,
    seeds: &[NodeAddr],
    certs: Option<&TlsCertificates>,
    options: &ConnectOptions,
    blocking_timeout: Option<Duration>,
) -> redis::RedisResult<ClusterClient> {
    let infos = seeds
        .iter()
        .map(|n| node_info(target, n, 0))
        .collect::<redis::RedisResult<Vec<_>>>()?;
    // Retries wait 100 ms to 2 s each, about 3 s in all: long enough for a
    // replica to be promoted with a short `cluster-node-timeout`, short
    // enough for the caller's own backoff to take over after.
    let mut builder = ClusterClientBuilder::new(infos)
        .retries(10)
        .min_retry_wait(100)
        .max_retry_wait(2000)
        .connection_timeout(options.connection_timeout);
    builder = match blocking_timeout {
        Some(t) => builder.response_timeout(t).overall_response_timeout(None),
        None => builder
            .response_timeout(options.response_timeout)
            .overall_response_timeout(Some(options.response_timeout)),
    };
    if let Some(user) = target.username() {
        builder = builder.username(user);
    }
    if let Some(password) = target.password() {
        builder = builder.password(password.expose());
    }
    if let Some(certs) = certs {
        builder = builder.certs(certs.clone());
    }
    builder.build()
}

/// Node addresses from `CLUSTER NODES`: those not flagged `fail`,
/// `handshake` or `noaddr`, masters first.
pub(crate) fn parse_cluster_nodes(text: &str) -> Vec<NodeAddr> {
    let mut masters = Vec::new();
    let mut replicas = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(addr), Some(flags)) = (fields.get(1), fields.get(2)) else {
            continue;
        };
        if flags
            .split(',')
            .any(|f| matches!(f, "fail" | "fail?" | "handshake" | "noaddr"))
        {
            continue;
        }
        // `ip:port@cport[,hostname]`
        let hostport = addr.split('@').next().unwrap_or_default();
        let Some((host, port)) = hostport.rsplit_once(':') else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        if host.is_empty() || port == 0 {
            continue;
        }
        let node = NodeAddr::new(host.trim_matches(['[', ']']), port);
        if flags.split(',').any(|f| f == "master") {
            masters.push(node);
        } else {
            replicas.push(node);
        }
    }
    masters.extend(replicas);
    masters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_skip_failed_ones_and_list_masters_first() {
        let text = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002 slave a1 0 0 1 connected
c3 127.0.0.1:7003@17003 master,fail - 0 0 2 disconnected
d4 127.0.0.1:7004@17004,node-4 master - 0 0 3 connected 5461-16383
";
        assert_eq!(
            parse_cluster_nodes(text),
            vec![
                NodeAddr::new("127.0.0.1", 7001),
                NodeAddr::new("127.0.0.1", 7004),
                NodeAddr::new("127.0.0.1", 7002)
            ]
        );
    }
}
