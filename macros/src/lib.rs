//! The procedural macros of [steadfast](https://docs.rs/steadfast):
//! `#[workflow]` and `#[activity]`. Use them through the `steadfast` crate;
//! their documentation lives there.

mod activity;
mod attr;
mod duration;
mod errors;
mod types;
mod workflow;

use proc_macro::TokenStream;

/// Compiles an `async fn` into a durable workflow. See `steadfast::workflow`.
#[proc_macro_attribute]
pub fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    workflow::expand(args.into(), item.into()).into()
}

/// Declares an activity: a side-effecting step with a timeout, retries and
/// an optional compensation. See `steadfast::activity`.
#[proc_macro_attribute]
pub fn activity(args: TokenStream, item: TokenStream) -> TokenStream {
    activity::expand(args.into(), item.into()).into()
}
