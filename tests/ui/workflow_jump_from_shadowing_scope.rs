use steadfast::prelude::*;

#[activity]
async fn add(n: u32) -> Result<u32, String> {
    Ok(n + 1)
}

#[workflow]
async fn count(limit: u32) -> Result<u32, String> {
    let mut total: u32 = 0;
    loop {
        total = add(total).await.map_err(|e| e.to_string())?;
        if total > limit {
            let total = 0u32;
            let _ = total;
            break;
        }
    }
    Ok(total)
}

fn main() {}
