use steadfast::prelude::*;

#[activity]
async fn charge(order_id: String) -> Result<u32, String> {
    Ok(order_id.len() as u32)
}

#[workflow]
async fn order(order_id: String) -> Result<usize, String> {
    let id: &String = &order_id;
    charge(order_id.clone()).await.map_err(|e| e.to_string())?;
    Ok(id.len())
}

fn main() {}
