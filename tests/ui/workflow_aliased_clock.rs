#![allow(unused_imports)]
use std::time::Instant as Clock;
use steadfast::prelude::*;

#[workflow]
async fn order(order_id: String) -> Result<u64, String> {
    let started = Clock::now();
    let _ = (order_id, started);
    Ok(0)
}

fn main() {}
