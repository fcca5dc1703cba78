use steadfast::prelude::*;

#[activity]
async fn charge(order_id: String) -> Result<u32, String> {
    Ok(order_id.len() as u32)
}

/// Kept across an await, but has no serde.
struct Receipt(u32);

#[workflow]
async fn order(order_id: String) -> Result<u32, ActivityError<String>> {
    let receipt: Receipt = Receipt(1);
    charge(order_id).await?;
    Ok(receipt.0)
}

fn main() {}
