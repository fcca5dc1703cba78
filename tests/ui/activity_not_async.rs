use steadfast::prelude::*;

#[activity]
fn charge(order_id: String) -> Result<u32, String> {
    Ok(order_id.len() as u32)
}

fn main() {}
