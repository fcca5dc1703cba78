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

    fn step_fn(&self, states: &[StateDef]) -> TokenStream {
        let p = p();
        let block = block_var();
        let label = tramp_label();
        let ctx = self
            .sig
            .ctx
            .clone()
            .unwrap_or_else(|| Ident::new("__sf_ctx", Span::mixed_site()));
        let unused_ctx = if self.sig.ctx.is_none() {
            quote!(let _ = #ctx;)
        } else {
            TokenStream::new()
        };
        let state_param = Ident::new("__sf_state", Span::mixed_site());
        let resume_param = Ident::new("__sf_resume", Span::mixed_site());
        let items = &self.cfg.items;
        let slots = self.slots.values();
        let out_slots = states.iter().filter_map(|s| s.suspend).map(|id| {
            let s = &self.cfg.suspends[id];
            out_slot(id, s.span)
        });

        let prologue = states.iter().map(|st| self.prologue_arm(st, &resume_param));
        let mut order: Vec<BlockId> = (0..self.cfg.blocks.len())
            .filter(|b| self.live.reachable[*b])
            .collect();
        order.sort_by_key(|b| self.cfg.blocks[*b].order);
        let arms = order.iter().map(|b| {
            let body = self.block(*b);
            quote! {
                #[allow(unreachable_code)]
                #b => #body
            }
        });
        let state = &self.meta.state;
        quote! {
            #[allow(
                clippy::never_loop,
                clippy::needless_return,
                clippy::let_unit_value,
                clippy::unit_arg,
                clippy::match_single_binding,
                clippy::diverging_sub_expression,
                clippy::needless_late_init,
                clippy::too_many_lines,
                clippy::cognitive_complexity,
                clippy::question_mark,
                clippy::redundant_locals,
                clippy::shadow_unrelated,
                clippy::useless_conversion,
            )]
            fn step(
                #ctx: &mut #p::WorkflowContext,
                #state_param: #state,
                #resume_param: #p::Resume,
            ) -> ::core::result::Result<#p::Transition<Self>, #p::StepError> {
                #unused_ctx
                #(#items)*
                #(#[allow(unused_mut)] let mut #slots = ::core::option::Option::None;)*
                #(let mut #out_slots = ::core::option::Option::None;)*
                #[allow(unused_mut)]
                let mut #block: usize = match #state_param {
                    #(#prologue)*
                };
                #label: loop {
                    match #block {
                        #(#arms)*
                        _ => ::core::unreachable!("steadfast: the step function has no block {}", #block),
                    }
                }
            }
        }
    }

    fn prologue_arm(&self, st: &StateDef, resume: &Ident) -> TokenStream {
        let p = p();
        let state = &self.meta.state;
        let variant = &st.variant;
        let name = &st.name;
        let fields: Vec<Ident> = st
            .fields
            .iter()
            .map(|v| field_ident(&self.cfg.vars[*v].name))
            .collect();
        let temps: Vec<Ident> = (0..fields.len())
            .map(|i| format_ident!("__sf_f{}", i, span = Span::mixed_site()))
            .collect();
        let (target, live) = match st.suspend {
            None => (self.cfg.entry, &self.live.live_in[self.cfg.entry]),
            Some(id) => {
                let r = self.cfg.suspends[id].resume;
                (r, &self.live.live_in[r])
            }
        };
        let stores = st
            .fields
            .iter()
            .zip(&temps)
            .map(|(v, t)| match self.slots.get(v) {
                Some(slot) if live.contains(v) => quote!(#slot = ::core::option::Option::Some(#t);),
                _ => quote!(let _ = #t;),
            });
        let feed = match st.suspend {
            None => quote!(#p::expect_start(#name, #resume)?;),
            Some(id) => {
                let s = &self.cfg.suspends[id];
                let slot = out_slot(id, s.span);
                let outcome = match &s.kind {
                    SuspendKind::Activity { .. } => {
                        let ty = &self.alias_of[&id];
                        quote!(#p::activity_outcome::<#ty>(#name, #resume)?)
                    }
                    SuspendKind::Ctx { method, ty, .. } => match method {
                        CtxMethod::Sleep => quote!(#p::timer_outcome(#name, #resume)?),
                        CtxMethod::Signal => quote!(#p::signal_outcome::<#ty>(#name, #resume)?),
                        CtxMethod::SignalWithin => {
                            quote!(#p::signal_within_outcome::<#ty>(#name, #resume)?)
                        }
                        CtxMethod::Child => quote!(#p::child_outcome::<#ty>(#name, #resume)?),
                    },
                };
                quote!(#slot = ::core::option::Option::Some(#outcome);)
            }
        };
        quote! {
            #state::#variant { #(#fields: #temps),* } => {
                #feed
                #(#stores)*
                #target
            }
        }
    }

    /// The code of one block.
    fn block(&self, b: BlockId) -> TokenStream {
        let block = &self.cfg.blocks[b];
        let live_in = &self.live.live_in[b];
        let declared: BTreeSet<VarId> = block
            .pieces
            .iter()
            .flat_map(|p| p.decls.iter().copied())
            .collect();
        let mut assigned: BTreeSet<VarId> = BTreeSet::new();
        let mut referenced: BTreeSet<VarId> = block.term_uses.clone();
        for piece in &block.pieces {
            referenced.extend(piece.uses.iter().copied());
            assigned.extend(piece.defs.iter().copied());
            assigned.extend(piece.may_defs.iter().copied());
        }
        referenced.extend(assigned.iter().copied());

        let mut site = Site {
            em: self,
            locals: Vec::new(),
            visible: HashMap::new(),
        };
        let mut code = Vec::new();
        for &v in referenced.difference(&declared) {
            let var = &self.cfg.vars[v];
            let name = &var.name;
            if live_in.contains(&v) {
                let Some(slot) = self.slots.get(&v) else {
                    continue;
                };
                let mutability = (var.mutable || assigned.contains(&v)).then(|| quote!(mut));
                code.push(quote!(#[allow(unused_mut)] let #mutability #name = ::steadfast::__private::slot(&mut #slot);));
            } else if assigned.contains(&v) {
                let ty = var.ty.as_ref().map(|t| quote!(: #t));
                code.push(quote!(#[allow(unused_mut)] let mut #name #ty;));
            } else {
                continue;
            }
            site.declare(v);
        }

        for piece in &block.pieces {
            let mut stmt = piece.stmt.clone();
            rewrite_stmt(&mut stmt, &piece.loops, &site);
            if let syn::Stmt::Local(local) = &mut stmt {
                // Its mutations and uses may all be in other blocks.
                if piece.decls.iter().any(|v| self.slots.contains_key(v)) {
                    local
                        .attrs
                        .push(syn::parse_quote!(#[allow(unused_mut, unused_variables)]));
                }
            }
            code.push(quote!(#stmt));
            for &d in &piece.decls {
                site.declare(d);
            }
        }

        let term = match &block.term {
            Terminator::Open => quote!(::core::unreachable!("steadfast: an unfinished block");),
            Terminator::Diverged => TokenStream::new(),
            Terminator::Goto(t) => site.jump_here(*t),
            Terminator::If {
                cond,
                binds,
                then,
                els,
            } => {
                let mut cond = cond.clone();
                rewrite_expr(&mut cond, &block.loops, &site);
                let mut inner = site.clone_for_edge();
                for &v in binds {
                    inner.declare(v);
                }
                let then_jump = inner.jump_here(*then);
                let else_jump = site.jump_here(*els);
                quote!(if #cond { #then_jump } else { #else_jump })
            }
            Terminator::Match { scrutinee, arms } => {
                let mut scrutinee = scrutinee.clone();
                rewrite_expr(&mut scrutinee, &block.loops, &site);
                let arms = arms.iter().map(|arm| {
                    let mut inner = site.clone_for_edge();
                    for &v in &arm.binds {
                        inner.declare(v);
                    }
                    let pat = &arm.pat;
                    let guard = arm.guard.as_ref().map(|g| {
                        let mut g = g.clone();
                        rewrite_expr(&mut g, &block.loops, &inner);
                        quote!(if #g)
                    });
                    let jump = inner.jump_here(arm.target);
                    quote!(#pat #guard => #jump)
                });
                quote!(match #scrutinee { #(#arms)* })
            }
            Terminator::Suspend(id) => self.suspend(&site, *id, &block.loops),
        };
        quote!({ #(#code)* #term })
    }

    fn suspend(&self, site: &Site<'_>, id: usize, loops: &[super::cfg::LoopFrame]) -> TokenStream {
        let p = p();
        let s = &self.cfg.suspends[id];
        let name = &s.name;
        let command = match &s.kind {
            SuspendKind::Activity { path, args } => {
                let args = args.iter().map(|a| {
                    let mut a = a.clone();
                    rewrite_expr(&mut a, loops, site);
                    a
                });
                let span = path.span();
                let alias = &self.alias_of[&id];
                let call = quote_spanned!(span=> <#alias>::__steadfast_new(#(#args),*));
                quote!(#p::activity_command(&#call, #name)?)
            }
            SuspendKind::Ctx { call, .. } => {
                let mut call = call.clone();
                for a in call.args.iter_mut() {
                    rewrite_expr(a, loops, site);
                }
                let span = call.method.span();
                quote_spanned!(span=> #p::IntoCommand::into_command(#call, #name)?)
            }
        };
        let state = &self.meta.state;
        let variant = &s.variant;
        let fields = self.live.live_in[s.resume].iter().map(|v| {
            let fname = field_ident(&self.cfg.vars[*v].name);
            let value = site.value_of(*v);
            quote!(#fname: #value)
        });
        quote! {
            let __sf_command = #command;
            return ::core::result::Result::Ok(#p::Transition::Suspend {
                state: #state::#variant { #(#fields),* },
                command: __sf_command,
            });
        }
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

/// What a point in a block knows: which locals are Rust variables there.
struct Site<'e> {
    em: &'e Emitter<'e>,
    locals: Vec<VarId>,
    visible: HashMap<String, VarId>,
}

impl Site<'_> {
    fn declare(&mut self, v: VarId) {
        self.locals.push(v);
        self.visible.insert(self.em.cfg.vars[v].name.to_string(), v);
    }

    fn clone_for_edge(&self) -> Self {
        Site {
            em: self.em,
            locals: self.locals.clone(),
            visible: self.visible.clone(),
        }
    }

    /// How to get `v`'s value here: the Rust local, or its slot.
    fn value_of(&self, v: VarId) -> TokenStream {
        let var = &self.em.cfg.vars[v];
        if self.locals.contains(&v) {
            self.check_visible(v);
            let name = &var.name;
            quote!(#name)
        } else if let Some(slot) = self.em.slots.get(&v) {
            quote!(::steadfast::__private::slot(&mut #slot))
        } else {
            quote!(::core::unreachable!())
        }
    }

    fn check_visible(&self, v: VarId) {
        let name = self.em.cfg.vars[v].name.to_string();
        match self.visible.get(&name) {
            Some(&w) if w != v => self.em.shadow_error(v.min(w), v.max(w)),
            _ => {}
        }
    }
}

impl Site<'_> {
    /// A jump at the end of the block (no user scope around it).
    fn jump_here(&self, target: BlockId) -> TokenStream {
        self.jump(target, None, &HashSet::new(), Span::call_site())
    }
}

impl Jumps for Site<'_> {
    fn jump(
        &self,
        target: BlockId,
        assign: Option<(VarId, TokenStream)>,
        shadowed: &HashSet<String>,
        at: Span,
    ) -> TokenStream {
        let block = block_var();
        let label = tramp_label();
        let mut pre = TokenStream::new();
        if let Some((v, value)) = assign {
            let name = &self.em.cfg.vars[v].name;
            pre = quote!(#name = #value;);
        }
        let stores = self.em.live.live_in[target].iter().filter(|v| self.locals.contains(v)).map(|v| {
            self.check_visible(*v);
            let var = &self.em.cfg.vars[*v];
            if shadowed.contains(&var.name.to_string()) {
                self.em.errors.at(
                    at,
                    format!(
                        "`{}` is shadowed here, but the outer `{}` is still needed where this jumps to; \
                         rename the inner binding",
                        var.name, var.name
                    ),
                );
            }
            let name = &self.em.cfg.vars[*v].name;
            let slot = &self.em.slots[v];
            quote!(#slot = ::core::option::Option::Some(#name);)
        });
        quote!({ #pre #(#stores)* #block = #target; continue #label; })
    }
}
