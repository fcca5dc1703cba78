use steadfast::prelude::*;

#[workflow]
async fn order(order_id: String) -> Result<u64, String> {
    use std::thread::sleep as nap;
    nap(std::time::Duration::from_millis(10));
    let _ = order_id;
    Ok(0)
}

fn main() {}
