use steadfast::prelude::*;

#[workflow]
async fn order<T: Clone>(item: T, ctx: &mut WorkflowContext) -> Result<(), String> {
    let _ = (item, ctx);
    Ok(())
}

fn main() {}
