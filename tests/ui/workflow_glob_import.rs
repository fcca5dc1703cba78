#![allow(unused_imports)]
use steadfast::prelude::*;
use tokio::task::*;

#[workflow]
async fn order(order_id: String) -> Result<u64, String> {
    let blocking = spawn_blocking(|| 2);
    let _ = (order_id, blocking);
    Ok(0)
}

fn main() {}
