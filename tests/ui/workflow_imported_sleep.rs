#![allow(unused_imports)]
use std::time::Duration;
use steadfast::prelude::*;
use tokio::time::sleep;

#[workflow]
async fn order(order_id: String) -> Result<u64, String> {
    let nap = sleep(Duration::from_secs(1));
    let _ = (order_id, nap);
    Ok(0)
}

fn main() {}
