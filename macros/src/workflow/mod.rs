//! `#[workflow]`: parse the signature, check the body, lower it to a graph
//! of blocks, compute liveness, and emit the state enum and step function.

mod cfg;
mod classify;
mod emit;
mod graph;
mod hoist;
mod imports;
mod jumps;
mod liveness;
mod lower;
mod patches;
mod resolve;
mod rewrite;
mod scan;
mod sig;
mod stored;
mod uses;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::ItemFn;

use crate::attr::WorkflowAttrs;
use crate::errors::Errors;
use emit::{Emitter, Meta};
use liveness::Liveness;
use sig::WorkflowSig;

/// Expands `#[workflow(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let errors = Errors::new();
    let attrs = WorkflowAttrs::parse(&errors, args);
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let err = e.to_compile_error();
            return quote!(#err #item);
        }
    };
    let Some(sig) = WorkflowSig::parse(&errors, &func) else {
        return fallback(errors, &func);
    };
    let resolver = resolver_for(&func);
    scan::check_body(&errors, &func.block, resolver.as_ref());
    let cfg = lower::lower(&errors, &sig, (*func.block).clone());
    classify::check_activities(&errors, &cfg.suspends, resolver.as_ref());
    let live = Liveness::compute(&cfg);
    let patches = patches::collect(&errors, &func.block, sig.ctx.as_ref());
    let name = attrs
        .name
        .get()
        .cloned()
        .unwrap_or_else(|| sig.ident.to_string());
    let queue = attrs
        .queue
        .get()
        .cloned()
        .unwrap_or_else(|| "default".to_owned());
    let state = attrs.state.take().unwrap_or_else(|| {
        format_ident!(
            "{}State",
            lower::camel_case(&sig.ident.to_string()),
            span = sig.ident.span()
        )
    });
    let docs = func
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect();
    let emitter = Emitter::new(
        &sig,
        &cfg,
        &live,
        &errors,
        Meta {
            name,
            queue,
            state,
            docs,
            patches,
            migrations: attrs.migrations.take(),
        },
    );
    let states = emitter.states();
    emitter.check_states(&states);
    if !errors.is_empty() {
        drop(emitter);
        let stub = stub_impl(&sig);
        let errs = errors.into_compile_errors();
        return quote!(#errs #stub);
    }
    let out = emitter.emit(&states);
    if !errors.is_empty() {
        // An error found while emitting (a shadowed local the step function
        // needs): the step function would only add rustc's follow-up errors.
        drop(emitter);
        let stub = stub_impl(&sig);
        let errs = errors.into_compile_errors();
        return quote!(#errs #stub);
    }
    let errs = errors.into_compile_errors();
    quote!(#errs #out)
}

/// The scopes around `func`, read from its source file; `None` when the
/// compiler does not say which file it is in (inside another macro's
/// expansion) or the file cannot be read.
fn resolver_for(func: &ItemFn) -> Option<resolve::Resolver> {
    let file = func.sig.ident.span().local_file()?;
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(std::path::PathBuf::from);
    let block = &func.block;
    let text = imports::squash(&quote!(#block).to_string());
    resolve::Resolver::for_fn(
        &file,
        manifest.as_deref(),
        &func.sig.ident.to_string(),
        &text,
    )
}

/// On errors: the errors, plus a marker type so that uses of the workflow
/// elsewhere do not add errors of their own.
fn fallback(errors: Errors, func: &ItemFn) -> TokenStream {
    let errs = errors.into_compile_errors();
    let vis = &func.vis;
    let ident = &func.sig.ident;
    quote! {
        #errs
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #ident {}
    }
}

/// On errors in the body: the marker type with an `impl Workflow` whose
/// types follow the signature, so that starting or registering the workflow
/// elsewhere does not add errors of its own. It is never run: the crate does
/// not compile.
fn stub_impl(sig: &WorkflowSig) -> TokenStream {
    let p = quote!(::steadfast::__private);
    let vis = &sig.vis;
    let ident = &sig.ident;
    let (ok_ty, err_ty) = sig.result_types();
    let name = ident.to_string();
    let types: Vec<&syn::Type> = sig.params.iter().map(|p| &p.ty).collect();
    let input = match types.as_slice() {
        [] => quote!(()),
        [t] => quote!(#t),
        ts => quote!((#(#ts),*)),
    };
    quote! {
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #ident {}
        const _: () = {
            impl #p::Workflow for #ident {
                type Input = #input;
                type Output = #ok_ty;
                type Error = #err_ty;
                type State = ();
                const NAME: &'static str = #name;
                fn start(_: Self::Input) -> Self::State {}
                fn step(
                    _: &mut #p::WorkflowContext,
                    _: Self::State,
                    _: #p::Resume,
                ) -> ::core::result::Result<#p::Transition<Self>, #p::StepError> {
                    ::core::unreachable!()
                }
                fn state_name(_: &Self::State) -> &'static str {
                    "start"
                }
                fn info() -> &'static #p::WorkflowInfo {
                    static INFO: #p::WorkflowInfo = #p::WorkflowInfo::new(#name, "default", &[], &[], "");
                    &INFO
                }
                fn register_activities(_: &mut #p::Registry) {}
            }
        };
    }
}

#[cfg(test)]
mod tests;
