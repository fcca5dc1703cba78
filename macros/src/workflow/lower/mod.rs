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

mod control;
mod suspend;
mod util;

pub(crate) use util::camel_case;
use util::*;

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
    pub(super) fn for_tail(tail: Tail) -> Self {
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

    pub(super) fn new_block(&mut self) -> BlockId {
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
    pub(super) fn enter(&mut self, b: BlockId) {
        self.cur = b;
        let block = &mut self.cfg.blocks[b];
        if block.order == usize::MAX {
            block.order = self.next_order;
            self.next_order += 1;
        }
    }

    pub(super) fn terminate(&mut self, term: Terminator, uses: BTreeSet<VarId>) {
        let loops = Rc::clone(&self.loops);
        let b = &mut self.cfg.blocks[self.cur];
        if matches!(b.term, Terminator::Open) {
            b.term = term;
            b.term_uses = uses;
            b.loops = loops;
        }
    }

    pub(super) fn goto(&mut self, target: BlockId) {
        self.terminate(Terminator::Goto(target), BTreeSet::new());
    }

    /// Ends the current block by divergence and continues in a block that
    /// nothing reaches (code after a `return` is dead).
    pub(super) fn diverge(&mut self) {
        self.terminate(Terminator::Diverged, BTreeSet::new());
        let dead = self.new_block();
        self.enter(dead);
    }

    pub(super) fn declare(
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

    pub(super) fn push_loop(&mut self, frame: LoopFrame) {
        let mut frames = (*self.loops).clone();
        frames.push(frame);
        self.loops = Rc::new(frames);
    }

    pub(super) fn pop_loop(&mut self) {
        let mut frames = (*self.loops).clone();
        frames.pop();
        self.loops = Rc::new(frames);
    }

    pub(super) fn temp_ident(&mut self, what: &str, span: Span) -> Ident {
        self.temps += 1;
        Ident::new(&format!("__sf_{what}_{}", self.temps), span)
    }

    // ----- statements -----------------------------------------------------

    pub(super) fn lower_stmts(&mut self, stmts: Vec<Stmt>, tail: Tail, end: Span) {
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

    pub(super) fn lower_stmt(&mut self, stmt: Stmt) {
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

    pub(super) fn take_pin_expr(&mut self, mut e: Expr) -> Expr {
        if let Some(attrs) = expr_attrs_mut(&mut e)
            && let Some(pin) = take_step_attr(self.errors, attrs)
        {
            self.pin = Some(pin);
        }
        e
    }

    pub(super) fn check_pin_used(&mut self) {
        if let Some((_, span)) = self.pin.take() {
            self.errors.at(
                span,
                "`#[step]` names the await of its statement, and this statement awaits nothing",
            );
        }
    }

    /// An await-free statement, kept as written.
    pub(super) fn plain(&mut self, stmt: Stmt) {
        let access = stmt_access(&stmt, &self.scopes);
        self.push_piece(stmt, access);
    }

    pub(super) fn push_piece(&mut self, stmt: Stmt, access: Access) {
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
    pub(super) fn kill_here(&mut self, v: VarId) {
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
    pub(super) fn plain_value(&mut self, e: Expr, tail: Tail) {
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
    pub(super) fn assign_target(&self, v: VarId, span: Span) -> Ident {
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

    pub(super) fn lower_local(&mut self, local: Local) {
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
    pub(super) fn lower_value(&mut self, e: Expr, tail: Tail) {
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

    pub(super) fn unit_to(&mut self, tail: Tail, span: Span) {
        if tail != Tail::Discard {
            let unit: Expr = syn::parse_quote_spanned!(span=> ());
            self.plain_value(unit, tail);
        }
    }

    pub(super) fn hoist_then_lower(&mut self, mut e: Expr, tail: Tail) {
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
}

#[cfg(test)]
mod tests {
    use super::camel_case;

    #[test]
    pub(super) fn camel_cases_step_names() {
        assert_eq!(camel_case("charge_card"), "ChargeCard");
        assert_eq!(camel_case("charge-card"), "ChargeCard");
        assert_eq!(camel_case("ship"), "Ship");
        assert_eq!(camel_case("3ds"), "S3ds");
    }
}
