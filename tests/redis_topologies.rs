//! The Redis connection layer against real topologies the tests start
//! themselves on loopback: a Redis Cluster of 3 masters and 3 replicas
//! with a master killed mid-run, a master with a replica and 3 Sentinels
//! failed over, TLS servers with certificates generated here, and a server
//! with the ACL users of docs/operations.md.

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::{Script, Value};
use steadfast::StoreError;
use steadfast::redis_connection::{
    Access, ConnectError, ConnectOptions, FailureKind, RedisConnection, ReplicaAck, RiskOfLoss,
    ScriptCall, check_access, persistence,
};
use support::redis_acl::{ADMIN_PASSWORD, READER_PASSWORD, RedisAcl, WORKER_PASSWORD};
use support::redis_cluster::RedisCluster;
use support::redis_sentinel::RedisSentinels;
use support::redis_server::{Durability, RedisServer};
use support::redis_tls::{RedisTls, TestCerts};
use tokio::task::block_in_place;

/// Increments a counter in two keys of one slot and returns the second.
const BUMP: &str = "redis.call('HINCRBY', KEYS[1], 'n', 1) \
                    return redis.call('HINCRBY', KEYS[2], 'n', 1)";

fn keys(shard: u32) -> (String, String) {
    (
        format!("steadfast:{{s{shard}}}:wf:a"),
        format!("steadfast:{{s{shard}}}:wf:b"),
    )
}

async fn connect(url: &str) -> RedisConnection {
    match RedisConnection::open(url, &ConnectOptions::default()).await {
        Ok(c) => c,
        Err(e) => panic!("connects to {url}: {e}"),
    }
}

async fn bump(conn: &RedisConnection, shard: u32) -> redis::RedisResult<i64> {
    let (a, b) = keys(shard);
    let mut c = conn.clone();
    Script::new(BUMP).key(a).key(b).invoke_async(&mut c).await
}

