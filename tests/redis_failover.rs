//! Failovers with runs in flight, on servers the tests start on loopback:
//! a Redis Cluster master killed mid-run, a Sentinel failover mid-run —
//! every run settles exactly once, and an activity repeats only with its
//! interrupted call's idempotency key — and what each commit durability
//! setting loses when a master dies (the rows of the "what is lost"
//! table in docs/operations.md).

#[path = "support/crash_saga.rs"]
mod crash_saga;
mod support;

use std::time::{Duration, Instant};

use crash_saga::{Lcg, crash_order, exec_log, start_orders, verify, wait_all_settled};
use steadfast::prelude::*;
use steadfast::{
    AdminStore as _, ClientError, RedisStore, RunList, Store, StoreError, WorkerHandle,
};
use support::redis_cluster::RedisCluster;
use support::redis_sentinel::RedisSentinels;
use support::redis_server::RedisServer;
use tokio::task::block_in_place;

const LEASE: Duration = Duration::from_millis(1000);

fn builder(url: &str, shards: u32) -> steadfast::RedisStoreBuilder {
    RedisStore::builder(url)
        .shards(shards)
        .reclaim_after(LEASE)
        .check_persistence(false)
}

async fn store(url: &str, shards: u32) -> RedisStore {
    builder(url, shards).connect().await.expect("connects")
}

/// A store whose commits wait for one replica: the runs a test starts
/// exist on a replica before the master is killed.
async fn waiting_store(url: &str, shards: u32) -> RedisStore {
    builder(url, shards)
        .wait_for_replicas(1, Duration::from_secs(5))
        .connect()
        .await
        .expect("connects")
}

async fn spawn_workers(url: &str, shards: u32, log_url: &str, count: usize) -> Vec<WorkerHandle> {
    let mut workers = Vec::new();
    for i in 0..count {
        let store = store(url, shards).await;
        workers.push(
            Worker::builder(store)
                .register::<crash_order>()
                .resource(exec_log(log_url).await)
                .worker_id(format!("failover-{i}"))
                .lease(LEASE)
                .concurrency(16)
                .poll_wait(Duration::from_millis(200))
                .build()
                .expect("builds")
                .spawn(),
        );
    }
    workers
}

