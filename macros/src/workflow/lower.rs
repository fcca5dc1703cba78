//! Lowering: the workflow body to a control-flow graph of blocks.
//!
//! Statements without an await are kept whole, as ordinary Rust. A
//! statement with an await is split: the await ends the current block with a
//! suspension, and the code after it starts the block that resumes. `if`,
//! `match` and loops that contain an await become terminators and blocks of
//! their own; `while` and `for` are lowered to `loop` + `if`. An await
//! nested inside an expression is first hoisted to a `let` of its own.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprIf, Ident, Lifetime, Local, LocalInit, Pat, Stmt, Token, Type};

use super::cfg::{
    Block, BlockId, Cfg, CtxMethod, LoopFrame, MatchArm, Piece, Suspend, SuspendKind, Tail,
    Terminator, Var, VarId, VarOrigin,
};
use super::classify::{
    Awaited, activity_outcome_types, activity_type, classify, ctx_outcome_types,
};
use super::hoist::{extract_first, first_await_span, is_direct_await};
use super::jumps::jumps_of;
use super::scan::{block_has_await, expr_has_await, stmt_has_await};
use super::sig::WorkflowSig;
use super::uses::{
    Access, Scopes, expr_access, guard_access, pattern_bindings, pattern_bindings_of, stmt_access,
};
use crate::errors::Errors;

/// Lowers a workflow body.
pub(crate) fn lower(errors: &Errors, sig: &WorkflowSig, body: syn::Block) -> Cfg {
    let mut l = Lowerer {
        errors,
        cfg: Cfg {
            vars: Vec::new(),
            blocks: Vec::new(),
            suspends: Vec::new(),
            entry: 0,
            params: Vec::new(),
            items: Vec::new(),
            fail_terms: BTreeSet::new(),
        },
        scopes: Scopes::default(),
        loops: Rc::new(Vec::new()),
        cur: 0,
        ctx: sig.ctx.clone(),
        step_counts: HashMap::new(),
        step_names: HashSet::new(),
        temps: 0,
        pin: None,
        next_order: 0,
    };
    l.scopes.push();
    for p in &sig.params {
        let v = l.declare(
            p.ident.clone(),
            Some(p.ty.clone()),
            p.mutable,
            VarOrigin::Param,
        );
        l.cfg.params.push(v);
    }
    l.cfg.entry = l.new_block();
    let entry = l.cfg.entry;
    l.enter(entry);
    let end = body.brace_token.span.close();
    l.lower_stmts(body.stmts, Tail::Return, end);
    l.scopes.pop();
    l.cfg
}

/// Where the outcome of a suspension goes.
enum Binding {
    /// `let PAT = outcome [else { .. }];`
    Let {
        attrs: Vec<Attribute>,
        pat: Pat,
        diverge: Option<(Token![else], Box<Expr>)>,
    },
    /// `PLACE = outcome;`
    Place(Expr),
    /// `var = outcome;` (a value assigned by control flow)
    Var(VarId),
    /// `outcome;`
    Discard,
    /// `return outcome;`
    Return,
}

impl Binding {
    fn for_tail(tail: Tail) -> Self {
        match tail {
            Tail::Discard => Binding::Discard,
            Tail::Return => Binding::Return,
            Tail::Assign(v) => Binding::Var(v),
        }
    }
}

struct Lowerer<'a> {
    errors: &'a Errors,
    cfg: Cfg,
    scopes: Scopes,
    loops: Rc<Vec<LoopFrame>>,
    cur: BlockId,
    ctx: Option<Ident>,
    step_counts: HashMap<String, usize>,
    step_names: HashSet<String>,
    temps: usize,
    /// A `#[step("..")]` name waiting for the next suspension.
    pin: Option<(String, Span)>,
    next_order: usize,
}

