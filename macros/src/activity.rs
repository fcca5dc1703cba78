//! `#[activity]`: the typed model of an activity function and its expansion.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, Pat, ReturnType, Type, Visibility};

use crate::attr::{ActivityAttrs, Compensate};
use crate::errors::Errors;
use crate::types;

/// An activity function, parsed and checked.
struct ActivityFn<'a> {
    func: &'a ItemFn,
    vis: &'a Visibility,
    ident: &'a Ident,
    name: String,
    has_ctx: bool,
    params: Vec<(Ident, Type)>,
    ret: Type,
    attrs: ActivityAttrs,
}

/// Expands `#[activity(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let errors = Errors::new();
    let attrs = ActivityAttrs::parse(&errors, args);
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let err = e.to_compile_error();
            return quote!(#err #item);
        }
    };
    let model = ActivityFn::parse(&errors, &func, attrs);
    if let Some(model) = model.filter(|_| errors.is_empty()) {
        return model.emit();
    }
    // Keep the function so that one mistake does not cascade into errors at
    // every call site.
    let errs = errors.into_compile_errors();
    quote!(#errs #func)
}

impl<'a> ActivityFn<'a> {
    fn parse(errors: &Errors, func: &'a ItemFn, attrs: ActivityAttrs) -> Option<Self> {
        let sig = &func.sig;
        if sig.asyncness.is_none() {
            errors.spanned(
                sig.fn_token,
                "`#[activity]` functions must be `async`: write `async fn`",
            );
        }
        if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
            errors.spanned(
                &sig.generics,
                "activities cannot be generic: their arguments are checkpointed as concrete types",
            );
        }
        let mut has_ctx = false;
        let mut params = Vec::new();
        for (i, input) in sig.inputs.iter().enumerate() {
            let FnArg::Typed(pt) = input else {
                errors.spanned(input, "activities are free functions; remove `self`");
                continue;
            };
            if i == 0 && types::is_context_ref(&pt.ty, "ActivityContext") {
                has_ctx = true;
                continue;
            }
            if types::mentions_context(&pt.ty, "ActivityContext") {
                errors.spanned(
                    &pt.ty,
                    "the activity context must be the first parameter, as `ctx: &ActivityContext`",
                );
                continue;
            }
            let Pat::Ident(pi) = &*pt.pat else {
                errors.spanned(
                    &pt.pat,
                    "activity parameters must be plain names: they become the fields of the checkpointed call",
                );
                continue;
            };
            if pi.by_ref.is_some() || pi.subpat.is_some() {
                errors.spanned(&pt.pat, "activity parameters must be plain names");
                continue;
            }
            if let Some(span) = types::borrowed_span(&pt.ty) {
                errors.at(
                    span,
                    "activity arguments are checkpointed, so they must be owned values: use an owned type (`String` for `&str`, `Vec<T>` for `&[T]`)",
                );
                continue;
            }
            params.push((pi.ident.clone(), (*pt.ty).clone()));
        }
        let ret = match &sig.output {
            ReturnType::Type(_, ty) => (**ty).clone(),
            ReturnType::Default => {
                errors.spanned(
                    &sig.ident,
                    "an activity must return `Result<T, E>` (the error is what retries and the workflow see)",
                );
                return None;
            }
        };
        if let Some(c) = attrs.compensate.get() {
            check_compensation_args(errors, c, &params);
        }
        let name = attrs
            .name
            .get()
            .cloned()
            .unwrap_or_else(|| sig.ident.to_string());
        Some(ActivityFn {
            func,
            vis: &func.vis,
            ident: &sig.ident,
            name,
            has_ctx,
            params,
            ret,
            attrs,
        })
    }

    fn emit(self) -> TokenStream {
        let ActivityFn {
            func,
            vis,
            ident,
            name,
            has_ctx,
            params,
            ret,
            attrs,
        } = self;
        let p = quote!(::steadfast::__private);
        let names: Vec<&Ident> = params.iter().map(|(n, _)| n).collect();
        let types: Vec<&Type> = params.iter().map(|(_, t)| t).collect();
        let field_docs: Vec<String> = names.iter().map(|n| format!(" Argument `{n}`.")).collect();
        let doc = format!(
            " The checkpointed call of activity [`{ident}`](fn@{ident}): its arguments. \
             Generated by `#[activity]`."
        );
        let serde_crate = "::steadfast::__private::serde";
        let span = ident.span();

        let ctx_ident = Ident::new("__steadfast_ctx", Span::mixed_site());
        let call_args = if has_ctx {
            quote!(#ctx_ident, #(#names),*)
        } else {
            quote!(#(#names),*)
        };
        let run = quote_spanned! {span=>
            fn run(
                self,
                #ctx_ident: &#p::ActivityContext,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<Self::Output, Self::Error>,
            > + ::core::marker::Send {
                let Self { #(#names),* } = self;
                #ident(#call_args)
            }
        };

        let mut option_lines = Vec::new();
        if let Some(ms) = attrs.timeout_ms.get() {
            option_lines.push(quote!(options.timeout = ::core::time::Duration::from_millis(#ms);));
        }
        let mut is_retryable = TokenStream::new();
        if let Some(retry) = attrs.retry.get() {
            if let Some(n) = retry.max_attempts {
                option_lines.push(quote!(options.retry.max_attempts = #n;));
            }
            if let Some(ms) = retry.initial_interval_ms {
                option_lines.push(
                    quote!(options.retry.initial_interval = ::core::time::Duration::from_millis(#ms);),
                );
            }
            if let Some(b) = retry.backoff {
                option_lines.push(quote!(options.retry.backoff_coefficient = #b;));
            }
            if let Some(ms) = retry.max_interval_ms {
                option_lines.push(
                    quote!(options.retry.max_interval = ::core::time::Duration::from_millis(#ms);),
                );
            }
            if let Some(pred) = &retry.non_retryable {
                is_retryable = quote_spanned! {pred.span()=>
                    fn is_retryable(error: &Self::Error) -> bool {
                        !(#pred)(error)
                    }
                };
            }
        }
        let options = if option_lines.is_empty() {
            TokenStream::new()
        } else {
            quote! {
                fn options() -> #p::ActivityOptions {
                    let mut options = #p::ActivityOptions::DEFAULT;
                    #(#option_lines)*
                    options
                }
            }
        };

        let queue = attrs.queue.get().map(|q| {
            quote!(const QUEUE: ::core::option::Option<&'static str> = ::core::option::Option::Some(#q);)
        });
        let compensation = attrs
            .compensate
            .take()
            .map(|c| emit_compensation(&c))
            .unwrap_or_default();

        quote! {
            #func

            #[doc = #doc]
            #[allow(non_camel_case_types)]
            #[derive(#p::serde::Serialize, #p::serde::Deserialize)]
            #[serde(crate = #serde_crate)]
            #vis struct #ident {
                #(#[doc = #field_docs] #vis #names: #types,)*
            }

            const _: () = {
                impl #ident {
                    #[doc(hidden)]
                    #[allow(clippy::too_many_arguments, dead_code)]
                    #vis fn __steadfast_new(#(#names: #types),*) -> Self {
                        Self { #(#names),* }
                    }
                }

                impl #p::ActivityArgs for #ident {
                    type Args = (#(#types,)*);
                    fn from_args((#(#names,)*): Self::Args) -> Self {
                        Self { #(#names),* }
                    }
                }

                impl #p::Activity for #ident {
                    type Output = <#ret as #p::ActivityResult>::Ok;
                    type Error = <#ret as #p::ActivityResult>::Err;
                    const NAME: &'static str = #name;
                    #queue
                    #options
                    #run
                    #is_retryable
                    #compensation
                }
            };
        }
    }
}

fn check_compensation_args(errors: &Errors, c: &Compensate, params: &[(Ident, Type)]) {
    let Some(args) = &c.args else { return };
    for arg in args {
        if arg != "output" && !params.iter().any(|(n, _)| n == arg) {
            let known = params
                .iter()
                .map(|(n, _)| format!("`{n}`"))
                .collect::<Vec<_>>();
            let list = if known.is_empty() {
                String::from("`output`")
            } else {
                format!(
                    "`output` or one of this activity's parameters: {}",
                    known.join(", ")
                )
            };
            errors.spanned(
                arg,
                format!("unknown compensation argument `{arg}`; expected {list}"),
            );
        }
    }
}

fn emit_compensation(c: &Compensate) -> TokenStream {
    let p = quote!(::steadfast::__private);
    let path = &c.path;
    let span = path.span();
    let args: Vec<TokenStream> = match &c.args {
        None => vec![quote_spanned!(span=> output)],
        Some(args) => args
            .iter()
            .map(|a| {
                if a == "output" {
                    quote_spanned!(a.span()=> output)
                } else {
                    let field = format_ident!("{}", a);
                    quote_spanned!(a.span()=> ::core::clone::Clone::clone(&self.#field))
                }
            })
            .collect(),
    };
    let uses_output = c
        .args
        .as_ref()
        .is_none_or(|a| a.iter().any(|x| x == "output"));
    let output_binding = if uses_output {
        quote_spanned!(span=> let output = ::core::clone::Clone::clone(output);)
    } else {
        quote!(let _ = output;)
    };
    quote_spanned! {span=>
        const HAS_COMPENSATION: bool = true;

        fn compensation(
            &self,
            output: &Self::Output,
        ) -> ::core::result::Result<
            ::core::option::Option<#p::CompensationCall>,
            #p::serde_json::Error,
        > {
            #output_binding
            let call = <#path as #p::ActivityArgs>::from_args(
                #p::compensation_args::<#path, _>((#(#args,)*)),
            );
            #p::CompensationCall::of(&call).map(::core::option::Option::Some)
        }

        fn register_compensation(registry: &mut #p::Registry) {
            registry.activity::<#path>();
        }
    }
}
