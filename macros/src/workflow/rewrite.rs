//! Rewriting the user's statements for the step function.
//!
//! Inside a block, `return v` completes the workflow, `e?` completes it with
//! the error, and `break`/`continue` aimed at a split loop jump to another
//! block. Closures, async blocks and nested items keep their own meaning.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, Ident};

use super::cfg::{BlockId, LoopFrame, Tail, VarId};
use super::jumps::{Inner, resolve};

/// Emits the tokens of a jump: stores what the target needs, then goes there.
/// `assign` is a variable the jump assigns first (a valued `break`).
pub(crate) trait Jumps {
    fn jump(&self, target: BlockId, assign: Option<(VarId, TokenStream)>) -> TokenStream;
}

/// Rewrites an expression in place.
pub(crate) fn rewrite_expr(e: &mut Expr, frames: &[LoopFrame], jumps: &dyn Jumps) {
    let mut r = Rewriter {
        frames,
        jumps,
        inner: Vec::new(),
    };
    r.visit_expr_mut(e);
}

/// Rewrites a statement in place.
pub(crate) fn rewrite_stmt(s: &mut syn::Stmt, frames: &[LoopFrame], jumps: &dyn Jumps) {
    let mut r = Rewriter {
        frames,
        jumps,
        inner: Vec::new(),
    };
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
}

impl Rewriter<'_> {
    fn with_inner(&mut self, label: Option<syn::Lifetime>, is_loop: bool, f: impl FnOnce(&mut Self)) {
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
            Expr::While(w) => {
                let label = w.label.as_ref().map(|l| l.name.clone());
                self.with_inner(label, true, |r| visit_mut::visit_expr_while_mut(r, w));
            }
            Expr::ForLoop(f) => {
                let label = f.label.as_ref().map(|l| l.name.clone());
                self.with_inner(label, true, |r| visit_mut::visit_expr_for_loop_mut(r, f));
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
                    (Tail::Return, v) => complete(v.unwrap_or_else(|| quote_spanned!(span=> ())), span),
                    (Tail::Assign(var), Some(v)) => self.jumps.jump(frame.brk, Some((var, v))),
                    (Tail::Assign(var), None) => {
                        self.jumps.jump(frame.brk, Some((var, quote_spanned!(span=> ()))))
                    }
                    (Tail::Discard, Some(v)) => {
                        let jump = self.jumps.jump(frame.brk, None);
                        quote_spanned!(span=> { #v; #jump })
                    }
                    (Tail::Discard, None) => self.jumps.jump(frame.brk, None),
                });
            }
            Expr::Continue(c) => {
                match resolve(c.label.as_ref(), &self.inner, self.frames) {
                    Some(frame) => *e = Expr::Verbatim(self.jumps.jump(frame.cont, None)),
                    None => {
                        if !self.inner.iter().any(|i| i.is_loop) && c.label.is_none() {
                            *e = outside_loop(c.continue_token.span(), "continue");
                        }
                    }
                }
            }
            _ => visit_mut::visit_expr_mut(self, e),
        }
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}

fn outside_loop(span: Span, what: &str) -> Expr {
    let msg = format!("`{what}` outside of a loop");
    Expr::Verbatim(quote_spanned!(span=> ::core::compile_error!(#msg)))
}
