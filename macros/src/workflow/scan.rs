//! Whole-body scans: where awaits are, and code a workflow must not contain.

use proc_macro2::{TokenStream, TokenTree};
use syn::spanned::Spanned;
use syn::visit::{self, Visit};
use syn::{Block, Expr, ExprAwait, Path, Stmt};

use super::resolve::{Resolution, Resolver, Via};
use crate::errors::Errors;

/// Whether the expression awaits anything (outside closures, async blocks
/// and nested items, which are checked separately).
pub(crate) fn expr_has_await(expr: &Expr) -> bool {
    let mut f = AwaitFinder { found: false };
    f.visit_expr(expr);
    f.found
}

/// Whether the statement awaits anything.
pub(crate) fn stmt_has_await(stmt: &Stmt) -> bool {
    let mut f = AwaitFinder { found: false };
    f.visit_stmt(stmt);
    f.found
}

/// Whether the block awaits anything.
pub(crate) fn block_has_await(block: &Block) -> bool {
    let mut f = AwaitFinder { found: false };
    f.visit_block(block);
    f.found
}

struct AwaitFinder {
    found: bool,
}

impl<'ast> Visit<'ast> for AwaitFinder {
    fn visit_expr_await(&mut self, _: &'ast ExprAwait) {
        self.found = true;
    }
    fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
    fn visit_expr_async(&mut self, _: &'ast syn::ExprAsync) {}
    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

/// Reports awaits where a workflow cannot suspend (closures, async blocks,
/// macro arguments) and calls that make a workflow depend on something other
/// than its checkpoint (the wall clock, randomness, spawned tasks, sleeps).
///
/// Paths are checked as written and, when `resolver` is given, as what the
/// `use` items in scope make of them (`spawn` imported from `tokio`).
pub(crate) fn check_body(errors: &Errors, body: &Block, resolver: Option<&Resolver>) {
    let mut locals = Locals::default();
    locals.visit_block(body);
    let mut c = BodyChecker {
        errors,
        closure: None,
        resolver,
        locals: locals.0,
    };
    c.visit_block(body);
}

/// The names the body binds with patterns: a local `sleep` is no import.
#[derive(Default)]
struct Locals(std::collections::HashSet<String>);

impl<'ast> Visit<'ast> for Locals {
    fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
        self.0.insert(p.ident.to_string());
        visit::visit_pat_ident(self, p);
    }
    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

struct BodyChecker<'a> {
    errors: &'a Errors,
    /// What we are inside of, when it is a closure or an async block.
    closure: Option<&'static str>,
    resolver: Option<&'a Resolver>,
    locals: std::collections::HashSet<String>,
}

impl<'ast> Visit<'ast> for BodyChecker<'_> {
    fn visit_expr_await(&mut self, e: &'ast ExprAwait) {
        if let Some(inside) = self.closure {
            self.errors.at(
                e.await_token.span(),
                format!(
                    "await must not be used inside {inside} in a workflow: only the workflow's own body can suspend; \
                     move the await out of it"
                ),
            );
        }
        visit::visit_expr_await(self, e);
    }

    fn visit_expr_closure(&mut self, e: &'ast syn::ExprClosure) {
        let outer = self.closure.replace("a closure");
        visit::visit_expr_closure(self, e);
        self.closure = outer;
    }

    fn visit_expr_async(&mut self, e: &'ast syn::ExprAsync) {
        let outer = self.closure.replace("an async block");
        visit::visit_expr_async(self, e);
        self.closure = outer;
    }

    fn visit_item(&mut self, _: &'ast syn::Item) {}

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        if let Some(span) = await_in_tokens(m.tokens.clone()) {
            self.errors.at(
                span,
                "await must not be used inside a macro call in a workflow: bind the awaited value with `let` first",
            );
        }
        check_path(self.errors, &m.path);
        visit::visit_macro(self, m);
    }

    fn visit_expr_path(&mut self, e: &'ast syn::ExprPath) {
        if !check_path(self.errors, &e.path) {
            self.check_resolved(&e.path);
        }
        visit::visit_expr_path(self, e);
    }
}

fn await_in_tokens(tokens: TokenStream) -> Option<proc_macro2::Span> {
    let mut prev_dot = false;
    for tt in tokens {
        match &tt {
            TokenTree::Ident(id) if prev_dot && id == "await" => return Some(id.span()),
            TokenTree::Group(g) => {
                if let Some(s) = await_in_tokens(g.stream()) {
                    return Some(s);
                }
            }
            _ => {}
        }
        prev_dot = matches!(&tt, TokenTree::Punct(p) if p.as_char() == '.');
    }
    None
}

/// A banned call: the path's last segments, and what to use instead.
struct Banned {
    tail: &'static [&'static str],
    /// When set, the path must start with this segment.
    head: Option<&'static str>,
    why: &'static str,
}

