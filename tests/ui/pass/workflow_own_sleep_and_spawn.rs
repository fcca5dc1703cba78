//! A workflow may call the crate's own functions named like banned ones:
//! only what a name resolves to is checked, not its spelling.
use std::time::Duration;
use steadfast::prelude::*;
use helpers::spawn;

mod helpers {
    /// Not `tokio::spawn`: it only formats a label.
    pub fn spawn(label: &str) -> String {
        format!("spawned {label}")
    }
}

/// Not `tokio::time::sleep`: it only computes a duration.
fn sleep(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

#[workflow]
async fn order(order_id: String) -> Result<u64, String> {
    let label = spawn(&order_id);
    let pause = sleep(3);
    let random = |n: u64| n + 1;
    Ok(label.len() as u64 + pause.as_secs() + random(1))
}

fn main() {}
