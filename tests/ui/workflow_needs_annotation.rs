use steadfast::prelude::*;

#[activity]
async fn charge(order_id: String) -> Result<u32, String> {
    Ok(order_id.len() as u32)
}

#[workflow]
async fn order(order_id: String) -> Result<u32, String> {
    let retries = 3;
    charge(order_id).await.map_err(|e| e.to_string())?;
    Ok(retries)
}

fn main() {}
