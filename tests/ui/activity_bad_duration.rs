use steadfast::prelude::*;

#[activity(timeout = "1 minute", retry(initial_interval = "5x"))]
async fn charge(order_id: String) -> Result<u32, String> {
    Ok(order_id.len() as u32)
}

fn main() {}
