use steadfast::prelude::*;

#[workflow(queue = "", nmae = "order")]
async fn order(sku: String) -> Result<(), String> {
    let _ = sku;
    Ok(())
}

fn main() {}
