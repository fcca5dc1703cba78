use steadfast::prelude::*;

#[activity]
async fn charge(order_id: String) -> Result<u32, String> {
    Ok(order_id.len() as u32)
}

#[workflow]
async fn order(order_id: String) -> Result<u32, String> {
    let n: u32 = 1;
    {
        let n: u32 = 2;
        charge(order_id.clone()).await.map_err(|e| e.to_string())?;
        let _ = n;
    }
    Ok(n)
}

fn main() {}
