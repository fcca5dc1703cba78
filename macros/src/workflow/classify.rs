//! What an awaited expression is: which suspension it makes.

use quote::quote;
use syn::spanned::Spanned;
use syn::{Expr, ExprMethodCall, GenericArgument, Ident};

use super::cfg::{CtxMethod, Suspend, SuspendKind};
use super::imports::ItemKind;
use super::resolve::Resolver;
use crate::errors::Errors;

/// What an awaited expression is.
pub(crate) enum Awaited {
    /// A suspension point.
    Suspend(Box<SuspendKind>),
    /// `ctx.continue_as_new(input)`: the run ends and starts again.
    ContinueAsNew(Box<ExprMethodCall>),
}

/// Classifies the operand of an `.await`; reports an error and returns
/// `None` when it is nothing a workflow can wait for.
pub(crate) fn classify(errors: &Errors, base: &Expr, ctx: Option<&Ident>) -> Option<Awaited> {
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
            if let Some(last) = func.path.segments.last()
                && !last.arguments.is_none()
            {
                errors.spanned(
                    &last.arguments,
                    "activities are not generic: remove the type arguments",
                );
                return None;
            }
            Some(Awaited::Suspend(Box::new(SuspendKind::Activity {
                path: func.path.clone(),
                args: call.args.iter().cloned().collect(),
            })))
        }
        Expr::MethodCall(m) if is_ctx(&m.receiver, ctx) => ctx_command(errors, m),
        Expr::Paren(p) => classify(errors, &p.expr, ctx),
        _ => {
            errors.spanned(base, not_awaitable());
            None
        }
    }
}

fn ctx_command(errors: &Errors, m: &ExprMethodCall) -> Option<Awaited> {
    let method = match m.method.to_string().as_str() {
        "sleep" => CtxMethod::Sleep,
        "signal" => CtxMethod::Signal,
        "signal_within" => CtxMethod::SignalWithin,
        "child" => CtxMethod::Child,
        "continue_as_new" => return Some(Awaited::ContinueAsNew(Box::new(m.clone()))),
        other => {
            errors.spanned(
                &m.method,
                format!(
                    "`ctx.{other}` cannot be awaited; the workflow context's awaitable commands are \
                     `sleep`, `signal`, `signal_within`, `child` and `continue_as_new`"
                ),
            );
            return None;
        }
    };
    let ty = if method == CtxMethod::Sleep {
        None
    } else {
        let example = match method {
            CtxMethod::Child => "`ctx.child::<shipment>(id, input)`",
            CtxMethod::SignalWithin => "`ctx.signal_within::<Cancel>(timeout)`",
            _ => "`ctx.signal::<Cancel>()`",
        };
        let what = if method == CtxMethod::Child {
            "child workflow"
        } else {
            "signal"
        };
        let single = m.turbofish.as_ref().and_then(|t| {
            let mut types = t.args.iter().filter_map(|a| match a {
                GenericArgument::Type(ty) => Some(ty.clone()),
                _ => None,
            });
            let first = types.next();
            if types.next().is_some() { None } else { first }
        });
        match single {
            Some(ty) => Some(Box::new(ty)),
            None => {
                errors.spanned(
                    &m.method,
                    format!("name the {what} type with a turbofish, as in {example}: its type is stored in the checkpoint"),
                );
                return None;
            }
        }
    };
    Some(Awaited::Suspend(Box::new(SuspendKind::Ctx {
        method,
        call: Box::new(m.clone()),
        ty,
    })))
}

fn is_ctx(e: &Expr, ctx: Option<&Ident>) -> bool {
    match (e, ctx) {
        (Expr::Path(p), Some(ctx)) => p.path.is_ident(ctx),
        _ => false,
    }
}

fn not_awaitable() -> String {
    "only calls to `#[activity]` functions and the workflow context's commands (`ctx.sleep(..)`, \
     `ctx.signal::<S>()`, `ctx.child::<W>(..)`, ..) can be awaited in a workflow; other futures are \
     not checkpointed"
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

/// The types of `<ctx command>.await` and of `<ctx command>.await?`.
pub(crate) fn ctx_outcome_types(
    method: CtxMethod,
    ty: Option<&syn::Type>,
) -> (syn::Type, syn::Type) {
    let p = quote!(::steadfast::__private);
    match (method, ty) {
        (CtxMethod::Signal, Some(t)) => (t.clone(), t.clone()),
        (CtxMethod::SignalWithin, Some(t)) => {
            let o: syn::Type = syn::parse_quote!(::core::option::Option<#t>);
            (o.clone(), o)
        }
        (CtxMethod::Child, Some(t)) => (
            syn::parse_quote!(#p::ChildOutcome<#t>),
            syn::parse_quote!(<#t as #p::Workflow>::Output),
        ),
        _ => (syn::parse_quote!(()), syn::parse_quote!(())),
    }
}

/// Reports awaited calls of the crate's own functions that are not
/// activities (found by reading the source, so rustc's "expected type,
/// found function" at the generated code never shows).
pub(crate) fn check_activities(errors: &Errors, suspends: &[Suspend], resolver: Option<&Resolver>) {
    let Some(resolver) = resolver else { return };
    for s in suspends {
        let SuspendKind::Activity { path, .. } = &s.kind else {
            continue;
        };
        let segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if resolver.crate_item(&segs) == Some(ItemKind::PlainFn) {
            let name = segs.join("::");
            errors.spanned(
                path,
                format!(
                    "`{name}` is not an activity, so a workflow cannot await it: its result would not be \
                     checkpointed; annotate it with `#[activity]`, or call it inside an activity"
                ),
            );
        }
    }
}
