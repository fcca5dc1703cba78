use steadfast::prelude::*;

#[activity]
async fn price(sku: String) -> Result<u64, String> {
    Ok(sku.len() as u64)
}

#[workflow]
async fn order(sku: String) -> Result<u64, String> {
    #[step("price")]
    let a = price(sku.clone()).await.map_err(|e| e.to_string())?;
    #[step("price")]
    let b = price(sku).await.map_err(|e| e.to_string())?;
    Ok(a + b)
}

fn main() {}
