use steadfast::prelude::*;

#[activity]
async fn price(sku: String) -> Result<u64, String> {
    Ok(sku.len() as u64)
}

fn tax(amount: u64) -> u64 {
    amount / 10
}

#[workflow]
async fn order(sku: String) -> Result<u64, String> {
    let total = tax(7) + price(sku).await.map_err(|e| e.to_string())?;
    Ok(total)
}

fn main() {}
