use steadfast::prelude::*;

#[activity]
async fn charge(order_id: String) -> Result<u32, String> {
    Ok(order_id.len() as u32)
}

#[activity]
async fn notify(text: String) -> Result<(), String> {
    let _ = text;
    Ok(())
}

#[workflow]
async fn order(order_id: String) -> Result<u32, ActivityError<String>> {
    let payment = charge(order_id).await?;
    if payment > 1 {
        let payment = payment.to_string();
        notify(payment).await?;
    }
    Ok(payment)
}

fn main() {}
