use steadfast::prelude::*;

#[activity]
async fn price(sku: String) -> Result<u64, String> {
    Ok(sku.len() as u64)
}

#[workflow]
async fn order(sku: String) -> Result<(), String> {
    println!("price: {:?}", price(sku).await);
    Ok(())
}

fn main() {}
