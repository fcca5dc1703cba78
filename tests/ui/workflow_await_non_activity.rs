use steadfast::prelude::*;

#[workflow]
async fn order(order_id: String) -> Result<(), String> {
    let fut = std::future::ready(1);
    let n = fut.await;
    let _ = (order_id, n);
    Ok(())
}

fn main() {}
