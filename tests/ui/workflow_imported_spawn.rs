#![allow(unused_imports)]
use steadfast::prelude::*;
use tokio::spawn;

#[workflow]
async fn order(order_id: String) -> Result<u64, String> {
    spawn(async {});
    let _ = order_id;
    Ok(0)
}

fn main() {}
