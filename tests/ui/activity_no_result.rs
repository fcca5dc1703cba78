use steadfast::prelude::*;

#[activity]
async fn charge(order_id: String) {
    let _ = order_id;
}

fn main() {}
