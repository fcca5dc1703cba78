//! The store end to end beyond one plain server: on a Redis Cluster (3
//! masters, 3 replicas on loopback), the store conformance suite with runs
//! over 8 shards and every lifecycle scenario; over TLS (`rediss://` with a
//! CA generated at test time, the CA given in the URL or to the builder,
//! and client certificates), sagas run to completion.

mod support;

use std::sync::Arc;
use std::time::Duration;

use steadfast::testing::conformance::{self, Harness};
use steadfast::{RedisStore, Store};
use support::lifecycle_scenarios as scenario;
use support::redis_cluster::RedisCluster;
use support::redis_tls::RedisTls;
use support::rig::Rig;
use support::workflows::{self, saga};
use tokio::task::block_in_place;

/// A store on the cluster; records are broken with `redis-cli -c`.
struct ClusterHarness<'a> {
    cluster: &'a RedisCluster,
    store: RedisStore,
}

#[async_trait::async_trait]
impl Harness for ClusterHarness<'_> {
    fn store(&self) -> Arc<dyn Store> {
        Arc::new(self.store.clone())
    }

    async fn set_field(&self, workflow_id: &str, field: &str, value: Option<&str>) {
        let key = self.store.run_key(workflow_id);
        match value {
            Some(v) => self.cluster.cli(&["HSET", &key, field, v]),
            None => self.cluster.cli(&["HDEL", &key, field]),
        };
    }

    async fn delete_record(&self, workflow_id: &str) {
        self.cluster.cli(&["DEL", &self.store.run_key(workflow_id)]);
    }

    async fn push_raw_signal(&self, workflow_id: &str, raw: &str) {
        self.cluster
            .cli(&["RPUSH", &self.store.signals_key(workflow_id), raw]);
    }

    fn reclaim_after(&self) -> Duration {
        Duration::from_millis(300)
    }
}

async fn cluster_store(cluster: &RedisCluster, prefix: &str, reclaim: Duration) -> RedisStore {
    RedisStore::builder(cluster.url())
        .prefix(prefix)
        .shards(8)
        .reclaim_after(reclaim)
        .check_persistence(false)
        .connect()
        .await
        .expect("connects to the cluster")
}

macro_rules! on_cluster {
    ($($name:ident),* $(,)?) => {
        /// Every lifecycle scenario at once, each under a prefix of its own.
        async fn every_scenario_on(cluster: &RedisCluster) -> usize {
            let mut runs = tokio::task::JoinSet::new();
            $(
                let store = cluster_store(
                    cluster,
                    concat!(stringify!($name), ":"),
                    Duration::from_millis(300),
                )
                .await;
                runs.spawn(async move {
                    scenario::$name(Rig::on_redis_store(store)).await;
                    stringify!($name)
                });
            )*
            let mut passed = 0;
            while let Some(done) = runs.join_next().await {
                match done {
                    Ok(_) => passed += 1,
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                }
            }
            passed
        }
    };
}

support::lifecycle_scenarios::every_scenario!(on_cluster);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_conforms_and_every_lifecycle_scenario_passes_on_a_cluster() {
    let t0 = std::time::Instant::now();
    let cluster = block_in_place(RedisCluster::start);
    let harness = ClusterHarness {
        cluster: &cluster,
        store: cluster_store(&cluster, "conformance:", Duration::from_millis(300)).await,
    };
    let report = conformance::run_all(&harness)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.passed.len() >= 19, "{:?}", report.passed);
    let scenarios = every_scenario_on(&cluster).await;
    assert!(scenarios >= 25, "{scenarios}");
    tasks_a_worker_left_behind_are_handed_back(&cluster).await;
    println!(
        "cluster: {} conformance scenarios and {scenarios} lifecycle scenarios in {:?}",
        report.passed.len(),
        t0.elapsed()
    );
}

/// A run id in shard `shard` of `store`.
fn id_in_shard(store: &RedisStore, shard: u32, tag: &str) -> String {
    (0..1000)
        .map(|i| format!("{tag}-{i}"))
        .find(|id| store.run_key(id).contains(&format!("{{s{shard}}}")))
        .expect("ids spread over the shards")
}

fn new_run(id: &str) -> steadfast::core::Decision {
    let start = steadfast::StateSnapshot::new("start", "fp", serde_json::json!({"start": {}}));
    let record =
        steadfast::RunRecord::new_run(id, "wf", "handed", serde_json::json!(null), start, 0);
    steadfast::core::create(record)
}

