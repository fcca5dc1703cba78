//! The signature of a workflow function, parsed and checked.

use proc_macro2::{Span, TokenStream};
use quote::quote_spanned;
use syn::spanned::Spanned;
use syn::{
    FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type, Visibility,
};

use crate::errors::Errors;
use crate::types;

/// A workflow function's signature.
pub(crate) struct WorkflowSig {
    pub(crate) vis: Visibility,
    pub(crate) ident: Ident,
    /// The user's name for `&mut WorkflowContext`, if declared.
    pub(crate) ctx: Option<Ident>,
    pub(crate) params: Vec<Param>,
    pub(crate) ret: Type,
}

pub(crate) struct Param {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
    pub(crate) mutable: bool,
}

impl WorkflowSig {
    /// The workflow's `Output` and `Error` types, each spanned on its type
    /// in the signature (`T` and `E` of `Result<T, E>`; the whole return
    /// type for an alias), so an error type without serde is reported
    /// there.
    pub(crate) fn result_types(&self) -> (TokenStream, TokenStream) {
        let p = quote::quote!(::steadfast::__private);
        let ret = &self.ret;
        let (ok, err) = result_spans(ret).unwrap_or((ret.span(), ret.span()));
        (
            quote_spanned!(ok=> <#ret as #p::WorkflowResult>::Ok),
            quote_spanned!(err=> <#ret as #p::WorkflowResult>::Err),
        )
    }

    pub(crate) fn parse(errors: &Errors, func: &ItemFn) -> Option<Self> {
        let sig = &func.sig;
        if sig.asyncness.is_none() {
            errors.spanned(
                sig.fn_token,
                "`#[workflow]` functions must be `async`: write `async fn`",
            );
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            errors.spanned(
                &sig.generics,
                "workflows cannot be generic: their checkpointed states must have concrete types",
            );
        }
        if let Some(c) = &sig.constness {
            errors.spanned(c, "a workflow cannot be `const`");
        }
        if let Some(u) = &sig.unsafety {
            errors.spanned(u, "a workflow cannot be `unsafe`");
        }
        let mut ctx = None;
        let mut params = Vec::new();
        for (i, input) in sig.inputs.iter().enumerate() {
            let FnArg::Typed(pt) = input else {
                errors.spanned(input, "workflows are free functions; remove `self`");
                continue;
            };
            let Pat::Ident(pi) = &*pt.pat else {
                errors.spanned(
                    &pt.pat,
                    "workflow parameters must be plain names: they are stored in the start state",
                );
                continue;
            };
            if i == 0 && types::is_context_mut_ref(&pt.ty, "WorkflowContext") {
                ctx = Some(pi.ident.clone());
                continue;
            }
            if types::mentions_context(&pt.ty, "WorkflowContext") {
                errors.spanned(
                    &pt.ty,
                    "the workflow context must be the first parameter, as `ctx: &mut WorkflowContext`",
                );
                continue;
            }
            if pi.by_ref.is_some() || pi.subpat.is_some() {
                errors.spanned(&pt.pat, "workflow parameters must be plain names");
                continue;
            }
            if let Some(span) = types::borrowed_span(&pt.ty) {
                errors.at(
                    span,
                    "workflow arguments are checkpointed, so they must be owned values: use an owned type (`String` for `&str`)",
                );
                continue;
            }
            params.push(Param {
                ident: pi.ident.clone(),
                ty: (*pt.ty).clone(),
                mutable: pi.mutability.is_some(),
            });
        }
        let ret = match &sig.output {
            ReturnType::Type(_, ty) => (**ty).clone(),
            ReturnType::Default => {
                errors.spanned(
                    &sig.ident,
                    "a workflow must return `Result<T, E>`: an `Err` is what triggers its compensations",
                );
                return None;
            }
        };
        Some(WorkflowSig {
            vis: func.vis.clone(),
            ident: sig.ident.clone(),
            ctx,
            params,
            ret,
        })
    }
}

/// The spans of `T` and `E` in a return type written `Result<T, E>`.
fn result_spans(ret: &Type) -> Option<(Span, Span)> {
    let Type::Path(tp) = ret else { return None };
    let last = tp.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t.span()),
        _ => None,
    });
    let ok = types.next()?;
    let err = types.next()?;
    Some((ok, err))
}
