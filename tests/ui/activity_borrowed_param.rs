use steadfast::prelude::*;

#[activity]
async fn charge(order_id: &str) -> Result<u32, String> {
    Ok(order_id.len() as u32)
}

fn main() {}
