use steadfast::prelude::*;

#[activity(timeout = "1s", retry(max_attempts = 2), timeout = "2s")]
async fn charge(order_id: String) -> Result<u32, String> {
    Ok(order_id.len() as u32)
}

fn main() {}
