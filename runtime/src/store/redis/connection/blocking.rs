//! Dedicated connections for blocking reads (`XREADGROUP ... BLOCK`): a
//! blocked command holds its connection until it returns, so it must not
//! share one with commits.

use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// A connection for one blocking read at a time, from
/// [`super::RedisConnection::blocking`]. Not reconnected: after an
/// I/O error, drop it and ask for another (on Sentinel the next one goes
/// to the current master).
#[derive(Clone)]
pub struct BlockingConnection {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for BlockingConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.inner {
            Inner::Node(_) => "node",
            Inner::Cluster(_) => "cluster",
        };
        f.debug_struct("BlockingConnection")
            .field("kind", &kind)
            .finish()
    }
}

pub(crate) async fn single(
    client: &Client,
    connection_timeout: Duration,
    response_timeout: Duration,
) -> RedisResult<BlockingConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connection_timeout))
        .set_response_timeout(Some(response_timeout));
    let conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    Ok(BlockingConnection {
        inner: Inner::Node(conn),
    })
}

pub(crate) async fn single_owned(
    client: Client,
    connection_timeout: Duration,
    response_timeout: Duration,
) -> RedisResult<BlockingConnection> {
    single(&client, connection_timeout, response_timeout).await
}

pub(crate) async fn cluster(client: &ClusterClient) -> RedisResult<BlockingConnection> {
    Ok(BlockingConnection {
        inner: Inner::Cluster(client.get_async_connection().await?),
    })
}

impl ConnectionLike for BlockingConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Node(c) => c.req_packed_command(cmd),
            Inner::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Inner::Node(c) => c.req_packed_commands(cmd, offset, count),
            Inner::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Node(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
        }
    }
}
