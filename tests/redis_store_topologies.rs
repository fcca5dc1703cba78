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
    println!(
        "cluster: {} conformance scenarios and {scenarios} lifecycle scenarios in {:?}",
        report.passed.len(),
        t0.elapsed()
    );
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
