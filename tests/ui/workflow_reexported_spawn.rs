#![allow(unused_imports)]
use steadfast::prelude::*;
use util::run_later;

mod util {
    pub use std::thread::spawn as run_later;
}

#[workflow]
async fn order(order_id: String) -> Result<u64, String> {
    let helper = run_later(|| 1);
    let _ = (order_id, helper);
    Ok(0)
}

fn main() {}
