//! The step function: a trampoline over the blocks of the workflow's graph,
//! with the locals of each point, its suspensions and its jumps.

use super::*;

impl Emitter<'_> {
    pub(super) fn step_fn(&self, states: &[StateDef]) -> TokenStream {
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

    fn suspend(
        &self,
        site: &Site<'_>,
        id: usize,
        loops: &[crate::workflow::cfg::LoopFrame],
    ) -> TokenStream {
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
