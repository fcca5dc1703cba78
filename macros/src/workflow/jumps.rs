//! `break` and `continue` that leave a statement for a split loop.

use syn::visit::{self, Visit};
use syn::{Lifetime, Stmt};

use super::cfg::{BlockId, LoopFrame, Tail, VarId};

/// A loop or labeled block written inside the statement being examined.
#[derive(Clone)]
pub(crate) struct Inner {
    pub(crate) label: Option<Lifetime>,
    /// A loop (catches a bare `break`), not a labeled block.
    pub(crate) is_loop: bool,
}

/// The split loop a `break`/`continue` targets, if it targets one: not when
/// it belongs to a loop or labeled block written inside the same statement
/// (`inner`, innermost last).
pub(crate) fn resolve<'f>(
    label: Option<&Lifetime>,
    inner: &[Inner],
    frames: &'f [LoopFrame],
) -> Option<&'f LoopFrame> {
    match label {
        Some(l) => {
            if inner
                .iter()
                .any(|i| i.label.as_ref().is_some_and(|il| il.ident == l.ident))
            {
                return None;
            }
            frames
                .iter()
                .rev()
                .find(|f| f.label.as_ref().is_some_and(|fl| fl.ident == l.ident))
        }
        None => {
            if inner.iter().any(|i| i.is_loop) {
                return None;
            }
            frames.last()
        }
    }
}

/// Where the `break`s and `continue`s of a statement go among the split
/// loops, each with the variable a valued `break` assigns.
pub(crate) fn jumps_of(stmt: &Stmt, frames: &[LoopFrame]) -> Vec<(BlockId, Option<VarId>)> {
    let mut f = Finder {
        frames,
        inner: Vec::new(),
        closures: 0,
        targets: Vec::new(),
    };
    f.visit_stmt(stmt);
    f.targets
}

struct Finder<'a> {
    frames: &'a [LoopFrame],
    inner: Vec<Inner>,
    closures: usize,
    targets: Vec<(BlockId, Option<VarId>)>,
}

impl<'ast> Visit<'ast> for Finder<'_> {
    fn visit_expr_break(&mut self, e: &'ast syn::ExprBreak) {
        if self.closures == 0
            && let Some(f) = resolve(e.label.as_ref(), &self.inner, self.frames)
        {
            let assigned = match f.tail {
                Tail::Assign(v) => Some(v),
                _ => None,
            };
            self.targets.push((f.brk, assigned));
        }
        visit::visit_expr_break(self, e);
    }

    fn visit_expr_continue(&mut self, e: &'ast syn::ExprContinue) {
        if self.closures == 0
            && let Some(f) = resolve(e.label.as_ref(), &self.inner, self.frames)
        {
            self.targets.push((f.cont, None));
        }
    }

    fn visit_expr_loop(&mut self, e: &'ast syn::ExprLoop) {
        self.inner.push(Inner {
            label: e.label.as_ref().map(|l| l.name.clone()),
            is_loop: true,
        });
        visit::visit_expr_loop(self, e);
        self.inner.pop();
    }

    fn visit_expr_while(&mut self, e: &'ast syn::ExprWhile) {
        self.inner.push(Inner {
            label: e.label.as_ref().map(|l| l.name.clone()),
            is_loop: true,
        });
        visit::visit_expr_while(self, e);
        self.inner.pop();
    }

    fn visit_expr_for_loop(&mut self, e: &'ast syn::ExprForLoop) {
        self.inner.push(Inner {
            label: e.label.as_ref().map(|l| l.name.clone()),
            is_loop: true,
        });
        visit::visit_expr_for_loop(self, e);
        self.inner.pop();
    }

    fn visit_expr_block(&mut self, e: &'ast syn::ExprBlock) {
        // A labeled block catches `break 'label` only, never a bare `break`.
        match &e.label {
            Some(l) => {
                self.inner.push(Inner {
                    label: Some(l.name.clone()),
                    is_loop: false,
                });
                visit::visit_expr_block(self, e);
                self.inner.pop();
            }
            None => visit::visit_expr_block(self, e),
        }
    }

    fn visit_expr_closure(&mut self, e: &'ast syn::ExprClosure) {
        self.closures += 1;
        visit::visit_expr_closure(self, e);
        self.closures -= 1;
    }

    fn visit_expr_async(&mut self, e: &'ast syn::ExprAsync) {
        self.closures += 1;
        visit::visit_expr_async(self, e);
        self.closures -= 1;
    }

    fn visit_item(&mut self, _: &'ast syn::Item) {}
}