/// Runs `bump` until it succeeds or `within` passes; returns the value and
/// how many attempts failed.
async fn bump_until_ok(conn: &RedisConnection, shard: u32, within: Duration) -> (i64, u32) {
    let deadline = Instant::now() + within;
    let mut failed = 0;
    loop {
        match bump(conn, shard).await {
            Ok(v) => return (v, failed),
            Err(e) if Instant::now() < deadline => {
                let kind = conn.error(&e).kind();
                assert_eq!(kind, FailureKind::Unavailable, "during a failover: {e}");
                failed += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no success within {within:?}: {e}"),
        }
    }
}

/// A blocking read on `stream` sees an entry added while it waits.
async fn blocking_read_sees_a_new_entry(conn: &RedisConnection, stream: &str) {
    let mut c = conn.clone();
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg("g")
        .arg("$")
        .arg("MKSTREAM")
        .query_async(&mut c)
        .await;
    if let Err(e) = created {
        assert_eq!(e.code(), Some("BUSYGROUP"), "{e}");
    }
    let mut blocking = conn
        .blocking(Duration::from_secs(10))
        .await
        .expect("a blocking connection");
    let stream_name = stream.to_owned();
    let read = tokio::spawn(async move {
        redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("worker-1")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(10_000)
            .arg("STREAMS")
            .arg(&stream_name)
            .arg(">")
            .query_async::<Value>(&mut blocking)
            .await
    });
    // Commands on the shared handle are not held up by the blocked read.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("id")
        .arg("run-1")
        .query_async(&mut c)
        .await
        .expect("XADD while a read blocks");
    assert!(started.elapsed() < Duration::from_secs(2));
    let got = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the blocked read returns")
        .expect("the read task ends")
        .expect("XREADGROUP succeeds");
    assert!(format!("{got:?}").contains("run-1"), "{got:?}");
}

/// A subscription from `conn.pubsub()` hears a `PUBLISH` run inside a
/// script on shard `shard`.
async fn subscription_hears_a_script_publish(conn: &RedisConnection, shard: u32) {
    let mut pubsub = conn.pubsub().await.expect("a subscription connection");
    pubsub
        .psubscribe("steadfast:{s*}:settled")
        .await
        .expect("PSUBSCRIBE");
    let mut messages = pubsub.on_message();
    let channel = format!("steadfast:{{s{shard}}}:settled");
    let mut c = conn.clone();
    let (key, _) = keys(shard);
    let publish = Script::new("return redis.call('PUBLISH', ARGV[1], ARGV[2])");
    let _: i64 = publish
        .key(key)
        .arg(&channel)
        .arg("run-7")
        .invoke_async(&mut c)
        .await
        .expect("a script publishes");
    let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .expect("the message arrives")
        .expect("the subscription is open");
    assert_eq!(msg.get_channel_name(), channel);
    assert_eq!(msg.get_payload::<String>().ok().as_deref(), Some("run-7"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_runs_single_slot_scripts_and_survives_a_master_kill() {
    let t0 = Instant::now();
    let mut cluster = block_in_place(RedisCluster::start);
    let started = t0.elapsed();
    let conn = connect(&cluster.url()).await;
    assert!(conn.is_cluster());

    // Shards spread over the masters through their hash tags.
    let mut masters = std::collections::HashSet::new();
    for shard in 0..16 {
        assert_eq!(bump(&conn, shard).await.expect("a single-slot script"), 1);
        masters.insert(cluster.master_of(cluster.slot_of(&keys(shard).0)));
    }
    assert!(masters.len() >= 2, "16 shards on {masters:?}");

    // A pipeline of one slot, and a script pipelined with WAIT: one round
    // trip that returns once a replica has the write.
    let mut c = conn.clone();
    let (a, b) = keys(1);
    let (set, got): (i64, String) = redis::pipe()
        .cmd("HSET")
        .arg(&a)
        .arg("f")
        .arg("v")
        .cmd("HGET")
        .arg(&a)
        .arg("f")
        .query_async(&mut c)
        .await
        .expect("a single-slot pipeline");
    assert_eq!((set, got.as_str()), (1, "v"));
    // A fresh script (unknown to the server): loaded, then sent again.
    let script = Script::new(&format!("{BUMP} -- {}", std::process::id()));
    let (value, replicas): (i64, u32) = ScriptCall::new(&script, 2, 2, 64)
        .key(&a)
        .key(&b)
        .invoke_and_wait(&mut c, ReplicaAck::new(1, Duration::from_secs(5)))
        .await
        .expect("EVALSHA + WAIT");
    assert_eq!((value, replicas), (2, 1));

    blocking_read_sees_a_new_entry(&conn, "steadfast:{s0}:q:orders").await;
    subscription_hears_a_script_publish(&conn, 5).await;
    let report = persistence(&conn)
        .await
        .expect("persistence of each master");
    assert_eq!(report.nodes.len(), 3, "{report:?}");
    assert!(report.replicated && report.can_lose_data(), "{report}");

    // A write acknowledged by a replica survives the death of its master.
    let (_, before) = keys(0);
    let mut c = conn.clone();
    let _: (i64, i64) = redis::pipe()
        .cmd("HINCRBY")
        .arg(&before)
        .arg("n")
        .arg(0)
        .cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query_async(&mut c)
        .await
        .expect("WAIT before the kill");
    let kill = Instant::now();
    let (old, slot) = cluster.kill_master_of(&before);
    let (value, failed) = bump_until_ok(&conn, 0, Duration::from_secs(60)).await;
    let recovered = kill.elapsed();
    let new = block_in_place(|| cluster.wait_failover(slot, old));
    assert_ne!(new, old);
    // 1 before the kill, then exactly one successful increment.
    assert_eq!(value, 2, "after {failed} failed attempts");
    blocking_read_sees_a_new_entry(&conn, "steadfast:{s0}:q:after").await;
    subscription_hears_a_script_publish(&conn, 0).await;
    eprintln!(
        "cluster: started in {started:?}; master {old} killed, commands succeeded again after \
         {recovered:?} ({failed} failed attempts), {new} serves the slot; total {:?}",
        t0.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_is_reached_through_rediss_cluster_urls() {
    let t0 = Instant::now();
    let certs = TestCerts::generate();
    let cluster = block_in_place(|| RedisCluster::start_tls(&certs));
    let conn = connect(&cluster.tls_url(&certs.ca)).await;
    for shard in 0..8 {
        assert_eq!(bump(&conn, shard).await.expect("a script over TLS"), 1);
    }
    blocking_read_sees_a_new_entry(&conn, "steadfast:{s3}:q:orders").await;
    subscription_hears_a_script_publish(&conn, 6).await;
    let wrong = RedisConnection::open(
        &cluster.tls_url(&certs.other_ca),
        &ConnectOptions::default(),
    )
    .await
    .expect_err("a certificate from another CA is refused");
    assert!(!wrong.is_transient(), "{wrong}");
    eprintln!("TLS cluster: {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_connections_follow_the_master_across_a_failover() {
    let t0 = Instant::now();
    let mut setup = block_in_place(RedisSentinels::start);
    let started = t0.elapsed();
    let conn = connect(&setup.url()).await;
    assert_eq!(
        conn.sentinel_master().map(|m| m.port),
        Some(setup.master.port)
    );
    let (a, b) = keys(0);
    let mut c = conn.clone();
    let bump = Script::new(BUMP);
    let (value, replicas): (i64, u32) = ScriptCall::new(&bump, 2, 2, 64)
        .key(&a)
        .key(&b)
        .invoke_and_wait(&mut c, ReplicaAck::new(1, Duration::from_secs(5)))
        .await
        .expect("a script on the master, acknowledged by the replica");
    assert_eq!((value, replicas), (1, 1));
    subscription_hears_a_script_publish(&conn, 0).await;

    let failover = block_in_place(|| setup.kill_master());
    let (value, failed) = bump_until_ok(&conn, 0, Duration::from_secs(10)).await;
    assert_eq!(value, 2, "after {failed} failed attempts");
    assert!(
        failed <= 2,
        "{failed} attempts failed after the Sentinels had switched"
    );
    assert_eq!(
        conn.sentinel_master().map(|m| m.port),
        Some(setup.replica.port)
    );
    blocking_read_sees_a_new_entry(&conn, "steadfast:{s0}:q:orders").await;
    subscription_hears_a_script_publish(&conn, 0).await;
    let report = persistence(&conn).await.expect("persistence of the master");
    assert!(report.replicated, "{report}");
    // The promoted master has no replica left: a commit that waits for one
    // is committed on the master alone, and says so.
    let mut c = conn.clone();
    let (value, replicas): (i64, u32) = ScriptCall::new(&bump, 2, 2, 64)
        .key(&a)
        .key(&b)
        .invoke_and_wait(&mut c, ReplicaAck::new(1, Duration::from_millis(200)))
        .await
        .expect("a commit without a replica");
    assert_eq!((value, replicas), (3, 0));
    eprintln!(
        "sentinel: started in {started:?}, failover in {failover:?}, {failed} failed attempts; \
         total {:?}",
        t0.elapsed()
    );
}

#[tokio::test]
async fn tls_connections_verify_the_server_against_the_ca_file() {
    let tls = RedisTls::start(false);
    let conn = connect(&tls.url_with_ca(&tls.certs.ca)).await;
    assert_eq!(bump(&conn, 0).await.expect("a script over TLS"), 1);
    blocking_read_sees_a_new_entry(&conn, "steadfast:{s0}:q:tls").await;
    subscription_hears_a_script_publish(&conn, 0).await;

    let wrong = RedisConnection::open(
        &tls.url_with_ca(&tls.certs.other_ca),
        &ConnectOptions::default(),
    )
    .await
    .expect_err("a certificate from another CA is refused");
    assert_eq!(wrong.kind(), FailureKind::Misconfigured, "{wrong}");
    assert!(wrong.to_string().contains("certificate"), "{wrong}");

    // TLS spoken to the plain port: the server waits for a command line
    // that never comes, so the handshake times out like a server that is
    // away (and is retried as such).
    let plain = format!(
        "rediss://127.0.0.1:{}/?ca_file={}",
        tls.server.port,
        tls.certs.ca.display()
    );
    let quick = ConnectOptions::default().connection_timeout(Duration::from_secs(1));
    let mixed = RedisConnection::open(&plain, &quick)
        .await
        .expect_err("TLS to a plain port fails");
    assert!(
        mixed.to_string().contains(&tls.server.port.to_string()),
        "{mixed}"
    );
}

#[tokio::test]
async fn tls_client_certificates_are_sent_when_given() {
    let tls = RedisTls::start(true);
    let without =
        RedisConnection::open(&tls.url_with_ca(&tls.certs.ca), &ConnectOptions::default())
            .await
            .expect_err("a server that requires a client certificate refuses none");
    assert!(!without.is_transient(), "{without}");
    let conn = connect(&tls.url_with_client_cert()).await;
    assert_eq!(bump(&conn, 0).await.expect("a script over mutual TLS"), 1);
}

fn assert_hidden(error: &ConnectError, secret: &str) {
    let shown = format!("{error} / {error:?}");
    assert!(!shown.contains(secret), "the password shows: {shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_users_can_do_what_they_need_and_nothing_more() {
    let acl = block_in_place(|| RedisAcl::start(&["+config|get"]));
    let worker = connect(&acl.url("steadfast-worker", WORKER_PASSWORD)).await;
    let shown = format!("{worker:?} {} {:?}", worker.target(), worker.target());
    assert!(!shown.contains(WORKER_PASSWORD), "{shown}");
    assert!(
        shown.contains("redis://steadfast-worker:***@127.0.0.1:"),
        "{shown}"
    );
    check_access(&worker, &Access::worker("steadfast:"))
        .await
        .expect("the worker user has every permission");
    assert_eq!(bump(&worker, 0).await.expect("the worker runs scripts"), 1);
    blocking_read_sees_a_new_entry(&worker, "steadfast:{s0}:q:orders").await;
    subscription_hears_a_script_publish(&worker, 0).await;
    let report = persistence(&worker)
        .await
        .expect("CONFIG GET for the worker");
    assert_eq!(report.risk(), Some(RiskOfLoss::Everything), "{report}");

    let reader = connect(&acl.url("steadfast-reader", READER_PASSWORD)).await;
    check_access(&reader, &Access::reader("steadfast:"))
        .await
        .expect("the reader user reads");
    let e = check_access(&reader, &Access::worker("steadfast:"))
        .await
        .expect_err("the reader runs no scripts");
    assert_eq!(e.kind(), FailureKind::Permission, "{e}");
    let mut r = reader.clone();
    let write: redis::RedisResult<i64> = redis::cmd("HSET")
        .arg("steadfast:{s0}:wf:x")
        .arg("f")
        .arg("v")
        .query_async(&mut r)
        .await;
    let write = reader.error(&write.expect_err("the reader writes nothing"));
    assert_eq!(write.kind(), FailureKind::Permission, "{write}");
    assert!(
        write.to_string().contains("not allowed to run `HSET`"),
        "{write}"
    );

    let noscript = connect(&acl.url("steadfast-noscript", WORKER_PASSWORD)).await;
    let e = check_access(&noscript, &Access::worker("steadfast:"))
        .await
        .expect_err("a user without scripting is refused at connect");
    assert_eq!(e.kind(), FailureKind::Permission);
    let text = e.to_string();
    assert!(
        text.contains("steadfast-noscript") && text.contains("run scripts"),
        "{text}"
    );
    assert_hidden(&e, WORKER_PASSWORD);
    let store = StoreError::from(e);
    assert!(matches!(store, StoreError::Permission(_)) && !store.is_transient());

    let partial = connect(&acl.url("steadfast-partial", WORKER_PASSWORD)).await;
    let e = check_access(&partial, &Access::worker("steadfast:"))
        .await
        .expect_err("a user without XADD and the pattern is refused at connect");
    let text = e.to_string();
    assert!(
        text.contains("run XADD, PSUBSCRIBE steadfast:{s*}:settled"),
        "{text}"
    );

    let admin = connect(&acl.url("default", ADMIN_PASSWORD)).await;
    check_access(&admin, &Access::worker("steadfast:").with_wait())
        .await
        .expect("the default user may do everything");
}

#[tokio::test]
async fn authentication_failures_say_so_and_never_show_the_password() {
    let acl = RedisAcl::start(&[]);
    for (url, secret) in [
        (
            acl.url("steadfast-worker", "not-the-Secr3t"),
            "not-the-Secr3t",
        ),
        (acl.url("nobody", "nobody-Secr3t"), "nobody-Secr3t"),
        (acl.url_without_credentials(), ADMIN_PASSWORD),
    ] {
        let e = RedisConnection::open(&url, &ConnectOptions::default())
            .await
            .expect_err("refused");
        assert_eq!(e.kind(), FailureKind::Auth, "{url}: {e}");
        assert!(!e.is_transient());
        assert!(e.to_string().contains("refused to authenticate"), "{e}");
        assert_hidden(&e, secret);
        let store = StoreError::from(e);
        assert!(matches!(store, StoreError::Auth(_)), "{store:?}");
        let shown = format!("{store} {store:?}");
        assert!(!shown.contains(secret), "{shown}");
    }
    // A malformed URL with a password.
    let e = RedisConnection::open(
        "redis://:hunter2@127.0.0.1:notaport",
        &ConnectOptions::default(),
    )
    .await
    .expect_err("malformed");
    assert_hidden(&e, "hunter2");
}

#[tokio::test]
async fn persistence_reports_what_a_crash_can_lose() {
    for (durability, risk) in [
        (Durability::None, RiskOfLoss::Everything),
        (Durability::EverySec, RiskOfLoss::AboutOneSecond),
        (Durability::Always, RiskOfLoss::Nothing),
    ] {
        let server = RedisServer::start_with(durability);
        let conn = connect(&server.url()).await;
        let report = persistence(&conn).await.expect("reads the settings");
        assert_eq!(report.risk(), Some(risk), "{durability:?}: {report}");
        assert_eq!(
            report.can_lose_data(),
            risk != RiskOfLoss::Nothing,
            "{report}"
        );
        assert!(!report.replicated);
        if durability == Durability::None {
            server.cli(&["CONFIG", "SET", "save", "3600 1"]);
            let report = persistence(&conn).await.expect("reads the settings");
            assert_eq!(
                report.risk(),
                Some(RiskOfLoss::SinceLastSnapshot),
                "{report}"
            );
            assert!(
                report.to_string().contains("since the last snapshot"),
                "{report}"
            );
        }
    }
    // A user that may not read the settings: reported, not an error.
    let acl = RedisAcl::start(&[]);
    let worker = connect(&acl.url("steadfast-worker", WORKER_PASSWORD)).await;
    let report = persistence(&worker)
        .await
        .expect("a refused CONFIG GET is reported");
    assert!(
        report.unreadable.is_some() && report.can_lose_data(),
        "{report:?}"
    );
}
