use steadfast::prelude::*;

#[activity(compensate = refund)]
async fn charge(order_id: String) -> Result<String, String> {
    Ok(format!("pay-{order_id}"))
}

#[activity]
async fn refund(amount_cents: u64) -> Result<(), String> {
    let _ = amount_cents;
    Ok(())
}

fn main() {}
