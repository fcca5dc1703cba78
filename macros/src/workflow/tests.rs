//! Tests of the workflow compiler on token input.

use quote::quote;

use super::expand;

/// Pretty-printed expansion of a workflow.
pub(crate) fn expanded(item: proc_macro2::TokenStream) -> String {
    let out = expand(proc_macro2::TokenStream::new(), item);
    match syn::parse2::<syn::File>(out.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(_) => out.to_string(),
    }
}

#[test]
fn print_order() {
    let s = expanded(quote! {
        async fn order(ctx: &mut WorkflowContext, order_id: String) -> Result<u32, OrderError> {
            let payment = charge_card(order_id.clone()).await?;
            let n = ship(order_id).await?;
            let _ = payment;
            Ok(n)
        }
    });
    println!("{s}");
}
