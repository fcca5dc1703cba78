// Input of the expansion snapshot `waits.expanded.rs`: a workflow that
// sleeps, waits for a signal with a timeout, runs a child workflow, branches
// on a patch, and continues as new.

#[workflow]
async fn subscription(ctx: &mut WorkflowContext, customer: String, month: u32) -> Result<u32, BillingError> {
    ctx.set_query("status", "sleeping");
    ctx.sleep(Duration::from_secs(30 * 86_400)).await;
    let pause = ctx.signal_within::<Pause>(Duration::from_secs(3600)).await;
    if pause.is_some() {
        return Ok(month);
    }
    let invoice = ctx.child::<invoice>(format!("{customer}/{month}"), customer.clone()).await;
    if ctx.patched("receipts") {
        send_receipt(customer.clone(), invoice.is_ok()).await?;
    }
    ctx.continue_as_new((customer, month + 1)).await
}
