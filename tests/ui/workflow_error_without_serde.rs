use steadfast::prelude::*;

#[activity]
async fn charge(order_id: String) -> Result<u32, String> {
    Ok(order_id.len() as u32)
}

#[derive(Debug, thiserror::Error)]
#[error("order failed")]
struct OrderError;

impl From<ActivityError<String>> for OrderError {
    fn from(_: ActivityError<String>) -> Self {
        OrderError
    }
}

#[workflow]
async fn order(order_id: String) -> Result<u32, OrderError> {
    let n = charge(order_id).await?;
    Ok(n)
}

fn main() {}
