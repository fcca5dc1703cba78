use steadfast::prelude::*;

#[workflow]
async fn order(order_id: String) {
    let _ = order_id;
}

fn main() {}
