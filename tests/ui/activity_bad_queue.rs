use steadfast::prelude::*;

#[activity(queue = "")]
async fn charge(order_id: String) -> Result<(), String> {
    let _ = order_id;
    Ok(())
}

#[activity(queue = payments)]
async fn refund(order_id: String) -> Result<(), String> {
    let _ = order_id;
    Ok(())
}

fn main() {}
