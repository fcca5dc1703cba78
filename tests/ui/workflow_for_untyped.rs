use steadfast::prelude::*;

#[activity]
async fn ship(item: String) -> Result<(), String> {
    let _ = item;
    Ok(())
}

#[workflow]
async fn order(items: Vec<String>) -> Result<(), String> {
    for item in items.iter().cloned() {
        ship(item).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() {}
