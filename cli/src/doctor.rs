//! `steadfast doctor`: where the URL leads, whether its user may do what
//! steadfast needs, and what a crash or failover of Redis can lose.

use steadfast_runtime::redis_connection::{Access, Topology, check_access};
use steadfast_runtime::{AccessCheck, RedisStore};

use crate::args::Connection;
use crate::ops::CliError;

/// Runs the check; the report is the output, or the error's text when the
/// user lacks a permission (exit code 1).
pub(crate) async fn run(args: &Connection, read_only: bool) -> Result<String, CliError> {
    let store = RedisStore::builder(args.redis_url.as_str())
        .prefix(args.prefix.as_str())
        .shards(args.shards)
        .access_check(AccessCheck::Skip)
        .check_persistence(false)
        .connect()
        .await?;
    let conn = store.connection();
    let target = conn.target();
    let mut out = format!("target       {target}\n");
    let arrangement = match target.topology() {
        Topology::Single { .. } => "one server".to_owned(),
        Topology::Cluster { .. } => {
            let nodes = conn.cluster_nodes().await.map_err(store_error)?;
            format!("Redis Cluster, {} reachable nodes", nodes.len())
        }
        _ => match conn.sentinel_master() {
            Some(master) => format!("master {master}, found through the Sentinels"),
            None => "a master found through the Sentinels".to_owned(),
        },
    };
    out.push_str(&format!("topology     {arrangement}\n"));
    if target.tls().is_some() {
        out.push_str("tls          yes (the server's certificate verified)\n");
    }
    out.push_str(&format!("user         {}\n", target.user_label()));
    let (role, access) = if read_only {
        ("read-only", Access::reader(&args.prefix))
    } else {
        ("worker", Access::worker(&args.prefix))
    };
    let refused = match check_access(conn, &access).await {
        Ok(()) => {
            out.push_str(&format!(
                "permissions  everything a {role} needs is allowed\n"
            ));
            None
        }
        Err(e) if e.kind() == steadfast_runtime::redis_connection::FailureKind::Permission => {
            out.push_str(&format!("permissions  MISSING: {e}\n"));
            Some(e.to_string())
        }
        Err(e) => return Err(store_error(e)),
    };
    let report = store.persistence().await?;
    let verdict = if report.can_lose_data() {
        "warning: Redis can lose checkpoints"
    } else {
        "ok"
    };
    out.push_str(&format!("persistence  {verdict}: {report}\n"));
    match refused {
        Some(e) => Err(CliError::Check(format!("{out}\n{e}"))),
        None => Ok(out),
    }
}

fn store_error(e: steadfast_runtime::redis_connection::ConnectError) -> CliError {
    CliError::from(steadfast_runtime::StoreError::from(e))
}
