//! Hoisting: moving an await that stands inside a larger expression to
//! statement position, bound to a temporary.
//!
//! `ship(id, charge(id).await?)` becomes `let t = charge(id).await?;
//! ship(id, t)`. That is only faithful when nothing with an effect is
//! evaluated before the await in the original order, so hoisting walks the
//! expression in evaluation order and refuses when it passes a call or a
//! macro before reaching the await. An `if`, `match`, block or loop that
//! awaits inside (not in its condition) is hoisted whole, as a temporary
//! assigned by control flow.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{BinOp, Expr, Ident};

use super::scan::expr_has_await;

/// Finds, in evaluation order, the first await (or control-flow expression
/// containing one) in `expr`, replaces it by `temp`, and returns it.
/// `Ok(None)` when there is no await; an error when the first await cannot be
/// moved ahead of what precedes it.
pub(crate) fn extract_first(expr: &mut Expr, temp: &Ident) -> syn::Result<Option<Expr>> {
    let mut walk = Walk {
        temp,
        effect_before: None,
    };
    walk.expr(expr)
}

/// Whether `expr` is an await (or `await?`) whose operand awaits nothing.
pub(crate) fn is_direct_await(expr: &Expr) -> bool {
    match expr {
        Expr::Await(a) => !expr_has_await(&a.base),
        Expr::Try(t) => matches!(&*t.expr, Expr::Await(a) if !expr_has_await(&a.base)),
        Expr::Paren(p) => is_direct_await(&p.expr),
        _ => false,
    }
}

struct Walk<'a> {
    temp: &'a Ident,
    /// The first expression with a possible effect seen so far.
    effect_before: Option<Span>,
}

