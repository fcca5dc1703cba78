use steadfast::prelude::*;

#[workflow]
async fn order(order_id: String) -> Result<u64, String> {
    let started = std::time::Instant::now();
    let today = chrono::Utc::now();
    let nap = tokio::time::sleep(std::time::Duration::from_secs(1));
    let helper = std::thread::spawn(|| 1);
    let blocking = tokio::task::spawn_blocking(|| 2);
    let _ = (order_id, started, today, nap, helper, blocking);
    Ok(0)
}

fn main() {}