impl Lowerer<'_> {
    // ----- building blocks ------------------------------------------------

    fn new_block(&mut self) -> BlockId {
        self.cfg.blocks.push(Block {
            pieces: Vec::new(),
            term: Terminator::Open,
            term_uses: BTreeSet::new(),
            entry_binds: Vec::new(),
            loops: Rc::clone(&self.loops),
            order: usize::MAX,
        });
        self.cfg.blocks.len() - 1
    }

    /// Makes `b` the block code is lowered into.
    fn enter(&mut self, b: BlockId) {
        self.cur = b;
        let block = &mut self.cfg.blocks[b];
        if block.order == usize::MAX {
            block.order = self.next_order;
            self.next_order += 1;
        }
    }

    fn terminate(&mut self, term: Terminator, uses: BTreeSet<VarId>) {
        let loops = Rc::clone(&self.loops);
        let b = &mut self.cfg.blocks[self.cur];
        if matches!(b.term, Terminator::Open) {
            b.term = term;
            b.term_uses = uses;
            b.loops = loops;
        }
    }

    fn goto(&mut self, target: BlockId) {
        self.terminate(Terminator::Goto(target), BTreeSet::new());
    }

    /// Ends the current block by divergence and continues in a block that
    /// nothing reaches (code after a `return` is dead).
    fn diverge(&mut self) {
        self.terminate(Terminator::Diverged, BTreeSet::new());
        let dead = self.new_block();
        self.enter(dead);
    }

    fn declare(
        &mut self,
        ident: Ident,
        ty: Option<Type>,
        mutable: bool,
        origin: VarOrigin,
    ) -> VarId {
        let id = self.cfg.vars.len();
        self.scopes.declare(&ident, id);
        self.cfg.vars.push(Var {
            name: ident,
            ty,
            mutable,
            origin,
        });
        id
    }

    fn push_loop(&mut self, frame: LoopFrame) {
        let mut frames = (*self.loops).clone();
        frames.push(frame);
        self.loops = Rc::new(frames);
    }

    fn pop_loop(&mut self) {
        let mut frames = (*self.loops).clone();
        frames.pop();
        self.loops = Rc::new(frames);
    }

    fn temp_ident(&mut self, what: &str, span: Span) -> Ident {
        self.temps += 1;
        Ident::new(&format!("__sf_{what}_{}", self.temps), span)
    }

    // ----- statements -----------------------------------------------------

    fn lower_stmts(&mut self, stmts: Vec<Stmt>, tail: Tail, end: Span) {
        self.scopes.push();
        let count = stmts.len();
        let mut has_tail = false;
        for (i, stmt) in stmts.into_iter().enumerate() {
            match stmt {
                Stmt::Expr(e, None) if i + 1 == count => {
                    let e = self.take_pin_expr(e);
                    self.lower_value(e, tail);
                    has_tail = true;
                }
                other => self.lower_stmt(other),
            }
            self.check_pin_used();
        }
        if !has_tail {
            match tail {
                Tail::Discard => {}
                Tail::Return | Tail::Assign(_) => {
                    let unit: Expr = syn::parse_quote_spanned!(end=> ());
                    self.plain_value(unit, tail);
                }
            }
        }
        self.scopes.pop();
    }

    fn lower_stmt(&mut self, stmt: Stmt) {
        match stmt {
            Stmt::Item(_) => self.cfg.items.push(stmt),
            Stmt::Local(mut local) => {
                self.pin = take_step_attr(self.errors, &mut local.attrs);
                let awaits = local.init.as_ref().is_some_and(|i| {
                    expr_has_await(&i.expr)
                        || i.diverge.as_ref().is_some_and(|(_, d)| expr_has_await(d))
                });
                if awaits {
                    self.lower_local(local);
                } else {
                    self.plain(Stmt::Local(local));
                }
            }
            Stmt::Expr(e, semi) => {
                let e = self.take_pin_expr(e);
                if expr_has_await(&e) {
                    self.lower_value(e, Tail::Discard);
                } else {
                    self.plain(Stmt::Expr(e, semi));
                }
            }
            Stmt::Macro(m) => self.plain(Stmt::Macro(m)),
        }
    }

    fn take_pin_expr(&mut self, mut e: Expr) -> Expr {
        if let Some(attrs) = expr_attrs_mut(&mut e)
            && let Some(pin) = take_step_attr(self.errors, attrs)
        {
            self.pin = Some(pin);
        }
        e
    }

    fn check_pin_used(&mut self) {
        if let Some((_, span)) = self.pin.take() {
            self.errors.at(
                span,
                "`#[step]` names the await of its statement, and this statement awaits nothing",
            );
        }
    }

    /// An await-free statement, kept as written.
    fn plain(&mut self, stmt: Stmt) {
        let access = stmt_access(&stmt, &self.scopes);
        self.push_piece(stmt, access);
    }

    fn push_piece(&mut self, stmt: Stmt, access: Access) {
        let jumps = jumps_of(&stmt, &self.loops);
        let mut defs = BTreeSet::new();
        if let Stmt::Expr(Expr::Assign(a), _) = &stmt
            && let Some(v) = path_var(&a.left, &self.scopes)
        {
            defs.insert(v);
        }
        let mut decls = Vec::new();
        if let Stmt::Local(local) = &stmt {
            for b in pattern_bindings(&local.pat) {
                let v = self.declare(b.ident, b.ty, b.mutable, VarOrigin::Let);
                decls.push(v);
                defs.insert(v);
            }
        }
        let mut may_defs = access.assigns;
        may_defs.extend(jumps.iter().filter_map(|(_, v)| *v));
        let diverges = matches!(
            &stmt,
            Stmt::Expr(Expr::Return(_) | Expr::Break(_) | Expr::Continue(_), _)
        );
        self.cfg.blocks[self.cur].pieces.push(Piece {
            stmt,
            uses: access.uses,
            may_defs,
            defs,
            decls,
            kills: BTreeSet::new(),
            loops: Rc::clone(&self.loops),
            jumps,
            may_fail: access.fails,
            may_return: access.returns,
            continues: false,
        });
        if diverges {
            self.diverge();
        }
    }

    /// Records that `v` has no value before this point (it is declared here
    /// and assigned later), so liveness does not look further back for it.
    fn kill_here(&mut self, v: VarId) {
        self.cfg.blocks[self.cur].pieces.push(Piece {
            stmt: Stmt::Expr(Expr::Verbatim(proc_macro2::TokenStream::new()), None),
            uses: BTreeSet::new(),
            may_defs: BTreeSet::new(),
            defs: BTreeSet::new(),
            decls: Vec::new(),
            kills: BTreeSet::from([v]),
            loops: Rc::clone(&self.loops),
            jumps: Vec::new(),
            may_fail: false,
            may_return: false,
            continues: false,
        });
    }

    /// An await-free value delivered to `tail`.
    fn plain_value(&mut self, e: Expr, tail: Tail) {
        let span = e.span();
        let stmt: Stmt = match tail {
            Tail::Discard => Stmt::Expr(e, Some(Token![;](span))),
            Tail::Return => syn::parse_quote_spanned!(span=> return #e;),
            Tail::Assign(v) => {
                let name = self.assign_target(v, span);
                syn::parse_quote_spanned!(span=> #name = #e;)
            }
        };
        self.plain(stmt);
    }

    /// The name to assign variable `v` by, checking it is not shadowed here.
    fn assign_target(&self, v: VarId, span: Span) -> Ident {
        let var = &self.cfg.vars[v];
        if self.scopes.resolve(&var.name.to_string()) != Some(v) {
            self.errors.at(
                span,
                format!(
                    "`{}` is shadowed here, but this value is assigned to the outer `{}`; rename the inner binding",
                    var.name, var.name
                ),
            );
        }
        let mut name = var.name.clone();
        name.set_span(span.resolved_at(var.name.span()));
        name
    }

    fn lower_local(&mut self, local: Local) {
        let Local {
            attrs, pat, init, ..
        } = local;
        let Some(LocalInit { expr, diverge, .. }) = init else {
            return;
        };
        if let Some((_, d)) = &diverge
            && expr_has_await(d)
        {
            self.errors.at(
                first_await_span(d).unwrap_or_else(|| d.span()),
                "await must not be used in the `else` block of a `let ... else` in a workflow",
            );
            return;
        }
        let expr = *expr;
        if is_direct_await(&expr) {
            self.suspend_at(
                expr,
                Binding::Let {
                    attrs,
                    pat,
                    diverge,
                },
            );
            return;
        }
        if diverge.is_none() && is_control_flow_with_await(&expr) {
            let bindings = pattern_bindings(&pat);
            let single = matches!(strip_type(&pat), Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none());
            if let (true, [b]) = (single, bindings.as_slice()) {
                let v = self.declare(b.ident.clone(), b.ty.clone(), b.mutable, VarOrigin::Let);
                self.kill_here(v);
                self.lower_value(expr, Tail::Assign(v));
                return;
            }
        }
        // Hoist the first await out of the initializer, then go again.
        let temp = self.temp_ident("await", expr.span());
        let mut expr = expr;
        match extract_first(&mut expr, &temp) {
            Ok(Some(found)) => {
                self.lower_local(temp_let(&temp, found));
                let rest = Local {
                    attrs,
                    let_token: Token![let](pat.span()),
                    pat,
                    init: Some(LocalInit {
                        eq_token: Token![=](expr.span()),
                        expr: Box::new(expr),
                        diverge,
                    }),
                    semi_token: Token![;](Span::call_site()),
                };
                let stmt = Stmt::Local(rest);
                if stmt_has_await(&stmt) {
                    if let Stmt::Local(rest) = stmt {
                        self.lower_local(rest);
                    }
                } else {
                    self.plain(stmt);
                }
            }
            Ok(None) => self.plain(Stmt::Local(Local {
                attrs,
                let_token: Token![let](pat.span()),
                pat,
                init: Some(LocalInit {
                    eq_token: Token![=](expr.span()),
                    expr: Box::new(expr),
                    diverge,
                }),
                semi_token: Token![;](Span::call_site()),
            })),
            Err(e) => self.errors.push(e),
        }
    }

    // ----- values ---------------------------------------------------------

    /// Lowers `e`, whose value goes to `tail`.
    fn lower_value(&mut self, e: Expr, tail: Tail) {
        if !expr_has_await(&e) {
            self.plain_value(e, tail);
            return;
        }
        if is_direct_await(&e) {
            self.suspend_at(e, Binding::for_tail(tail));
            return;
        }
        match e {
            Expr::Paren(p) => self.lower_value(*p.expr, tail),
            Expr::If(i) if !expr_has_await(&i.cond) => self.lower_if(i, tail),
            Expr::Match(m) if !expr_has_await(&m.expr) => self.lower_match(m, tail),
            Expr::Loop(l) => {
                let label = l.label.map(|l| l.name);
                self.lower_loop(label, l.body, tail);
            }
            Expr::While(w) => self.lower_while(w, tail),
            Expr::ForLoop(f) if !expr_has_await(&f.expr) => self.lower_for(f, tail),
            Expr::Block(b) if b.label.is_none() => {
                let end = b.block.brace_token.span.close();
                self.lower_stmts(b.block.stmts, tail, end);
                // The block's scope ends here: continue in a fresh block so
                // its locals cannot be confused with outer ones.
                let after = self.new_block();
                self.goto(after);
                self.enter(after);
            }
            Expr::Block(b) => self.errors.at(
                b.label.span(),
                "a labeled block with an await inside is not supported in a workflow; use a `loop` with `break`",
            ),
            Expr::Unsafe(u) => self.errors.spanned(
                u.unsafe_token,
                "await must not be used inside an `unsafe` block in a workflow",
            ),
            Expr::Return(r) if r.expr.is_some() => {
                if let Some(inner) = r.expr {
                    self.lower_value(*inner, Tail::Return);
                }
            }
            Expr::Assign(a) if !expr_has_await(&a.left) && is_direct_await(&a.right) => {
                self.suspend_at(*a.right, Binding::Place(*a.left));
                self.unit_to(tail, a.eq_token.span);
            }
            Expr::Assign(a) if !expr_has_await(&a.left) && is_control_flow_with_await(&a.right) => {
                match path_var(&a.left, &self.scopes) {
                    Some(v) => {
                        self.lower_value(*a.right, Tail::Assign(v));
                        self.unit_to(tail, a.eq_token.span);
                    }
                    None => self.hoist_then_lower(Expr::Assign(a), tail),
                }
            }
            other => self.hoist_then_lower(other, tail),
        }
    }

    fn unit_to(&mut self, tail: Tail, span: Span) {
        if tail != Tail::Discard {
            let unit: Expr = syn::parse_quote_spanned!(span=> ());
            self.plain_value(unit, tail);
        }
    }

    fn hoist_then_lower(&mut self, mut e: Expr, tail: Tail) {
        let temp = self.temp_ident("await", e.span());
        match extract_first(&mut e, &temp) {
            Ok(Some(found)) => {
                self.lower_local(temp_let(&temp, found));
                self.lower_value(e, tail);
            }
            Ok(None) => self.plain_value(e, tail),
            Err(err) => self.errors.push(err),
        }
    }

    fn lower_if(&mut self, i: ExprIf, tail: Tail) {
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

    fn lower_match(&mut self, m: syn::ExprMatch, tail: Tail) {
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

    fn lower_loop(&mut self, label: Option<Lifetime>, body: syn::Block, tail: Tail) {
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

    fn lower_while(&mut self, w: syn::ExprWhile, tail: Tail) {
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

    fn lower_for(&mut self, f: syn::ExprForLoop, tail: Tail) {
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
    fn for_items(&self, e: &Expr) -> Option<(Type, Type, Expr)> {
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
    fn typed_operand(&self, e: &Expr) -> Option<Type> {
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

    fn mark_fail(&mut self, fails: bool) {
        if fails {
            self.mark_fail_in(self.cur);
        }
    }

    /// Records that a block's terminator can fail with `?` (for the graph).
    fn mark_fail_in(&mut self, b: BlockId) {
        self.cfg.fail_terms.insert(b);
    }

    // ----- suspensions ----------------------------------------------------

    fn suspend_at(&mut self, e: Expr, binding: Binding) {
        let (await_expr, question) = match e {
            Expr::Await(a) => (a, None),
            Expr::Try(t) => match *t.expr {
                Expr::Await(a) => (a, Some(t.question_token)),
                _ => return,
            },
            Expr::Paren(p) => return self.suspend_at(*p.expr, binding),
            _ => return,
        };
        let span = await_expr.await_token.span();
        let kind = match classify(self.errors, &await_expr.base, self.ctx.as_ref()) {
            Some(Awaited::Suspend(kind)) => *kind,
            Some(Awaited::ContinueAsNew(call)) => {
                self.continue_as_new(*call, span);
                return;
            }
            None => {
                self.pin = None;
                return;
            }
        };
        let (name, variant) = self.step_name(&kind, span);
        let (outcome_path, (outcome_ty, ok_ty), args) = match &kind {
            SuspendKind::Activity { path, args } => (
                activity_type(path),
                activity_outcome_types(path),
                args.clone(),
            ),
            SuspendKind::Ctx { method, call, ty } => (
                proc_macro2::TokenStream::new(),
                ctx_outcome_types(*method, ty.as_deref()),
                call.args.iter().cloned().collect(),
            ),
        };
        let mut uses = BTreeSet::new();
        let mut fails = false;
        for a in &args {
            let acc = expr_access(a, &self.scopes);
            uses.extend(acc.uses);
            fails |= acc.fails;
        }
        let id = self.cfg.suspends.len();
        let resume = self.new_block();
        self.cfg.suspends.push(Suspend {
            name,
            variant,
            kind,
            resume,
            span,
            outcome_path,
        });
        self.terminate(Terminator::Suspend(id), uses);
        self.mark_fail(fails);
        self.enter(resume);

        let slot = format_ident!("__sf_out_{}", id, span = Span::mixed_site());
        let mut outcome: Expr = syn::parse_quote_spanned!(span=>
            ::steadfast::__private::slot(&mut #slot)
        );
        let derived_ty = match &question {
            Some(q) => {
                outcome = Expr::Try(syn::ExprTry {
                    attrs: Vec::new(),
                    expr: Box::new(outcome),
                    question_token: *q,
                });
                ok_ty
            }
            None => outcome_ty,
        };
        match binding {
            Binding::Let {
                attrs,
                pat,
                diverge,
            } => {
                let mut bindings = pattern_bindings(&pat);
                let single =
                    matches!(&pat, Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none());
                if single && let Some(b) = bindings.first_mut() {
                    b.ty = Some(derived_ty);
                }
                let stmt = Stmt::Local(Local {
                    attrs,
                    let_token: Token![let](span),
                    pat,
                    init: Some(LocalInit {
                        eq_token: Token![=](span),
                        expr: Box::new(outcome),
                        diverge,
                    }),
                    semi_token: Token![;](span),
                });
                let access = stmt_access(&stmt, &self.scopes);
                let jumps = jumps_of(&stmt, &self.loops);
                let mut decls = Vec::new();
                for b in bindings {
                    decls.push(self.declare(b.ident, b.ty, b.mutable, VarOrigin::Let));
                }
                self.cfg.blocks[self.cur].pieces.push(Piece {
                    stmt,
                    uses: access.uses,
                    may_defs: access.assigns,
                    defs: decls.iter().copied().collect(),
                    decls,
                    kills: BTreeSet::new(),
                    loops: Rc::clone(&self.loops),
                    jumps,
                    may_fail: question.is_some() || access.fails,
                    may_return: access.returns,
                    continues: false,
                });
            }
            Binding::Place(place) => {
                let stmt: Stmt = syn::parse_quote_spanned!(span=> #place = #outcome;);
                self.plain(stmt);
            }
            Binding::Var(v) => {
                let name = self.assign_target(v, span);
                let stmt: Stmt = syn::parse_quote_spanned!(span=> #name = #outcome;);
                self.plain(stmt);
            }
            Binding::Discard => {
                let stmt: Stmt = syn::parse_quote_spanned!(span=> #outcome;);
                self.plain(stmt);
            }
            Binding::Return => {
                let stmt: Stmt = syn::parse_quote_spanned!(span=> return #outcome;);
                self.plain(stmt);
            }
        }
    }

    /// `ctx.continue_as_new(input).await`: the run ends here and starts
    /// again with `input`; nothing after it runs.
    fn continue_as_new(&mut self, call: syn::ExprMethodCall, span: Span) {
        let temp = Ident::new("__sf_continue", span);
        let stmt: Stmt = syn::parse_quote_spanned!(span=> let #temp = #call;);
        self.plain(stmt);
        // Opaque to the rewriter: this `return` is the step function's own.
        let done = quote::quote_spanned! {span=>
            return ::core::result::Result::Ok(
                ::steadfast::__private::Transition::ContinueAsNew { input: #temp.input }
            );
        };
        let piece = Stmt::Expr(Expr::Verbatim(done), None);
        self.cfg.blocks[self.cur].pieces.push(Piece {
            stmt: piece,
            uses: BTreeSet::new(),
            may_defs: BTreeSet::new(),
            defs: BTreeSet::new(),
            decls: Vec::new(),
            kills: BTreeSet::new(),
            loops: Rc::clone(&self.loops),
            jumps: Vec::new(),
            may_fail: false,
            may_return: false,
            continues: true,
        });
        self.diverge();
    }

    /// The stable name and variant identifier of a new suspension.
    fn step_name(&mut self, kind: &SuspendKind, span: Span) -> (String, Ident) {
        let (name, variant_text, name_span) = match self.pin.take() {
            Some((pinned, pin_span)) => {
                let v = camel_case(&pinned);
                (pinned, v, pin_span)
            }
            None => {
                let last_ident = |path: &syn::Path| {
                    path.segments
                        .last()
                        .map(|s| s.ident.to_string().trim_start_matches("r#").to_owned())
                        .unwrap_or_default()
                };
                let type_ident = |ty: &Option<Box<Type>>| match ty.as_deref() {
                    Some(Type::Path(tp)) => snake_case(&last_ident(&tp.path)),
                    _ => String::new(),
                };
                let base = match kind {
                    SuspendKind::Activity { path, .. } => last_ident(path),
                    SuspendKind::Ctx { method, ty, .. } => match method {
                        CtxMethod::Sleep => "sleep".to_owned(),
                        CtxMethod::Signal | CtxMethod::SignalWithin => {
                            format!("signal_{}", type_ident(ty))
                        }
                        CtxMethod::Child => format!("child_{}", type_ident(ty)),
                    },
                };
                let n = self.step_counts.entry(base.clone()).or_insert(0);
                let name = format!("{base}#{n}");
                let v = format!("{}{n}", camel_case(&base));
                *n += 1;
                (name, v, span)
            }
        };
        if name == "start" || variant_text == "Start" {
            self.errors.at(
                name_span,
                "the step name `start` is reserved for the start state",
            );
        }
        if !self.step_names.insert(name.clone())
            || self.cfg.suspends.iter().any(|s| s.variant == variant_text)
        {
            self.errors.at(
                name_span,
                format!(
                    "two awaits are named `{name}`; give one another name with `#[step(\"..\")]`"
                ),
            );
        }
        (name, Ident::new(&variant_text, span))
    }
}

/// The item type of well-known collections, as written (`Vec<(A, B)>` has
/// items `(A, B)`), so that tuple patterns over them get typed bindings.
fn element_type(ty: &Type) -> Option<Type> {
    let Type::Path(tp) = ty else {
        return match ty {
            Type::Array(a) => Some((*a.elem).clone()),
            Type::Paren(p) => element_type(&p.elem),
            _ => None,
        };
    };
    let last = tp.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let types: Vec<&Type> = args
        .args
        .iter()
        .filter_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect();
    match (last.ident.to_string().as_str(), types.as_slice()) {
        (
            "Vec" | "VecDeque" | "HashSet" | "BTreeSet" | "Option" | "BinaryHeap" | "LinkedList",
            [t, ..],
        ) => Some((*t).clone()),
        ("HashMap" | "BTreeMap", [k, v, ..]) => Some(syn::parse_quote!((#k, #v))),
        _ => None,
    }
}

/// `Cancel` -> `cancel`; `OrderShipped` -> `order_shipped`.
fn snake_case(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `#[step("name")]`: removed from `attrs`, returned with its span.
fn take_step_attr(errors: &Errors, attrs: &mut Vec<Attribute>) -> Option<(String, Span)> {
    let mut found = None;
    attrs.retain(|a| {
        if !a.path().is_ident("step") {
            return true;
        }
        match a.parse_args::<syn::LitStr>() {
            Ok(lit) => {
                let name = lit.value();
                if name.is_empty() || name.contains(['|', '"', '\n']) {
                    errors.spanned(
                        &lit,
                        "a step name must be non-empty text without `|`, quotes or newlines",
                    );
                } else if found.is_some() {
                    errors.spanned(a, "duplicate attribute `step`");
                } else {
                    found = Some((name, lit.span()));
                }
            }
            Err(_) => errors.spanned(a, "expected `#[step(\"name\")]`"),
        }
        false
    });
    found
}

fn expr_attrs_mut(e: &mut Expr) -> Option<&mut Vec<Attribute>> {
    match e {
        Expr::Await(x) => Some(&mut x.attrs),
        Expr::Try(x) => Some(&mut x.attrs),
        Expr::Assign(x) => Some(&mut x.attrs),
        Expr::Call(x) => Some(&mut x.attrs),
        Expr::MethodCall(x) => Some(&mut x.attrs),
        Expr::If(x) => Some(&mut x.attrs),
        Expr::Match(x) => Some(&mut x.attrs),
        Expr::Return(x) => Some(&mut x.attrs),
        _ => None,
    }
}

/// `let temp = found;`
fn temp_let(temp: &Ident, found: Expr) -> Local {
    let span = found.span();
    Local {
        attrs: Vec::new(),
        let_token: Token![let](span),
        pat: Pat::Ident(syn::PatIdent {
            attrs: Vec::new(),
            by_ref: None,
            mutability: None,
            ident: temp.clone(),
            subpat: None,
        }),
        init: Some(LocalInit {
            eq_token: Token![=](span),
            expr: Box::new(found),
            diverge: None,
        }),
        semi_token: Token![;](span),
    }
}

fn strip_type(p: &Pat) -> &Pat {
    match p {
        Pat::Type(t) => &t.pat,
        other => other,
    }
}

fn is_control_flow_with_await(e: &Expr) -> bool {
    match e {
        Expr::If(i) => !expr_has_await(&i.cond) && expr_has_await(e),
        Expr::Match(m) => !expr_has_await(&m.expr) && expr_has_await(e),
        Expr::Loop(l) => block_has_await(&l.body),
        Expr::Block(b) => b.label.is_none() && block_has_await(&b.block),
        Expr::Paren(p) => is_control_flow_with_await(&p.expr),
        _ => false,
    }
}

/// The workflow local a bare path names.
fn path_var(e: &Expr, scopes: &Scopes) -> Option<VarId> {
    match e {
        Expr::Path(p) if p.qself.is_none() => p
            .path
            .get_ident()
            .and_then(|id| scopes.resolve(&id.to_string())),
        Expr::Paren(p) => path_var(&p.expr, scopes),
        _ => None,
    }
}

/// The patterns of the `let`s in an `if` condition (`if let`, let chains).
fn let_patterns(cond: &Expr) -> Vec<&Pat> {
    match cond {
        Expr::Let(l) => vec![&*l.pat],
        Expr::Binary(b) if matches!(b.op, syn::BinOp::And(_)) => {
            let mut v = let_patterns(&b.left);
            v.extend(let_patterns(&b.right));
            v
        }
        Expr::Paren(p) => let_patterns(&p.expr),
        _ => Vec::new(),
    }
}

/// `charge_card` -> `ChargeCard`; `charge-card` -> `ChargeCard`.
pub(crate) fn camel_case(s: &str) -> String {
    let mut out = String::new();
    for part in s.split(|c: char| !c.is_alphanumeric()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    if out.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        out.insert(0, 'S');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::camel_case;

    #[test]
    fn camel_cases_step_names() {
        assert_eq!(camel_case("charge_card"), "ChargeCard");
        assert_eq!(camel_case("charge-card"), "ChargeCard");
        assert_eq!(camel_case("ship"), "Ship");
        assert_eq!(camel_case("3ds"), "S3ds");
    }
}