/// Waits until `at_least` runs have committed past their start.
async fn wait_progress(store: &RedisStore, ids: &[String], at_least: usize) {
    let started = Instant::now();
    loop {
        let mut moved = 0;
        for id in ids {
            if store
                .load(id)
                .await
                .ok()
                .flatten()
                .is_some_and(|r| r.seq >= 2)
            {
                moved += 1;
            }
        }
        if moved >= at_least {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {moved} runs progressed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_killed_mid_run_loses_no_run() {
    let t0 = Instant::now();
    let mut cluster = block_in_place(RedisCluster::start);
    let log = RedisServer::start();
    let url = cluster.url();
    let shards = 6;
    let client_store = waiting_store(&url, shards).await;
    let client = Client::new(client_store.clone());
    let mut rng = Lcg(0xfa11_0e47);
    let expected = start_orders(&client, 150, &mut rng).await;
    let ids: Vec<String> = expected.keys().cloned().collect();
    let workers = spawn_workers(&url, shards, &log.url(), 2).await;
    wait_progress(&client_store, &ids, 20).await;

    // The master of the shard of the first run that has not settled.
    let active = client_store
        .list_runs(RunList::Active, 1)
        .await
        .expect("lists");
    let victim = active.first().cloned().unwrap_or_else(|| ids[0].clone());
    let killed_at = Instant::now();
    let (old, slot) = cluster.kill_master_of(&client_store.run_key(&victim));
    let new = block_in_place(|| cluster.wait_failover(slot, old));
    println!(
        "master {old} killed with runs in flight; {new} serves slot {slot} after {:?}",
        killed_at.elapsed()
    );

    wait_all_settled(&client_store, Duration::from_secs(120)).await;
    let repeats = verify(&client_store, &log.url(), &expected).await;
    println!(
        "{} runs settled exactly once across the failover, {repeats} repeated executions \
         (each with its call's key); {:?} in all",
        expected.len(),
        t0.elapsed()
    );
    for w in workers {
        w.shutdown().await.expect("a worker survives the failover");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_mid_run_loses_no_run() {
    let t0 = Instant::now();
    let mut setup = block_in_place(RedisSentinels::start);
    let log = RedisServer::start();
    let url = setup.url();
    let client_store = waiting_store(&url, 1).await;
    let client = Client::new(client_store.clone());
    let mut rng = Lcg(0x5e47_1ae1);
    let expected = start_orders(&client, 100, &mut rng).await;
    let ids: Vec<String> = expected.keys().cloned().collect();
    let workers = spawn_workers(&url, 1, &log.url(), 2).await;
    wait_progress(&client_store, &ids, 20).await;

    let failover = block_in_place(|| setup.kill_master());
    println!("master killed with runs in flight; replica promoted after {failover:?}");
    wait_all_settled(&client_store, Duration::from_secs(120)).await;
    let repeats = verify(&client_store, &log.url(), &expected).await;
    println!(
        "{} runs settled exactly once across the failover, {repeats} repeated executions; \
         {:?} in all",
        expected.len(),
        t0.elapsed()
    );
    for w in workers {
        w.shutdown().await.expect("a worker survives the failover");
    }
}

/// A run id of `store` whose record lives on the master on `port`.
fn id_on(store: &RedisStore, cluster: &RedisCluster, port: u16, tag: &str) -> String {
    (0..10_000)
        .map(|i| format!("{tag}-{i}"))
        .find(|id| cluster.master_of(cluster.slot_of(&store.run_key(id))) == Some(port))
        .expect("some id lands on every master")
}

/// Cuts a master's replication to its replica: the replica is stopped
/// (SIGSTOP), so that it cannot reconnect, and the master drops its link,
/// so that nothing is sent to it, not even into a socket buffer.
fn cut_replication(cluster: &RedisCluster, master: u16, replica: u16) {
    let replica = cluster.node(replica).expect("the replica runs");
    replica.signal("STOP");
    let master = cluster.node(master).expect("the master runs");
    master.cli(&["CLIENT", "KILL", "TYPE", "replica"]);
}

/// What each commit durability setting loses when a master dies, shown
/// deterministically on a cluster (each case on a master of its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_failover_loses_with_and_without_waiting_for_a_replica() {
    let t0 = Instant::now();
    let mut cluster = block_in_place(RedisCluster::start);
    let url = cluster.url();
    let shards = 16;
    let plain = store(&url, shards).await;
    let waiting = builder(&url, shards)
        .wait_for_replicas(1, Duration::from_millis(300))
        .connect()
        .await
        .expect("connects");
    let masters: Vec<u16> = cluster
        .layout()
        .iter()
        .filter(|l| l.master && !l.slots.is_empty())
        .map(|l| l.port)
        .collect();
    assert_eq!(masters.len(), 3, "{masters:?}");

    // 1. Commits that do not wait: the master acknowledges a start its
    //    replica never received; the replica is promoted without it.
    let (m, r) = (
        masters[0],
        cluster.replica_of(masters[0]).expect("a replica"),
    );
    let id = id_on(&plain, &cluster, m, "lost");
    cut_replication(&cluster, m, r);
    Client::new(plain.clone())
        .start::<crash_order>(id.as_str(), (id.clone(), 10, 0))
        .await
        .expect("acknowledged by the master alone");
    assert!(plain.load(&id).await.expect("reads").is_some());
    let slot = cluster.slot_of(&plain.run_key(&id));
    cluster.kill_node(m);
    cluster.node(r).expect("the replica").signal("CONT");
    block_in_place(|| cluster.wait_failover(slot, m));
    let after = eventually_read(&plain, &id).await;
    assert!(
        after.is_none(),
        "an acknowledged commit survived although its replica never had it"
    );
    println!("without WAIT: an acknowledged start was lost in the failover");

    // 2. Commits that wait, with the replica cut off: the wait times out,
    //    and the caller is told (the write stands on the master alone).
    let (m, r) = (
        masters[1],
        cluster.replica_of(masters[1]).expect("a replica"),
    );
    let id = id_on(&waiting, &cluster, m, "unsure");
    cut_replication(&cluster, m, r);
    let refused = Client::new(waiting.clone())
        .start::<crash_order>(id.as_str(), (id.clone(), 10, 0))
        .await
        .expect_err("not acknowledged as durable");
    assert!(
        matches!(
            &refused,
            ClientError::Store(StoreError::Unreplicated {
                acknowledged: 0,
                wanted: 1,
                ..
            })
        ),
        "{refused}"
    );
    cluster.node(r).expect("the replica").signal("CONT");
    println!("with WAIT 1 and the replica cut off: {refused}");

    // 3. Commits that wait, acknowledged by the replica: the master dies
    //    right after the acknowledgement, and the promoted replica has it.
    let m = masters[2];
    let id = id_on(&waiting, &cluster, m, "kept");
    Client::new(waiting.clone())
        .start::<crash_order>(id.as_str(), (id.clone(), 10, 0))
        .await
        .expect("acknowledged by a replica");
    let slot = cluster.slot_of(&waiting.run_key(&id));
    cluster.kill_node(m);
    block_in_place(|| cluster.wait_failover(slot, m));
    let after = eventually_read(&waiting, &id).await;
    assert!(
        after.is_some(),
        "a commit acknowledged by a replica was lost"
    );
    println!(
        "with WAIT 1 acknowledged: the start survived the failover; {:?} in all",
        t0.elapsed()
    );
}

/// Reads a run once the cluster answers for its slot again.
async fn eventually_read(store: &RedisStore, id: &str) -> Option<steadfast::RunRecord> {
    let started = Instant::now();
    loop {
        match store.load(id).await {
            Ok(r) => return r,
            Err(e) if e.is_transient() && started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{id}: {e}"),
        }
    }
}