const BANNED: &[Banned] = &[
    Banned {
        tail: &["SystemTime", "now"],
        head: None,
        why: "it reads the wall clock; use `ctx.now()`, which follows the runtime's clock",
    },
    Banned {
        tail: &["Instant", "now"],
        head: None,
        why: "it reads the clock; use `ctx.now()`, which follows the runtime's clock",
    },
    Banned {
        tail: &["Utc", "now"],
        head: None,
        why: "it reads the wall clock; use `ctx.now()`",
    },
    Banned {
        tail: &["Local", "now"],
        head: None,
        why: "it reads the wall clock; use `ctx.now()`",
    },
    Banned {
        tail: &["OffsetDateTime", "now_utc"],
        head: None,
        why: "it reads the wall clock; use `ctx.now()`",
    },
    Banned {
        tail: &["thread_rng"],
        head: None,
        why: "it draws random numbers that a re-run transition would not draw again; use `ctx.random_u64()`",
    },
    Banned {
        tail: &["random"],
        head: Some("rand"),
        why: "it draws random numbers that a re-run transition would not draw again; use `ctx.random_u64()`",
    },
    Banned {
        tail: &["rng"],
        head: Some("rand"),
        why: "it draws random numbers that a re-run transition would not draw again; use `ctx.random_u64()`",
    },
    Banned {
        tail: &["OsRng"],
        head: None,
        why: "it draws random numbers that a re-run transition would not draw again; use `ctx.random_u64()`",
    },
    Banned {
        tail: &["Uuid", "new_v4"],
        head: None,
        why: "it draws a random id that a re-run transition would not draw again; derive ids from `ctx.workflow_id()` and `ctx.random_u64()`",
    },
    Banned {
        tail: &["spawn"],
        head: Some("tokio"),
        why: "a spawned task is not checkpointed and dies with the worker; call an activity instead",
    },
    Banned {
        tail: &["spawn_blocking"],
        head: Some("tokio"),
        why: "a spawned task is not checkpointed and dies with the worker; call an activity instead",
    },
    Banned {
        tail: &["thread", "spawn"],
        head: None,
        why: "a spawned thread is not checkpointed and dies with the worker; call an activity instead",
    },
    Banned {
        tail: &["thread", "sleep"],
        head: None,
        why: "it blocks the worker and is lost on a crash; a durable timer is the only way a workflow waits",
    },
    Banned {
        tail: &["time", "sleep"],
        head: Some("tokio"),
        why: "it is lost on a crash; a durable timer is the only way a workflow waits",
    },
    Banned {
        tail: &["time", "sleep"],
        head: Some("std"),
        why: "it blocks the worker and is lost on a crash; a durable timer is the only way a workflow waits",
    },
];

/// The banned call `segs` names, if any.
fn banned(segs: &[String]) -> Option<&'static Banned> {
    BANNED.iter().find(|b| {
        if segs.len() < b.tail.len() {
            return false;
        }
        let tail_ok = segs[segs.len() - b.tail.len()..]
            .iter()
            .zip(b.tail)
            .all(|(s, t)| s == t);
        let head_ok = b.head.is_none_or(|h| segs.first().is_some_and(|f| f == h));
        tail_ok && head_ok
    })
}

fn segments(path: &Path) -> Vec<String> {
    path.segments.iter().map(|s| s.ident.to_string()).collect()
}

/// Reports `path` if it names a banned call as written; whether it did.
fn check_path(errors: &Errors, path: &Path) -> bool {
    let segs = segments(path);
    let Some(b) = banned(&segs) else {
        return false;
    };
    let shown = segs.join("::");
    errors.spanned(
        path,
        format!("`{shown}` is not allowed in a workflow: {}", b.why),
    );
    true
}

impl BodyChecker<'_> {
    /// Reports `path` if what the imports in scope make of it is banned.
    fn check_resolved(&self, path: &Path) {
        let Some(resolver) = self.resolver else {
            return;
        };
        let segs = segments(path);
        if path.leading_colon.is_some() || (segs.len() == 1 && self.locals.contains(&segs[0])) {
            return;
        }
        for r in resolver.resolve(&segs) {
            if let Some(b) = banned(&r.path) {
                self.errors
                    .spanned(path, resolved_message(&segs, &r, b.why));
                return;
            }
        }
    }
}

/// "`Clock` is `std::time::Instant` (imported at line 3): ..."
fn resolved_message(written: &[String], r: &Resolution, why: &str) -> String {
    let full = r.path.join("::");
    let head_len = r.path.len().saturating_sub(written.len() - 1);
    let head = r.path[..head_len].join("::");
    let name = &written[0];
    let origin = match &r.via {
        Via::Import { line } => format!("`{name}` is `{head}` (imported at line {line})"),
        Via::Glob { glob, line } => {
            format!("`{name}` is `{head}` (imported by `use {glob}::*` at line {line})")
        }
        Via::Path => format!("`{}` is `{full}`", written.join("::")),
    };
    format!("{origin}: `{full}` is not allowed in a workflow: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn errors_of(body: Block) -> usize {
        let errors = Errors::new();
        check_body(&errors, &body, None);
        match errors.finish() {
            Ok(()) => 0,
            Err(e) => e.into_iter().count(),
        }
    }

    #[test]
    fn flags_banned_calls_and_misplaced_awaits() {
        assert_eq!(
            errors_of(parse_quote!({
                let t = std::time::SystemTime::now();
            })),
            1
        );
        assert_eq!(
            errors_of(parse_quote!({
                let r: u8 = rand::random();
            })),
            1
        );
        assert_eq!(
            errors_of(parse_quote!({
                tokio::spawn(async {});
            })),
            1
        );
        assert_eq!(
            errors_of(parse_quote!({
                let f = || a().await;
            })),
            1
        );
        assert_eq!(
            errors_of(parse_quote!({
                println!("{}", a().await);
            })),
            1
        );
        assert_eq!(
            errors_of(parse_quote!({
                let x = a().await?;
                let r = ctx.random_u64();
            })),
            0
        );
        assert_eq!(
            errors_of(parse_quote!({
                let x = random();
            })),
            0
        );
    }

    #[test]
    fn finds_awaits_outside_closures_only() {
        assert!(expr_has_await(&parse_quote!(f(a().await))));
        assert!(!expr_has_await(&parse_quote!(|| a().await)));
        assert!(!expr_has_await(&parse_quote!(async { a().await })));
    }
}
