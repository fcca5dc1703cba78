use serde::Deserialize;
use steadfast::Migration;
use steadfast::prelude::*;

#[derive(Debug, serde::Serialize, Deserialize, thiserror::Error)]
#[error("failed")]
struct Failed;

#[derive(Deserialize)]
struct OldStart {
    order: u64,
}

/// A migration is a typed function: old data in, this code's state out.
fn order_migrations() -> Vec<Migration<OrderState>> {
    vec![Migration::from("start", "0123", |old: OldStart| OrderState::Start {
        order_id: old.order.to_string(),
    })]
}

#[workflow(migrations = order_migrations)]
async fn order(order_id: String) -> Result<String, Failed> {
    Ok(order_id)
}

fn main() {
    use steadfast::Workflow;
    let migrations = order::migrations();
    assert_eq!(migrations.len(), 1);
    let migrated = migrations[0]
        .apply(&serde_json::json!({"start": {"order": 42}}))
        .expect("migrates");
    assert_eq!(order::state_name(&migrated), "start");
}
