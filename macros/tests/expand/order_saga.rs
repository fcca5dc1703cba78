// Input of an expansion snapshot: the order saga of `examples/order_saga.rs`.
use steadfast::prelude::*;

#[workflow]
async fn order(order_id: String) -> Result<String, OrderError> {
    let payment = charge_card(order_id.clone()).await?;
    let reservation = reserve_inventory(order_id.clone()).await?;
    let tracking = ship(order_id).await?;
    Ok(format!("tracking {tracking} (payment {}, reservation {})", payment.0, reservation.0))
}
