//! Rewriting the user's statements for the step function.
//!
//! Inside a block, `return v` completes the workflow, `e?` completes it with
//! the error, and `break`/`continue` aimed at a split loop jump to another
//! block. Closures, async blocks and nested items keep their own meaning.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Ident};

use super::cfg::{BlockId, LoopFrame, Tail, VarId};
use super::jumps::{Inner, resolve};
use super::uses::pattern_bindings;

/// Emits the tokens of a jump: stores what the target needs, then goes there.
/// `assign` is a variable the jump assigns first (a valued `break`);
/// `shadowed` are names bound by the user's code around the jump, which hide
/// the workflow locals of the same name.
pub(crate) trait Jumps {
    fn jump(
        &self,
        target: BlockId,
        assign: Option<(VarId, TokenStream)>,
        shadowed: &HashSet<String>,
        at: Span,
    ) -> TokenStream;
}

/// Rewrites an expression in place.
pub(crate) fn rewrite_expr(e: &mut Expr, frames: &[LoopFrame], jumps: &dyn Jumps) {
    let mut r = Rewriter::new(frames, jumps);
    r.visit_expr_mut(e);
}

/// Rewrites a statement in place.
pub(crate) fn rewrite_stmt(s: &mut syn::Stmt, frames: &[LoopFrame], jumps: &dyn Jumps) {
    let mut r = Rewriter::new(frames, jumps);
    // A `let` statement's own bindings are not in scope in its initializer.
    r.visit_stmt_mut(s);
}

/// `return value` from the step function: the workflow completes.
pub(crate) fn complete(value: TokenStream, span: Span) -> TokenStream {
    quote_spanned! {span=>
        return ::core::result::Result::Ok(
            ::steadfast::__private::Transition::Complete(#value)
        )
    }
}

struct Rewriter<'a> {
    frames: &'a [LoopFrame],
    jumps: &'a dyn Jumps,
    inner: Vec<Inner>,
    /// Names bound by the user's code around the current point, innermost
    /// scope last.
    bound: Vec<HashSet<String>>,
}

impl<'a> Rewriter<'a> {
    fn new(frames: &'a [LoopFrame], jumps: &'a dyn Jumps) -> Self {
        Rewriter {
            frames,
            jumps,
            inner: Vec::new(),
            bound: Vec::new(),
        }
    }

    fn shadowed(&self) -> HashSet<String> {
        self.bound.iter().flatten().cloned().collect()
    }

    fn bind(&mut self, pat: &syn::Pat) {
        if self.bound.is_empty() {
            self.bound.push(HashSet::new());
        }
        let names = pattern_bindings(pat)
            .into_iter()
            .map(|b| b.ident.to_string());
        if let Some(top) = self.bound.last_mut() {
            top.extend(names);
        }
    }

    fn jump(&self, target: BlockId, assign: Option<(VarId, TokenStream)>, at: Span) -> TokenStream {
        self.jumps.jump(target, assign, &self.shadowed(), at)
    }

    fn with_inner(
        &mut self,
        label: Option<syn::Lifetime>,
        is_loop: bool,
        f: impl FnOnce(&mut Self),
    ) {
        self.inner.push(Inner { label, is_loop });
        f(self);
        self.inner.pop();
    }
}

