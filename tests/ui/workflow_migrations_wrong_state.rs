use serde::Deserialize;
use steadfast::Migration;
use steadfast::prelude::*;

#[derive(Debug, serde::Serialize, Deserialize, thiserror::Error)]
#[error("failed")]
struct Failed;

#[derive(Deserialize)]
struct OldStart {
    order_id: String,
}

enum NotTheState {
    Start { order_id: String },
}

/// Migrations must make states of the workflow they are declared on.
fn order_migrations() -> Vec<Migration<NotTheState>> {
    vec![Migration::from("start", "0123", |old: OldStart| NotTheState::Start {
        order_id: old.order_id,
    })]
}

#[workflow(migrations = order_migrations)]
async fn order(order_id: String) -> Result<String, Failed> {
    Ok(order_id)
}

fn main() {}
