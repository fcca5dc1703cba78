use steadfast::prelude::*;

#[workflow]
async fn order(order_id: String) -> Result<u64, String> {
    let started = std::time::SystemTime::now();
    std::thread::sleep(std::time::Duration::from_secs(1));
    tokio::spawn(async {});
    let _ = (order_id, started);
    Ok(0)
}

fn main() {}
