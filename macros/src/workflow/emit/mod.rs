//! Emission: the marker type, the state enum, and the step function.
//!
//! The step function is a trampoline: `match` the incoming state into
//! *slots* (one `Option` per local that crosses a block boundary) and a
//! block number, then `loop { match block { .. } }` until a block suspends
//! (returning the new state and its command) or the workflow returns. Slots
//! are typed by inference, so only locals stored in persisted states need
//! types the macro can name.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Lifetime};

use super::cfg::{BlockId, Cfg, CtxMethod, SuspendKind, Terminator, VarId, VarOrigin};
use super::graph::{self, StateDef};
use super::liveness::Liveness;
use super::rewrite::{Jumps, rewrite_expr, rewrite_stmt};
use super::sig::WorkflowSig;
use super::stored;
use crate::errors::Errors;
use crate::types;

mod step;

/// What `#[workflow(..)]` and the signature say about the workflow.
pub(crate) struct Meta {
    pub(crate) name: String,
    pub(crate) queue: String,
    pub(crate) state: Ident,
    pub(crate) docs: Vec<syn::Attribute>,
    /// The names passed to `ctx.patched(..)`.
    pub(crate) patches: Vec<String>,
    /// The function returning the workflow's migrations, if any.
    pub(crate) migrations: Option<syn::Path>,
}

pub(crate) struct Emitter<'a> {
    pub(crate) sig: &'a WorkflowSig,
    pub(crate) cfg: &'a Cfg,
    pub(crate) live: &'a Liveness,
    pub(crate) errors: &'a Errors,
    pub(crate) meta: Meta,
    slots: BTreeMap<VarId, Ident>,
    /// One type alias per distinct activity path, so that a path that is not
    /// an activity is reported once, where the alias is defined.
    aliases: Vec<(Ident, TokenStream)>,
    alias_of: HashMap<usize, Ident>,
}

fn p() -> TokenStream {
    quote!(::steadfast::__private)
}

fn block_var() -> Ident {
    Ident::new("__sf_block", Span::mixed_site())
}

fn tramp_label() -> Lifetime {
    Lifetime::new("'__sf_tramp", Span::mixed_site())
}

fn out_slot(id: usize, span: Span) -> Ident {
    format_ident!(
        "__sf_out_{}",
        id,
        span = Span::mixed_site().located_at(span)
    )
}

impl<'a> Emitter<'a> {
    pub(crate) fn new(
        sig: &'a WorkflowSig,
        cfg: &'a Cfg,
        live: &'a Liveness,
        errors: &'a Errors,
        meta: Meta,
    ) -> Self {
        let mut crossing: BTreeSet<VarId> = BTreeSet::new();
        for (b, set) in live.live_in.iter().enumerate() {
            if live.reachable[b] {
                crossing.extend(set.iter().copied());
            }
        }
        let slots = crossing
            .into_iter()
            .map(|v| {
                let name = cfg.vars[v].name.to_string();
                let name = name.trim_start_matches("r#");
                (
                    v,
                    format_ident!("__sf_v_{}_{}", name, v, span = Span::mixed_site()),
                )
            })
            .collect();
        let mut aliases: Vec<(Ident, TokenStream)> = Vec::new();
        let mut by_path: HashMap<String, Ident> = HashMap::new();
        let mut alias_of = HashMap::new();
        for (id, s) in cfg.suspends.iter().enumerate() {
            if !matches!(s.kind, SuspendKind::Activity { .. }) {
                continue;
            }
            let key = s.outcome_path.to_string();
            let alias = by_path
                .entry(key)
                .or_insert_with(|| {
                    let alias =
                        format_ident!("__SfActivity{}", aliases.len(), span = Span::mixed_site());
                    aliases.push((alias.clone(), s.outcome_path.clone()));
                    alias
                })
                .clone();
            alias_of.insert(id, alias);
        }
        Emitter {
            sig,
            cfg,
            live,
            errors,
            meta,
            slots,
            aliases,
            alias_of,
        }
    }

    /// The persisted states: `start`, then every reachable suspension.
    pub(crate) fn states(&self) -> Vec<StateDef> {
        let mut states = vec![StateDef {
            name: "start".to_owned(),
            variant: Ident::new("Start", self.sig.ident.span()),
            fields: self.cfg.params.clone(),
            waits_for: "start".to_owned(),
            suspend: None,
        }];
        for (id, s) in self.cfg.suspends.iter().enumerate() {
            if !self.live.reachable[s.resume] {
                continue;
            }
            states.push(StateDef {
                name: s.name.clone(),
                variant: s.variant.clone(),
                fields: self.live.live_in[s.resume].iter().copied().collect(),
                waits_for: s.kind.describe(),
                suspend: Some(id),
            });
        }
        states
    }

    /// Reports stored locals whose type is unknown or borrowed, and two
    /// stored locals with one name.
    pub(crate) fn check_states(&self, states: &[StateDef]) {
        let mut reported: HashSet<VarId> = HashSet::new();
        for st in states.iter().filter(|s| s.suspend.is_some()) {
            let mut names: HashMap<String, VarId> = HashMap::new();
            for &v in &st.fields {
                let var = &self.cfg.vars[v];
                if let Some(other) = names.insert(var.name.to_string(), v) {
                    let (first, second) = (other.min(v), other.max(v));
                    self.shadow_error(first, second);
                }
                if !reported.insert(v) {
                    continue;
                }
                match &var.ty {
                    None => self.errors.at(
                        var.name.span(),
                        untyped_message(&var.name, var.origin, &st.name),
                    ),
                    Some(ty) => {
                        if let Some(span) = types::borrowed_span(ty) {
                            self.errors.at(
                                span,
                                format!(
                                    "`{}` holds a borrow across an await (state `{}`); checkpoints hold owned values: \
                                     clone it, or end the borrow before the await",
                                    var.name, st.name
                                ),
                            );
                        }
                    }
                }
            }
        }
    }

