use steadfast::prelude::*;

#[workflow]
fn order(order_id: String) -> Result<(), String> {
    let _ = order_id;
    Ok(())
}

fn main() {}
