use serde::{Deserialize, Serialize};
use steadfast::prelude::*;

#[derive(Serialize, Deserialize)]
struct Approve;

impl Signal for Approve {
    const NAME: &'static str = "approve";
}

#[workflow]
async fn order(ctx: &mut WorkflowContext, order_id: String) -> Result<(), String> {
    let approved = ctx.signal().await;
    ctx.nap(std::time::Duration::from_secs(1)).await;
    let shipped = ctx.child(order_id.clone(), ()).await;
    let _ = (order_id, approved, shipped);
    Ok(())
}

#[workflow]
async fn patched(ctx: &mut WorkflowContext, patch: String) -> Result<(), String> {
    if ctx.patched(&patch) {
        ctx.sleep(std::time::Duration::from_secs(1)).await;
    }
    if ctx.patched("") {}
    Ok(())
}

fn main() {}
