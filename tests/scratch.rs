use serde::{Deserialize, Serialize};
use steadfast::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PaymentId(pub String);

#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum OrderError {
    #[error("payment: {0}")]
    Payment(String),
}

impl<E: std::fmt::Display> From<ActivityError<E>> for OrderError {
    fn from(e: ActivityError<E>) -> Self {
        OrderError::Payment(e.to_string())
    }
}

#[activity(timeout = "1m", retry(max_attempts = 3), compensate = refund)]
async fn charge_card(ctx: &ActivityContext, order_id: String) -> Result<PaymentId, String> {
    let _ = ctx.idempotency_key();
    Ok(PaymentId(format!("pay-{order_id}")))
}

#[activity]
async fn refund(payment: PaymentId) -> Result<(), String> {
    let _ = payment;
    Ok(())
}

#[activity]
async fn ship(order_id: String) -> Result<u32, String> {
    Ok(order_id.len() as u32)
}

#[workflow]
async fn order(ctx: &mut WorkflowContext, order_id: String) -> Result<u32, OrderError> {
    let _ = ctx.workflow_id();
    let payment = charge_card(order_id.clone()).await?;
    let n = ship(order_id).await?;
    let _ = payment;
    Ok(n)
}

#[test]
fn it_compiles() {
    println!("{}", <order as steadfast::Workflow>::info().mermaid);
}