/// On a cluster a worker's blocking reads wait on every shard at once; a
/// task one of them brings after the poll returned, for a worker that
/// never polls again (it stopped), is handed back to the queue at once
/// instead of waiting out the reclaim time (a minute here), and counts as
/// its first delivery.
async fn tasks_a_worker_left_behind_are_handed_back(cluster: &RedisCluster) {
    let store = cluster_store(cluster, "handback:", Duration::from_secs(60)).await;
    let queues = vec!["handed".to_owned()];
    let (first, second) = (id_in_shard(&store, 0, "a"), id_in_shard(&store, 1, "b"));
    let poller = store.clone();
    let queues_for_poll = queues.clone();
    let poll = tokio::spawn(async move {
        poller
            .poll("leaver", &queues_for_poll, 8, Duration::from_secs(3))
            .await
    });
    // The poll's reads are in flight on every shard; one task ends it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.create(&new_run(&first)).await.expect("creates");
    let got = poll.await.expect("the poll ends").expect("polls");
    assert_eq!(
        got.iter()
            .map(|t| t.workflow_id.as_str())
            .collect::<Vec<_>>(),
        [first.as_str()]
    );
    // The read of the other shard is still waiting (3 s): it brings this
    // one, which no poll of `leaver` ever takes; it is handed back after
    // twice its block.
    store.create(&new_run(&second)).await.expect("creates");
    let stream = store.task_key(&second, "handed");
    let started = std::time::Instant::now();
    loop {
        let pending = cluster.cli(&["XPENDING", &stream, "steadfast", "-", "+", "10"]);
        let idle: Vec<u64> = pending
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .filter(|n: &u64| *n >= 60_000)
            .collect();
        if !idle.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not handed back: {pending}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let other = cluster_store(cluster, "handback:", Duration::from_secs(60)).await;
    let taken = other
        .poll("taker", &queues, 8, Duration::from_millis(100))
        .await
        .expect("polls");
    let task = taken
        .iter()
        .find(|t| t.workflow_id == second)
        .unwrap_or_else(|| panic!("{second} in {taken:?}"));
    assert_eq!(task.deliveries, 1, "{task:?}");
}

async fn sagas_complete_on(store: RedisStore) {
    let journal = support::Journal::default();
    let worker = workflows::register(steadfast::Worker::builder(store.clone()))
        .resource(journal.clone())
        .poll_wait(Duration::from_millis(50))
        .build()
        .expect("builds")
        .spawn();
    let client = steadfast::Client::new(store);
    for i in 0..5 {
        let id = format!("tls-{i}");
        let names = vec![format!("{id}-a"), format!("{id}-b")];
        let done = client
            .start::<saga>(&id, (names, false))
            .await
            .expect("starts")
            .result_within(Duration::from_secs(30))
            .await
            .expect("completes");
        assert_eq!(done.len(), 2, "{done:?}");
    }
    worker.shutdown().await.expect("stops");
}

#[tokio::test]
async fn sagas_run_over_tls_with_the_ca_in_the_url_or_given_to_the_builder() {
    let tls = RedisTls::start(false);
    let store = RedisStore::builder(tls.url_with_ca(&tls.certs.ca))
        .connect()
        .await
        .expect("connects over TLS");
    assert!(store.connection().target().tls().is_some());
    sagas_complete_on(store).await;

    let plain_url = tls.url_with_ca(&tls.certs.ca);
    let without_ca = plain_url.split('?').next().unwrap_or_default().to_owned();
    let store = RedisStore::builder(without_ca.as_str())
        .ca_file(&tls.certs.ca)
        .prefix("builder:")
        .connect()
        .await
        .expect("connects with the builder's CA");
    sagas_complete_on(store).await;

    let refused = RedisStore::builder(without_ca.as_str())
        .ca_file(&tls.certs.other_ca)
        .connect()
        .await
        .expect_err("a certificate from another CA is refused");
    assert!(
        matches!(refused, steadfast::StoreError::Misconfigured(_)),
        "{refused}"
    );
    assert!(
        refused.is_fatal() && refused.to_string().contains("certificate"),
        "{refused}"
    );
}

#[tokio::test]
async fn sagas_run_over_mutual_tls() {
    let tls = RedisTls::start(true);
    let store = RedisStore::builder(tls.url_with_client_cert())
        .connect()
        .await
        .expect("connects with a client certificate");
    sagas_complete_on(store).await;
}
