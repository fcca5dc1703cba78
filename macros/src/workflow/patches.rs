//! The patch names a workflow's code knows: every `ctx.patched("name")`.

use syn::visit::Visit;
use syn::{Block, Expr, ExprLit, ExprMethodCall, Ident, Lit};

use crate::errors::Errors;

/// Collects the literal names passed to `ctx.patched(..)` in `body`, in
/// order of first use; a name that is not a string literal is an error
/// (the names are recorded in every run the code starts, so they must be
/// known at compile time).
pub(crate) fn collect(errors: &Errors, body: &Block, ctx: Option<&Ident>) -> Vec<String> {
    let Some(ctx) = ctx else {
        return Vec::new();
    };
    let mut finder = Finder {
        errors,
        ctx,
        names: Vec::new(),
    };
    finder.visit_block(body);
    finder.names
}

struct Finder<'a> {
    errors: &'a Errors,
    ctx: &'a Ident,
    names: Vec<String>,
}

impl<'ast> Visit<'ast> for Finder<'_> {
    fn visit_expr_method_call(&mut self, m: &'ast ExprMethodCall) {
        let on_ctx = matches!(&*m.receiver, Expr::Path(p) if p.path.is_ident(self.ctx));
        if on_ctx && m.method == "patched" {
            match m.args.first() {
                Some(Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                })) if m.args.len() == 1 => {
                    let name = s.value();
                    if name.is_empty() {
                        self.errors.spanned(s, "a patch name cannot be empty");
                    } else if !self.names.contains(&name) {
                        self.names.push(name);
                    }
                }
                Some(arg) if m.args.len() == 1 => self.errors.spanned(
                    arg,
                    "`ctx.patched` takes the patch name as a string literal, as in \
                     `ctx.patched(\"send-receipt\")`: the names are recorded in each run the code starts",
                ),
                _ => self.errors.spanned(
                    &m.method,
                    "`ctx.patched` takes one argument: the patch name, as a string literal",
                ),
            }
        }
        syn::visit::visit_expr_method_call(self, m);
    }
}
