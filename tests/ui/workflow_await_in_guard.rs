use steadfast::prelude::*;

#[activity]
async fn check(n: u32) -> Result<bool, String> {
    Ok(n > 1)
}

#[workflow]
async fn order(n: u32) -> Result<u32, String> {
    match n {
        0 => Ok(0),
        m if check(m).await.unwrap_or(false) => Ok(1),
        _ => Ok(2),
    }
}

fn main() {}