impl Walk<'_> {
    fn take(&self, slot: &mut Expr) -> syn::Result<Option<Expr>> {
        if let Some(span) = self.effect_before {
            let mut err = syn::Error::new(
                first_await_span(slot).unwrap_or_else(|| slot.span()),
                "await must not be used in this position: it would run before code that comes first; \
                 bind the awaited value with `let` on a line of its own",
            );
            err.combine(syn::Error::new(
                span,
                "this runs before the await in the written order",
            ));
            return Err(err);
        }
        let temp = self.temp.clone();
        let replacement: Expr = syn::parse_quote_spanned!(slot.span()=> #temp);
        Ok(Some(std::mem::replace(slot, replacement)))
    }

    fn each<'e>(
        &mut self,
        exprs: impl IntoIterator<Item = &'e mut Expr>,
    ) -> syn::Result<Option<Expr>> {
        for e in exprs {
            if let Some(found) = self.expr(e)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    fn expr(&mut self, e: &mut Expr) -> syn::Result<Option<Expr>> {
        if !expr_has_await(e) {
            if self.effect_before.is_none() && !is_pure(e) {
                self.effect_before = Some(e.span());
            }
            return Ok(None);
        }
        match e {
            Expr::Await(a) => {
                if expr_has_await(&a.base) {
                    return self.expr(&mut a.base);
                }
                self.take(e)
            }
            Expr::Try(t) if matches!(&*t.expr, Expr::Await(_)) => {
                if let Expr::Await(a) = &mut *t.expr
                    && expr_has_await(&a.base)
                {
                    return self.expr(&mut a.base);
                }
                self.take(e)
            }
            Expr::If(i) => {
                if expr_has_await(&i.cond) {
                    return self.expr(&mut i.cond);
                }
                self.take(e)
            }
            Expr::Match(m) => {
                if expr_has_await(&m.expr) {
                    return self.expr(&mut m.expr);
                }
                self.take(e)
            }
            Expr::Block(_) | Expr::Loop(_) | Expr::While(_) | Expr::ForLoop(_) => self.take(e),
            Expr::Binary(b) => {
                if matches!(b.op, BinOp::And(_) | BinOp::Or(_)) {
                    if let Some(found) = self.expr(&mut b.left)? {
                        return Ok(Some(found));
                    }
                    return Err(syn::Error::new(
                        first_await_span(&b.right).unwrap_or_else(|| b.right.span()),
                        "await must not be used on the right of `&&` or `||` in a workflow: it runs only on some paths; \
                         use an `if` with the await inside instead",
                    ));
                }
                self.each([&mut *b.left, &mut *b.right])
            }
            Expr::Call(c) => {
                if let Some(found) = self.expr(&mut c.func)? {
                    return Ok(Some(found));
                }
                self.each(c.args.iter_mut())
            }
            Expr::MethodCall(m) => {
                if let Some(found) = self.expr(&mut m.receiver)? {
                    return Ok(Some(found));
                }
                self.each(m.args.iter_mut())
            }
            Expr::Try(t) => self.expr(&mut t.expr),
            Expr::Unary(u) => self.expr(&mut u.expr),
            Expr::Paren(p) => self.expr(&mut p.expr),
            Expr::Group(g) => self.expr(&mut g.expr),
            Expr::Cast(c) => self.expr(&mut c.expr),
            Expr::Reference(r) => self.expr(&mut r.expr),
            Expr::Field(f) => self.expr(&mut f.base),
            Expr::Index(i) => self.each([&mut *i.expr, &mut *i.index]),
            Expr::Tuple(t) => self.each(t.elems.iter_mut()),
            Expr::Array(a) => self.each(a.elems.iter_mut()),
            Expr::Repeat(r) => self.expr(&mut r.expr),
            Expr::Struct(s) => {
                if let Some(found) = self.each(s.fields.iter_mut().map(|f| &mut f.expr))? {
                    return Ok(Some(found));
                }
                match &mut s.rest {
                    Some(rest) => self.expr(rest),
                    None => Ok(None),
                }
            }
            Expr::Range(r) => {
                let parts = r.start.iter_mut().chain(r.end.iter_mut()).map(|b| &mut **b);
                self.each(parts)
            }
            Expr::Return(r) => match &mut r.expr {
                Some(inner) => self.expr(inner),
                None => Ok(None),
            },
            Expr::Break(b) => match &mut b.expr {
                Some(inner) => self.expr(inner),
                None => Ok(None),
            },
            // The assigned value is evaluated before the place.
            Expr::Assign(a) => self.each([&mut *a.right, &mut *a.left]),
            Expr::Let(l) => self.expr(&mut l.expr),
            other => Err(syn::Error::new(
                first_await_span(other).unwrap_or_else(|| other.span()),
                "await must not be used in this position in a workflow; bind the awaited value with `let` first",
            )),
        }
    }
}

/// Whether evaluating `e` can have an effect that an await moved ahead of it
/// would reorder: literals and reads of locals cannot; calls and macros may.
fn is_pure(e: &Expr) -> bool {
    match e {
        Expr::Lit(_) | Expr::Path(_) => true,
        Expr::Paren(p) => is_pure(&p.expr),
        Expr::Group(g) => is_pure(&g.expr),
        Expr::Reference(r) => is_pure(&r.expr),
        Expr::Field(f) => is_pure(&f.base),
        Expr::Unary(u) => is_pure(&u.expr),
        Expr::Cast(c) => is_pure(&c.expr),
        Expr::Index(i) => is_pure(&i.expr) && is_pure(&i.index),
        Expr::Binary(b) => is_pure(&b.left) && is_pure(&b.right),
        Expr::Tuple(t) => t.elems.iter().all(is_pure),
        Expr::Array(a) => a.elems.iter().all(is_pure),
        Expr::Struct(s) => {
            s.fields.iter().all(|f| is_pure(&f.expr)) && s.rest.as_deref().is_none_or(is_pure)
        }
        Expr::Range(r) => {
            r.start.as_deref().is_none_or(is_pure) && r.end.as_deref().is_none_or(is_pure)
        }
        _ => false,
    }
}

/// The span of the first `.await` in `e`, for errors.
pub(crate) fn first_await_span(e: &Expr) -> Option<Span> {
    use syn::visit::Visit;
    struct F(Option<Span>);
    impl<'ast> Visit<'ast> for F {
        fn visit_expr_await(&mut self, a: &'ast syn::ExprAwait) {
            if self.0.is_none() {
                self.0 = Some(a.await_token.span());
            }
        }
    }
    let mut f = F(None);
    f.visit_expr(e);
    f.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::ToTokens;
    use syn::parse_quote;

    fn temp() -> Ident {
        Ident::new("t", Span::call_site())
    }

    fn hoist(mut e: Expr) -> (String, String) {
        let found = extract_first(&mut e, &temp())
            .expect("hoists")
            .expect("finds an await");
        (
            found.to_token_stream().to_string(),
            e.to_token_stream().to_string(),
        )
    }

    #[test]
    fn hoists_the_first_await_in_evaluation_order() {
        let (found, rest) = hoist(parse_quote!(ship(id, charge(id).await?)));
        assert_eq!(found, "charge (id) . await ?");
        assert_eq!(rest, "ship (id , t)");
        let (found, rest) = hoist(parse_quote!(a().await? + b().await?));
        assert_eq!(found, "a () . await ?");
        assert_eq!(rest, "t + b () . await ?");
    }

    #[test]
    fn hoists_awaits_in_arguments_of_an_await_first() {
        let (found, rest) = hoist(parse_quote!(ship(charge(id).await?).await?));
        assert_eq!(found, "charge (id) . await ?");
        assert_eq!(rest, "ship (t) . await ?");
    }

    #[test]
    fn hoists_conditions_but_not_branches() {
        let (found, _) = hoist(parse_quote!(if check(id).await? { 1 } else { 2 }));
        assert_eq!(found, "check (id) . await ?");
        let (found, rest) = hoist(parse_quote!(f(if c { a().await? } else { 0 })));
        assert!(found.starts_with("if c"));
        assert_eq!(rest, "f (t)");
    }

    #[test]
    fn refuses_to_reorder_effects_or_short_circuits() {
        let mut e: Expr = parse_quote!(log(compute(x), a().await?));
        assert!(extract_first(&mut e, &temp()).is_err());
        let mut e: Expr = parse_quote!(ready && a().await?);
        assert!(extract_first(&mut e, &temp()).is_err());
        let mut e: Expr = parse_quote!(v.push(a().await?));
        assert!(extract_first(&mut e, &temp()).is_ok());
    }

    #[test]
    fn direct_awaits() {
        assert!(is_direct_await(&parse_quote!(a(x).await?)));
        assert!(is_direct_await(&parse_quote!(a(x).await)));
        assert!(!is_direct_await(&parse_quote!(a(b().await).await)));
        assert!(!is_direct_await(&parse_quote!(a(x).await?.len())));
    }
}
