use steadfast::prelude::*;

#[activity(timout = "1m")]
async fn charge(order_id: String) -> Result<u32, String> {
    Ok(order_id.len() as u32)
}

fn main() {}