    fn shadow_error(&self, first: VarId, second: VarId) {
        let (a, b) = (&self.cfg.vars[first], &self.cfg.vars[second]);
        self.errors.at(
            b.name.span(),
            format!(
                "`{}` shadows an earlier `{}` that is still needed after an await; \
                 a workflow's locals that live across awaits need distinct names",
                b.name, a.name
            ),
        );
    }

    pub(crate) fn emit(&self, states: &[StateDef]) -> TokenStream {
        let p = p();
        let sig = self.sig;
        let vis = &sig.vis;
        let marker = &sig.ident;
        let state = &self.meta.state;
        let docs = &self.meta.docs;
        let (ok_ty, err_ty) = sig.result_types();
        let name = &self.meta.name;

        let state_names = states.iter().map(|s| {
            let variant = &s.variant;
            let n = &s.name;
            quote!(#state::#variant { .. } => #n)
        });

        let param_names: Vec<Ident> = self
            .sig
            .params
            .iter()
            .map(|p| field_ident(&p.ident))
            .collect();
        let param_types: Vec<&syn::Type> = self.sig.params.iter().map(|p| &p.ty).collect();
        let (input_ty, input_pat) = match param_names.len() {
            0 => (quote!(()), quote!(())),
            1 => {
                let (n, t) = (&param_names[0], param_types[0]);
                (quote!(#t), quote!(#n))
            }
            _ => (quote!((#(#param_types),*)), quote!((#(#param_names),*))),
        };

        let info = graph::info_tokens(self, states);
        let activities = self.activity_paths();
        let children = self.child_types();
        // The user's function, spanned on its path so that a wrong return
        // type points there.
        let migrations = self.meta.migrations.as_ref().map(|m| {
            quote::quote_spanned! {syn::spanned::Spanned::span(m)=>
                fn migrations() -> ::std::vec::Vec<#p::Migration<Self::State>> {
                    #m()
                }
            }
        });
        let aliases = self.aliases.iter().map(|(alias, path)| {
            let span = path
                .clone()
                .into_iter()
                .next()
                .map(|t| t.span())
                .unwrap_or_else(Span::call_site);
            quote_spanned!(span=> #[allow(non_camel_case_types)] type #alias = #path;)
        });
        let step = self.step_fn(states);
        let state_enum = stored::state_enum(self, states);
        let storable = stored::storable_checks(self, states);
        let marker_doc = if docs.is_empty() {
            let d = format!(" Workflow `{name}`, generated by `#[workflow]`.");
            quote!(#[doc = #d])
        } else {
            quote!(#(#docs)*)
        };

        quote! {
            #marker_doc
            #[allow(non_camel_case_types)]
            #[derive(Debug, Clone, Copy, Default)]
            #vis struct #marker {}

            #state_enum

            const _: () = {
                #(#aliases)*
                #storable

                impl #p::Workflow for #marker {
                    type Input = #input_ty;
                    type Output = #ok_ty;
                    type Error = #err_ty;
                    type State = #state;
                    const NAME: &'static str = #name;

                    fn start(input: Self::Input) -> Self::State {
                        let #input_pat = input;
                        #state::Start { #(#param_names),* }
                    }

                    fn state_name(state: &Self::State) -> &'static str {
                        match state {
                            #(#state_names,)*
                        }
                    }

                    fn info() -> &'static #p::WorkflowInfo {
                        #info
                    }

                    fn register_activities(registry: &mut #p::Registry) {
                        #(registry.activity::<#activities>();)*
                        #(registry.workflow::<#children>();)*
                    }

                    #migrations

                    #step
                }
            };
        }
    }

    fn activity_paths(&self) -> Vec<Ident> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (id, s) in self.cfg.suspends.iter().enumerate() {
            if !self.live.reachable[s.resume] {
                continue;
            }
            let Some(alias) = self.alias_of.get(&id) else {
                continue;
            };
            if seen.insert(alias.to_string()) {
                out.push(alias.clone());
            }
        }
        out
    }

    /// The workflows started as children, registered with the parent so a
    /// worker that runs the parent can run them too.
    fn child_types(&self) -> Vec<syn::Type> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for s in &self.cfg.suspends {
            if !self.live.reachable[s.resume] {
                continue;
            }
            if let SuspendKind::Ctx {
                method: CtxMethod::Child,
                ty: Some(ty),
                ..
            } = &s.kind
                && seen.insert(quote!(#ty).to_string())
            {
                out.push((**ty).clone());
            }
        }
        out
    }
}

/// A field name for a local: the local's name without its source span, so
/// the enum's fields are not mistaken for the user's code.
pub(crate) fn field_ident(name: &Ident) -> Ident {
    let mut id = name.clone();
    id.set_span(Span::call_site().located_at(name.span()));
    id
}

fn untyped_message(name: &Ident, origin: VarOrigin, state: &str) -> String {
    match origin {
        VarOrigin::Pattern => format!(
            "`{name}` is used after an await (state `{state}`), so it is checkpointed and needs a type \
             the macro can name; rebind it with one before the await: `let {name}: Type = {name};`"
        ),
        VarOrigin::Temp => format!(
            "this value is used after an await (state `{state}`), so it is checkpointed and needs a type; \
             bind it with a typed `let` first"
        ),
        VarOrigin::Let | VarOrigin::Param => format!(
            "`{name}` is used after an await (state `{state}`), so it is checkpointed and needs a type \
             the macro can name: write `let {name}: Type = ..`"
        ),
    }
}
