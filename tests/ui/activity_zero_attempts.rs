use steadfast::prelude::*;

#[activity(retry(max_attempts = 0, backoff = 0.5))]
async fn charge(order_id: String) -> Result<u32, String> {
    Ok(order_id.len() as u32)
}

fn main() {}
