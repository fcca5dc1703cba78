// Input of an expansion snapshot: a loop whose body branches around an await.
use steadfast::prelude::*;

#[workflow]
async fn restock(ctx: &mut WorkflowContext, skus: Vec<String>) -> Result<u32, ShopError> {
    let mut ordered: u32 = 0;
    for sku in skus {
        if ctx.random_u64() % 2 == 0 {
            continue;
        }
        let level = stock_level(sku.clone()).await?;
        if level < 10 {
            order_more(sku, 10 - level).await?;
            ordered += 1;
        }
    }
    Ok(ordered)
}
