use steadfast::prelude::*;

async fn lookup(order_id: String) -> Result<u32, String> {
    Ok(order_id.len() as u32)
}

#[workflow]
async fn order(order_id: String) -> Result<u32, String> {
    let n = lookup(order_id).await?;
    Ok(n)
}

fn main() {}
