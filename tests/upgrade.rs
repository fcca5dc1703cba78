//! Upgrades you can prove: runs left in flight by an older build, the
//! pre-deploy check of the new build against them (what it resumes as is,
//! migrates, or would park, and why), and the new build's workers doing
//! exactly that. On a real Redis.

mod support;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use steadfast::prelude::*;
use steadfast::{Migration, RedisStore, Registry, Status, Store, Workflow, check};
use support::redis_server::RedisServer;

/// The error of both builds.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{0}")]
pub struct UpError(String);

impl From<ActivityError<UpError>> for UpError {
    fn from(e: ActivityError<UpError>) -> Self {
        UpError(e.to_string())
    }
}

/// Lets a waiting run go on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Go;

impl Signal for Go {
    const NAME: &'static str = "go";
}

/// Holds a run before it is charged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hold;

impl Signal for Hold {
    const NAME: &'static str = "hold";
}

/// The build running in production: a payment is just its id.
mod old_build {
    use super::*;

    /// A payment, as the old build stores it.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub(crate) struct Payment {
        /// The provider's id.
        pub(crate) id: String,
    }

    #[activity]
    async fn up_charge(_ctx: &ActivityContext, order: String) -> Result<Payment, UpError> {
        Ok(Payment {
            id: format!("pay-{order}"),
        })
    }

    #[activity]
    async fn up_ship(
        _ctx: &ActivityContext,
        order: String,
        payment: String,
    ) -> Result<String, UpError> {
        Ok(format!("{order} shipped, paid by {payment}"))
    }

    /// `path` 0 waits for `Go` after the charge, 1 naps after it with a
    /// note, 2 waits for `Hold` before it.
    #[workflow(name = "upgrade", queue = "upgrade")]
    pub async fn upgrade(
        ctx: &mut WorkflowContext,
        order: String,
        path: u8,
    ) -> Result<String, UpError> {
        if path == 2 {
            ctx.signal::<Hold>().await;
        }
        let payment = up_charge(order.clone()).await?;
        if path == 0 {
            ctx.signal::<Go>().await;
        } else if path == 1 {
            let note: String = format!("nap for {order}");
            ctx.sleep(Duration::from_secs(2)).await;
            let _ = note;
        }
        Ok(up_ship(order, payment.id).await?)
    }
}

/// The build about to be deployed: a payment has a currency; the nap's
/// note became a number (and nobody wrote a migration for it).
mod new_build {
    use super::*;

    /// A payment, as the new build stores it.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub(crate) struct Payment {
        /// The provider's id.
        pub(crate) id: String,
        /// Its currency.
        pub(crate) currency: String,
    }

    #[activity]
    async fn up_charge(_ctx: &ActivityContext, order: String) -> Result<Payment, UpError> {
        Ok(Payment {
            id: format!("pay-{order}"),
            currency: "EUR".into(),
        })
    }

    #[activity]
    async fn up_ship(
        _ctx: &ActivityContext,
        order: String,
        payment: String,
    ) -> Result<String, UpError> {
        Ok(format!("{order} shipped, paid by {payment}"))
    }

    #[workflow(name = "upgrade", queue = "upgrade", migrations = upgrade_migrations)]
    pub async fn upgrade(
        ctx: &mut WorkflowContext,
        order: String,
        path: u8,
    ) -> Result<String, UpError> {
        if path == 2 {
            ctx.signal::<Hold>().await;
        }
        let payment = up_charge(order.clone()).await?;
        if path == 0 {
            ctx.signal::<Go>().await;
        } else if path == 1 {
            let note: u32 = 7;
            ctx.sleep(Duration::from_secs(2)).await;
            let _ = note;
        }
        Ok(up_ship(order, format!("{} {}", payment.id, payment.currency)).await?)
    }

    /// The old build's data of a run waiting for `Go`.
    #[derive(Deserialize)]
    pub(crate) struct WaitingForGo {
        order: String,
        payment: super::old_build::Payment,
    }

    /// The layout of the old build's `signal_go#0`, as the check reports it.
    pub(crate) static OLD_GO_LAYOUT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

    fn upgrade_migrations() -> Vec<Migration<UpgradeState>> {
        let layout = OLD_GO_LAYOUT.get().cloned().unwrap_or_default();
        vec![
            Migration::from("signal_go#0", layout, |old: WaitingForGo| {
                UpgradeState::SignalGo0 {
                    order: old.order,
                    payment: Payment {
                        id: old.payment.id,
                        currency: "EUR".into(),
                    },
                }
            })
            .named("payment_gets_a_currency"),
        ]
    }
}

async fn store(server: &RedisServer) -> RedisStore {
    RedisStore::builder(server.url())
        .reclaim_after(Duration::from_millis(500))
        .check_persistence(false)
        .connect()
        .await
        .expect("connects")
}

