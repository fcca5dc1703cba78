use steadfast::prelude::*;

#[activity(compensate = release(output, order))]
async fn reserve(order_id: String) -> Result<String, String> {
    Ok(format!("res-{order_id}"))
}

#[activity]
async fn release(reservation: String, order_id: String) -> Result<(), String> {
    let _ = (reservation, order_id);
    Ok(())
}

fn main() {}