impl VisitMut for Rewriter<'_> {
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        match e {
            // Their `?`, `return` and `break` are their own.
            Expr::Closure(_) | Expr::Async(_) => {}
            Expr::Loop(l) => {
                let label = l.label.as_ref().map(|l| l.name.clone());
                self.with_inner(label, true, |r| visit_mut::visit_expr_loop_mut(r, l));
            }
            Expr::ForLoop(f) => {
                let label = f.label.as_ref().map(|l| l.name.clone());
                self.visit_expr_mut(&mut f.expr);
                self.with_inner(label, true, |r| {
                    r.bound.push(HashSet::new());
                    r.bind(&f.pat);
                    r.visit_block_mut(&mut f.body);
                    r.bound.pop();
                });
            }
            Expr::If(i) => {
                self.bound.push(HashSet::new());
                self.visit_expr_mut(&mut i.cond);
                self.visit_block_mut(&mut i.then_branch);
                self.bound.pop();
                if let Some((_, els)) = &mut i.else_branch {
                    self.visit_expr_mut(els);
                }
            }
            Expr::While(w) => {
                let label = w.label.as_ref().map(|l| l.name.clone());
                self.with_inner(label, true, |r| {
                    r.bound.push(HashSet::new());
                    r.visit_expr_mut(&mut w.cond);
                    r.visit_block_mut(&mut w.body);
                    r.bound.pop();
                });
            }
            Expr::Let(l) => {
                self.visit_expr_mut(&mut l.expr);
                self.bind(&l.pat);
            }
            Expr::Block(b) if b.label.is_some() => {
                let label = b.label.as_ref().map(|l| l.name.clone());
                self.with_inner(label, false, |r| visit_mut::visit_expr_block_mut(r, b));
            }
            Expr::Try(t) => {
                self.visit_expr_mut(&mut t.expr);
                let inner = &t.expr;
                let span = t.question_token.span();
                let ok = Ident::new("__sf_ok", Span::mixed_site());
                let err = Ident::new("__sf_err", Span::mixed_site());
                let fail = complete(
                    quote_spanned!(span=> ::core::result::Result::Err(::core::convert::From::from(#err))),
                    span,
                );
                *e = Expr::Verbatim(quote_spanned! {span=>
                    match #inner {
                        ::core::result::Result::Ok(#ok) => #ok,
                        ::core::result::Result::Err(#err) => #fail,
                    }
                });
            }
            Expr::Return(r) => {
                let span = r.return_token.span();
                let value = match &mut r.expr {
                    Some(v) => {
                        self.visit_expr_mut(v);
                        quote!(#v)
                    }
                    None => quote_spanned!(span=> ()),
                };
                *e = Expr::Verbatim(complete(value, span));
            }
            Expr::Break(b) => {
                if let Some(v) = &mut b.expr {
                    self.visit_expr_mut(v);
                }
                let target = resolve(b.label.as_ref(), &self.inner, self.frames).cloned();
                let Some(frame) = target else {
                    if !self.inner.iter().any(|i| i.is_loop) && b.label.is_none() {
                        *e = outside_loop(b.break_token.span(), "break");
                    }
                    return;
                };
                let span = b.break_token.span();
                let value = b.expr.as_ref().map(|v| quote!(#v));
                *e = Expr::Verbatim(match (frame.tail, value) {
                    (Tail::Return, v) => {
                        complete(v.unwrap_or_else(|| quote_spanned!(span=> ())), span)
                    }
                    (Tail::Assign(var), Some(v)) => self.jump(frame.brk, Some((var, v)), span),
                    (Tail::Assign(var), None) => {
                        self.jump(frame.brk, Some((var, quote_spanned!(span=> ()))), span)
                    }
                    (Tail::Discard, Some(v)) => {
                        let jump = self.jump(frame.brk, None, span);
                        quote_spanned!(span=> { #v; #jump })
                    }
                    (Tail::Discard, None) => self.jump(frame.brk, None, span),
                });
            }
            Expr::Continue(c) => match resolve(c.label.as_ref(), &self.inner, self.frames) {
                Some(frame) => {
                    let span = c.continue_token.span();
                    *e = Expr::Verbatim(self.jump(frame.cont, None, span));
                }
                None => {
                    if !self.inner.iter().any(|i| i.is_loop) && c.label.is_none() {
                        *e = outside_loop(c.continue_token.span(), "continue");
                    }
                }
            },
            _ => visit_mut::visit_expr_mut(self, e),
        }
    }

    fn visit_block_mut(&mut self, b: &mut syn::Block) {
        self.bound.push(HashSet::new());
        visit_mut::visit_block_mut(self, b);
        self.bound.pop();
    }

    fn visit_local_mut(&mut self, l: &mut syn::Local) {
        if let Some(init) = &mut l.init {
            self.visit_expr_mut(&mut init.expr);
            if let Some((_, d)) = &mut init.diverge {
                self.visit_expr_mut(d);
            }
        }
        // Bindings of a `let` at the top of a block piece are workflow
        // locals, declared by the lowering; only nested ones shadow.
        if !self.bound.is_empty() {
            self.bind(&l.pat);
        }
    }

    fn visit_arm_mut(&mut self, arm: &mut syn::Arm) {
        self.bound.push(HashSet::new());
        self.bind(&arm.pat);
        if let Some((_, g)) = &mut arm.guard {
            self.visit_expr_mut(g);
        }
        self.visit_expr_mut(&mut arm.body);
        self.bound.pop();
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}

fn outside_loop(span: Span, what: &str) -> Expr {
    let msg = format!("`{what}` outside of a loop");
    Expr::Verbatim(quote_spanned!(span=> ::core::compile_error!(#msg)))
}