async fn wait_for_step(store: &RedisStore, id: &str, step: &str) {
    for _ in 0..400 {
        if let Some(r) = store.load(id).await.expect("reads")
            && r.step() == step
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{id} never reached {step}");
}

#[tokio::test]
async fn the_check_says_what_the_new_build_does_and_the_new_workers_do_it() {
    let server = RedisServer::start();
    let old_layout = old_build::upgrade::info()
        .state("signal_go#0")
        .map(|s| s.fingerprint.to_owned())
        .expect("the old build has the state");
    new_build::OLD_GO_LAYOUT
        .set(old_layout.clone())
        .expect("set once");
    let new_layout = new_build::upgrade::info()
        .state("signal_go#0")
        .map(|s| s.fingerprint.to_owned())
        .expect("the new build has the state");
    assert_ne!(
        old_layout, new_layout,
        "the payment's new field changes the layout"
    );

    // The old build leaves runs in three states.
    let s = store(&server).await;
    let client = Client::new(s.clone());
    let old_worker = Worker::builder(s.clone())
        .register::<old_build::upgrade>()
        .lease(Duration::from_millis(500))
        .poll_wait(Duration::from_millis(50))
        .build()
        .expect("builds")
        .spawn();
    for (id, path, step) in [
        ("go-1", 0u8, "signal_go#0"),
        ("go-2", 0, "signal_go#0"),
        ("nap-1", 1, "sleep#0"),
        ("hold-1", 2, "signal_hold#0"),
    ] {
        client
            .start::<old_build::upgrade>(id, (id.to_owned(), path))
            .await
            .expect("starts");
        wait_for_step(&s, id, step).await;
    }
    old_worker.shutdown().await.expect("stops");

    // The new build's check, before any of its workers runs.
    let mut new_registry = Registry::new();
    new_registry.workflow::<new_build::upgrade>();
    let report = check::check(&new_registry, &s).await.expect("checks");
    let text = report.to_string();
    assert_eq!(
        (
            report.would_resume(),
            report.would_migrate(),
            report.would_park()
        ),
        (1, 2, 1),
        "{text}"
    );
    assert!(
        !report.passes(),
        "a run would park: the rollout is blocked\n{text}"
    );
    assert!(
        text.contains("migrate with `payment_gets_a_currency`"),
        "{text}"
    );
    assert!(
        text.contains("sleep#0") && text.contains("PARK: state `sleep#0`"),
        "{text}"
    );
    let old_registry = {
        let mut r = Registry::new();
        r.workflow::<old_build::upgrade>();
        r
    };
    assert!(
        check::check(&old_registry, &s)
            .await
            .expect("checks")
            .passes(),
        "the old build resumes all of its own runs"
    );

    // The new build's workers do what the check said.
    let new_worker = Worker::builder(s.clone())
        .register::<new_build::upgrade>()
        .lease(Duration::from_millis(500))
        .poll_wait(Duration::from_millis(50))
        .build()
        .expect("builds")
        .spawn();
    for id in ["go-1", "go-2"] {
        client.signal(id, Go).await.expect("sends");
        let out = client
            .handle::<new_build::upgrade>(id)
            .result_within(Duration::from_secs(10))
            .await
            .expect("a migrated run completes");
        assert_eq!(out, format!("{id} shipped, paid by pay-{id} EUR"));
        let events: Vec<String> = client
            .history(id)
            .await
            .expect("history")
            .into_iter()
            .map(|h| h.event)
            .collect();
        assert!(
            events.iter().any(|e| e.contains(&format!(
                "migrated state `signal_go#0` (layout {old_layout}) to `signal_go#0` (layout {new_layout}) with `payment_gets_a_currency`"
            ))),
            "{events:?}"
        );
    }
    client.signal("hold-1", Hold).await.expect("sends");
    assert_eq!(
        client
            .handle::<new_build::upgrade>("hold-1")
            .result_within(Duration::from_secs(10))
            .await
            .expect("an unchanged state resumes as is"),
        "hold-1 shipped, paid by pay-hold-1 EUR"
    );
    // The nap's state does not read with the new code: when its timer fires,
    // the worker parks it rather than run it.
    match client
        .handle::<new_build::upgrade>("nap-1")
        .result_within(Duration::from_secs(10))
        .await
    {
        Err(RunError::Parked { reason }) => {
            assert!(reason.contains("sleep#0"), "{reason}")
        }
        other => panic!("nap-1 parks, as the check said: {other:?}"),
    }
    assert_eq!(
        client
            .describe("nap-1")
            .await
            .expect("reads")
            .expect("exists")
            .status(),
        Status::Parked
    );
    new_worker.shutdown().await.expect("stops");
}

/// A run checkpointed by a release before layouts were traced carries the
/// fingerprint of its types as spelled: this build still reads it (its
/// data is decoded, so a run whose data does not fit parks), and the check
/// says so. Another fingerprint parks.
#[tokio::test]
async fn runs_of_the_release_before_traced_layouts_still_resume() {
    use support::lifecycle::{Item, collector};
    let mut rig = support::rig::Rig::redis().await;
    rig.spawn(support::lifecycle::register(rig.builder()));
    for id in ["legacy", "alien"] {
        rig.client.start::<collector>(id, 1).await.expect("starts");
        rig.wait_for(id, "its signal wait", |r| r.wait().is_some())
            .await;
    }
    rig.stop_workers().await;
    let step = rig.describe("legacy").await.step().to_owned();
    let info = collector::info().state(&step).expect("a known state");
    {
        let (server, store) = rig.redis_parts().expect("a Redis rig");
        let legacy = info.legacy_fingerprint();
        server.cli(&["HSET", &store.run_key("legacy"), "state_fp", &legacy]);
        server.cli(&[
            "HSET",
            &store.run_key("alien"),
            "state_fp",
            "0000000000000000",
        ]);
    }
    let mut registry = Registry::new();
    registry.workflow::<collector>();
    let report = check::check(&registry, rig.client.store().as_ref())
        .await
        .expect("checks");
    assert_eq!(
        (report.would_resume(), report.would_park()),
        (1, 1),
        "{report}"
    );
    rig.spawn(support::lifecycle::register(rig.builder()));
    rig.client.signal("legacy", Item(1)).await.expect("sends");
    assert_eq!(
        rig.client
            .handle::<collector>("legacy")
            .result_within(Duration::from_secs(10))
            .await
            .expect("resumes"),
        vec![1]
    );
    rig.client.signal("alien", Item(1)).await.expect("sends");
    assert!(matches!(
        rig.client
            .handle::<collector>("alien")
            .result_within(Duration::from_secs(10))
            .await,
        Err(RunError::Parked { .. })
    ));
    rig.stop().await;
}
