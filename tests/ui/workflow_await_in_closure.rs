use steadfast::prelude::*;

#[activity]
async fn charge(order_id: String) -> Result<u32, String> {
    Ok(order_id.len() as u32)
}

#[workflow]
async fn order(order_id: String) -> Result<(), String> {
    let f = || async { charge(order_id.clone()).await };
    let _ = f;
    Ok(())
}

fn main() {}
