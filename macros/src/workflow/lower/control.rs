//! Lowering control flow that contains awaits: `if`, `match`, loops,
//! `while` and `for` (as `loop` + `if`).

use super::*;

impl Lowerer<'_> {
    pub(super) fn lower_if(&mut self, i: ExprIf, tail: Tail) {
        let ExprIf {
            cond,
            then_branch,
            else_branch,
            ..
        } = i;
        let access = expr_access(&cond, &self.scopes);
        let then_b = self.new_block();
        let els_b = self.new_block();
        let join = self.new_block();
        self.scopes.push();
        let mut binds = Vec::new();
        for pat in let_patterns(&cond) {
            for b in pattern_bindings(pat) {
                binds.push(self.declare(b.ident, b.ty, b.mutable, VarOrigin::Pattern));
            }
        }
        self.terminate(
            Terminator::If {
                cond: *cond,
                binds: binds.clone(),
                then: then_b,
                els: els_b,
            },
            access.uses,
        );
        self.mark_fail(access.fails);
        self.enter(then_b);
        self.cfg.blocks[then_b].entry_binds = binds;
        let end = then_branch.brace_token.span.close();
        self.lower_stmts(then_branch.stmts, tail, end);
        self.goto(join);
        self.scopes.pop();
        self.enter(els_b);
        match else_branch {
            None => self.unit_to(tail, end),
            Some((_, els)) => match *els {
                Expr::Block(b) => {
                    let end = b.block.brace_token.span.close();
                    self.lower_stmts(b.block.stmts, tail, end);
                }
                other => self.lower_value(other, tail),
            },
        }
        self.goto(join);
        self.enter(join);
    }

    pub(super) fn lower_match(&mut self, m: syn::ExprMatch, tail: Tail) {
        let pre = self.cur;
        let pre_loops = Rc::clone(&self.loops);
        let mut uses = expr_access(&m.expr, &self.scopes).uses;
        let mut fails = expr_access(&m.expr, &self.scopes).fails;
        let join = self.new_block();
        let mut arms = Vec::new();
        for arm in m.arms {
            if let Some((_, guard)) = &arm.guard
                && expr_has_await(guard)
            {
                self.errors.at(
                        first_await_span(guard).unwrap_or_else(|| guard.span()),
                        "await must not be used in a match guard in a workflow: await before the `match` and match on the value",
                    );
                continue;
            }
            let target = self.new_block();
            self.scopes.push();
            let bindings = pattern_bindings(&arm.pat);
            let names: Vec<Ident> = bindings.iter().map(|b| b.ident.clone()).collect();
            if let Some((_, guard)) = &arm.guard {
                let g = guard_access(guard, &self.scopes, &names);
                uses.extend(g.uses);
                fails |= g.fails;
            }
            let binds: Vec<VarId> = bindings
                .into_iter()
                .map(|b| self.declare(b.ident, b.ty, b.mutable, VarOrigin::Pattern))
                .collect();
            arms.push(MatchArm {
                pat: arm.pat,
                guard: arm.guard.map(|(_, g)| *g),
                binds: binds.clone(),
                target,
            });
            self.enter(target);
            self.cfg.blocks[target].entry_binds = binds;
            self.lower_value(*arm.body, tail);
            self.goto(join);
            self.scopes.pop();
        }
        let block = &mut self.cfg.blocks[pre];
        if matches!(block.term, Terminator::Open) {
            block.term = Terminator::Match {
                scrutinee: *m.expr,
                arms,
            };
            block.term_uses = uses;
            block.loops = pre_loops;
        }
        if fails {
            self.mark_fail_in(pre);
        }
        self.enter(join);
    }

    pub(super) fn lower_loop(&mut self, label: Option<Lifetime>, body: syn::Block, tail: Tail) {
        let head = self.new_block();
        let after = self.new_block();
        self.goto(head);
        self.enter(head);
        self.push_loop(LoopFrame {
            label,
            brk: after,
            cont: head,
            tail,
        });
        let end = body.brace_token.span.close();
        self.lower_stmts(body.stmts, Tail::Discard, end);
        self.goto(head);
        self.pop_loop();
        self.enter(after);
    }

    pub(super) fn lower_while(&mut self, w: syn::ExprWhile, tail: Tail) {
        let head = self.new_block();
        let after = self.new_block();
        self.goto(head);
        self.enter(head);
        self.push_loop(LoopFrame {
            label: w.label.map(|l| l.name),
            brk: after,
            cont: head,
            tail,
        });
        let span = w.while_token.span;
        let cond = w.cond;
        let body = w.body;
        let as_if: Expr = syn::parse_quote_spanned!(span=> if #cond #body else { break; });
        self.lower_value(as_if, Tail::Discard);
        self.goto(head);
        self.pop_loop();
        self.enter(after);
    }

    pub(super) fn lower_for(&mut self, f: syn::ExprForLoop, tail: Tail) {
        let span = f.for_token.span;
        let Some((items_ty, item_ty, init)) = self.for_items(&f.expr) else {
            self.errors.spanned(
                &f.expr,
                "this `for` loop awaits inside, so its remaining items are checkpointed and need a type: \
                 iterate over a typed local by value (`let items: Vec<Item> = ..; for item in items`) \
                 or over a range with a typed bound (`0..n` with `n: u32`, or `0u32..3`)",
            );
            return;
        };
        let items = self.temp_ident("items", span);
        let items_var = self.declare(items.clone(), Some(items_ty), true, VarOrigin::Temp);
        let mut uses = expr_access(&f.expr, &self.scopes).uses;
        uses.remove(&items_var);
        let init_stmt: Stmt = syn::parse_quote_spanned!(span=> let mut #items = #init;);
        // Declared above, so push the piece without declaring again.
        self.cfg.blocks[self.cur].pieces.push(Piece {
            stmt: init_stmt,
            uses,
            may_defs: BTreeSet::new(),
            defs: BTreeSet::from([items_var]),
            decls: vec![items_var],
            kills: BTreeSet::new(),
            loops: Rc::clone(&self.loops),
            jumps: Vec::new(),
            may_fail: false,
            may_return: false,
            continues: false,
        });
        let head = self.new_block();
        let after = self.new_block();
        let body_b = self.new_block();
        self.goto(head);
        self.enter(head);
        self.push_loop(LoopFrame {
            label: f.label.map(|l| l.name),
            brk: after,
            cont: head,
            tail,
        });
        self.scopes.push();
        let pat = *f.pat;
        let binds: Vec<VarId> = pattern_bindings_of(&pat, Some(&item_ty))
            .into_iter()
            .map(|b| self.declare(b.ident, b.ty, b.mutable, VarOrigin::Pattern))
            .collect();
        let p = quote!(::steadfast::__private);
        let cond: Expr = syn::parse_quote_spanned!(span=>
            let ::core::option::Option::Some(#pat) = #p::ForNext::for_next(&mut #items)
        );
        self.terminate(
            Terminator::If {
                cond,
                binds: binds.clone(),
                then: body_b,
                els: after,
            },
            BTreeSet::from([items_var]),
        );
        self.enter(body_b);
        self.cfg.blocks[body_b].entry_binds = binds;
        let end = f.body.brace_token.span.close();
        self.lower_stmts(f.body.stmts, Tail::Discard, end);
        self.goto(head);
        self.scopes.pop();
        self.pop_loop();
        self.enter(after);
    }

    /// For `for x in EXPR`: the stored iterator's type, the item type, and
    /// the expression that builds the stored iterator.
    pub(super) fn for_items(&self, e: &Expr) -> Option<(Type, Type, Expr)> {
        let p = quote!(::steadfast::__private);
        match e {
            Expr::Path(path) => {
                let v = path_var(e, &self.scopes)?;
                let ty = self.cfg.vars[v].ty.clone()?;
                let item: Type = element_type(&ty).unwrap_or_else(
                    || syn::parse_quote!(<#ty as ::core::iter::IntoIterator>::Item),
                );
                let items: Type = syn::parse_quote!(#p::ForItems<#item>);
                let init: Expr = syn::parse_quote_spanned!(path.span()=> #p::for_items(#path));
                Some((items, item, init))
            }
            Expr::Range(r) => {
                let (Some(start), Some(end)) = (&r.start, &r.end) else {
                    return None;
                };
                let elem = self
                    .typed_operand(start)
                    .or_else(|| self.typed_operand(end))?;
                let inclusive = matches!(r.limits, syn::RangeLimits::Closed(_));
                let items: Type = syn::parse_quote!(#p::ForRange<#elem>);
                let init: Expr = syn::parse_quote_spanned!(r.span()=>
                    #p::ForRange::<#elem>::new(#start, #end, #inclusive)
                );
                Some((items, elem, init))
            }
            Expr::Paren(inner) => self.for_items(&inner.expr),
            _ => None,
        }
    }

    /// The type of a range bound: a typed local or a suffixed literal.
    pub(super) fn typed_operand(&self, e: &Expr) -> Option<Type> {
        match e {
            Expr::Path(_) => path_var(e, &self.scopes).and_then(|v| self.cfg.vars[v].ty.clone()),
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(i),
                ..
            }) if !i.suffix().is_empty() => {
                let suffix = Ident::new(i.suffix(), i.span());
                Some(syn::parse_quote!(#suffix))
            }
            Expr::Paren(p) => self.typed_operand(&p.expr),
            _ => None,
        }
    }

    pub(super) fn mark_fail(&mut self, fails: bool) {
        if fails {
            self.mark_fail_in(self.cur);
        }
    }

    /// Records that a block's terminator can fail with `?` (for the graph).
    pub(super) fn mark_fail_in(&mut self, b: BlockId) {
        self.cfg.fail_terms.insert(b);
    }

    // ----- suspensions ----------------------------------------------------
}
