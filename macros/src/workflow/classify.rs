//! What an awaited expression is: which suspension it makes.

use quote::quote;
use syn::spanned::Spanned;
use syn::{Expr, Ident};

use super::cfg::SuspendKind;
use crate::errors::Errors;

/// Classifies the operand of an `.await`; reports an error and returns
/// `None` when it is nothing a workflow can wait for.
pub(crate) fn classify(errors: &Errors, base: &Expr, ctx: Option<&Ident>) -> Option<SuspendKind> {
    match base {
        Expr::Call(call) => {
            let Expr::Path(func) = &*call.func else {
                errors.spanned(base, not_awaitable());
                return None;
            };
            if func.qself.is_some() {
                errors.spanned(base, not_awaitable());
                return None;
            }
            if let Some(last) = func.path.segments.last() {
                if !last.arguments.is_none() {
                    errors.spanned(
                        &last.arguments,
                        "activities are not generic: remove the type arguments",
                    );
                    return None;
                }
            }
            Some(SuspendKind::Activity {
                path: func.path.clone(),
                args: call.args.iter().cloned().collect(),
            })
        }
        Expr::MethodCall(m) if is_ctx(&m.receiver, ctx) => {
            errors.spanned(
                &m.method,
                format!(
                    "`{}` cannot be awaited: the workflow context has no command of that name",
                    m.method
                ),
            );
            None
        }
        Expr::Paren(p) => classify(errors, &p.expr, ctx),
        _ => {
            errors.spanned(base, not_awaitable());
            None
        }
    }
}

fn is_ctx(e: &Expr, ctx: Option<&Ident>) -> bool {
    match (e, ctx) {
        (Expr::Path(p), Some(ctx)) => p.path.is_ident(ctx),
        _ => false,
    }
}

fn not_awaitable() -> String {
    "only calls to `#[activity]` functions can be awaited in a workflow (e.g. `charge_card(order_id).await?`); \
     other futures are not checkpointed"
        .to_owned()
}

/// `path` as the type of an activity call, for outcome types.
pub(crate) fn activity_type(path: &syn::Path) -> proc_macro2::TokenStream {
    let span = path.span();
    quote::quote_spanned!(span=> #path)
}

/// The type of `path(..).await` and of `path(..).await?`.
pub(crate) fn activity_outcome_types(path: &syn::Path) -> (syn::Type, syn::Type) {
    let p = quote!(::steadfast::__private);
    let ty = activity_type(path);
    let outcome: syn::Type = syn::parse_quote!(#p::ActivityOutcome<#ty>);
    let ok: syn::Type = syn::parse_quote!(<#ty as #p::Activity>::Output);
    (outcome, ok)
}
