//! The procedural macros of [steadfast](https://docs.rs/steadfast):
//! `#[workflow]` and `#[activity]`. Use them through the `steadfast` crate,
//! where their full documentation and examples are.

mod activity;
mod attr;
mod duration;
mod errors;
mod types;
mod workflow;

use proc_macro::TokenStream;

/// Compiles an `async fn` into a durable workflow: a serializable state enum
/// with one variant per await, and a step function.
#[proc_macro_attribute]
pub fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    workflow::expand(args.into(), item.into()).into()
}

/// Declares an activity: a side-effecting step with a timeout, bounded
/// retries and an optional compensation.
#[proc_macro_attribute]
pub fn activity(args: TokenStream, item: TokenStream) -> TokenStream {
    activity::expand(args.into(), item.into()).into()
}
