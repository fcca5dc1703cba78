use steadfast::prelude::*;

#[activity]
async fn check(n: u32) -> Result<bool, String> {
    Ok(n > 1)
}

#[workflow]
async fn order(n: u32) -> Result<bool, String> {
    let ready = n > 0 && check(n).await.unwrap_or(false);
    Ok(ready)
}

fn main() {}
