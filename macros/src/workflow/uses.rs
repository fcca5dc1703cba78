//! Which workflow locals a piece of code reads and writes.
//!
//! Names are resolved against the lowering's scopes, minding names bound
//! inside the code itself (closure parameters, inner `let`s, match arms), so
//! that a shadowing inner binding is not taken for the outer local.
//! Identifiers inside macro invocations count as reads, and so do `{name}`
//! captures in the format strings of the formatting macros.

use std::collections::{BTreeSet, HashSet};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::{self, Visit};
use syn::{Expr, Ident, Pat, Stmt, Type};

use super::cfg::VarId;

/// The lowering's scopes: name to variable, innermost last.
#[derive(Default)]
pub(crate) struct Scopes {
    stack: Vec<Vec<(String, VarId)>>,
}

impl Scopes {
    pub(crate) fn push(&mut self) {
        self.stack.push(Vec::new());
    }

    pub(crate) fn pop(&mut self) {
        self.stack.pop();
    }

    pub(crate) fn declare(&mut self, name: &Ident, var: VarId) {
        if self.stack.is_empty() {
            self.stack.push(Vec::new());
        }
        if let Some(top) = self.stack.last_mut() {
            top.push((name.to_string(), var));
        }
    }

    pub(crate) fn resolve(&self, name: &str) -> Option<VarId> {
        self.stack
            .iter()
            .rev()
            .flat_map(|s| s.iter().rev())
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }
}

/// What a piece of code does with workflow locals.
#[derive(Default, Debug)]
pub(crate) struct Access {
    pub(crate) uses: BTreeSet<VarId>,
    /// Locals assigned with `x = ..` somewhere in the code.
    pub(crate) assigns: BTreeSet<VarId>,
    /// Contains `?` outside closures.
    pub(crate) fails: bool,
    /// Contains `return` outside closures.
    pub(crate) returns: bool,
}

/// The access of an expression.
pub(crate) fn expr_access(expr: &Expr, scopes: &Scopes) -> Access {
    let mut c = Collector::new(scopes);
    c.visit_expr(expr);
    c.access
}

/// The access of a statement. For a `let`, only its initializer (and `else`
/// block) is visited; its bindings are declared by the caller.
pub(crate) fn stmt_access(stmt: &Stmt, scopes: &Scopes) -> Access {
    let mut c = Collector::new(scopes);
    match stmt {
        Stmt::Local(local) => {
            if let Some(init) = &local.init {
                c.visit_expr(&init.expr);
                if let Some((_, diverge)) = &init.diverge {
                    c.visit_expr(diverge);
                }
            }
        }
        Stmt::Item(_) => {}
        Stmt::Expr(e, _) => c.visit_expr(e),
        Stmt::Macro(m) => c.visit_macro(&m.mac),
    }
    c.access
}

/// The access of a match guard, in which the arm's own bindings (`bound`)
/// are visible and are not the workflow locals of the same names.
pub(crate) fn guard_access(guard: &Expr, scopes: &Scopes, bound: &[Ident]) -> Access {
    let mut c = Collector::new(scopes);
    c.inner.push(bound.iter().map(Ident::to_string).collect());
    c.visit_expr(guard);
    c.access
}

/// A binding introduced by a pattern.
pub(crate) struct Binding {
    pub(crate) ident: Ident,
    pub(crate) mutable: bool,
    pub(crate) ty: Option<Type>,
}

/// The bindings of a pattern, with types where the pattern states them
/// (`x: T`, or `(a, b): (A, B)`).
pub(crate) fn pattern_bindings(pat: &Pat) -> Vec<Binding> {
    pattern_bindings_of(pat, None)
}

/// The bindings of a pattern matched against a value of type `ty`, where
/// tuple types are split over tuple patterns.
pub(crate) fn pattern_bindings_of(pat: &Pat, ty: Option<&Type>) -> Vec<Binding> {
    let mut out = Vec::new();
    collect_bindings(pat, ty, &mut out);
    out
}

fn collect_bindings(pat: &Pat, ty: Option<&Type>, out: &mut Vec<Binding>) {
    match pat {
        Pat::Type(pt) => collect_bindings(&pt.pat, Some(&pt.ty), out),
        Pat::Ident(pi) => {
            if pi.subpat.is_none()
                && is_constant_like(&pi.ident)
                && pi.mutability.is_none()
                && pi.by_ref.is_none()
            {
                return;
            }
            out.push(Binding {
                ident: pi.ident.clone(),
                mutable: pi.mutability.is_some(),
                ty: ty.cloned(),
            });
            if let Some((_, sub)) = &pi.subpat {
                collect_bindings(sub, None, out);
            }
        }
        Pat::Tuple(t) => {
            let elem_types: Option<Vec<&Type>> = match ty {
                Some(Type::Tuple(tt)) if tt.elems.len() == t.elems.len() => {
                    Some(tt.elems.iter().collect())
                }
                _ => None,
            };
            for (i, p) in t.elems.iter().enumerate() {
                collect_bindings(p, elem_types.as_ref().map(|v| v[i]), out);
            }
        }
        Pat::Paren(p) => collect_bindings(&p.pat, ty, out),
        Pat::Reference(r) => collect_bindings(&r.pat, None, out),
        Pat::TupleStruct(ts) => ts.elems.iter().for_each(|p| collect_bindings(p, None, out)),
        Pat::Struct(s) => s
            .fields
            .iter()
            .for_each(|f| collect_bindings(&f.pat, None, out)),
        Pat::Slice(s) => s.elems.iter().for_each(|p| collect_bindings(p, None, out)),
        // Every alternative binds the same names.
        Pat::Or(o) => {
            if let Some(first) = o.cases.first() {
                collect_bindings(first, None, out);
            }
        }
        _ => {}
    }
}

/// `None`, `MAX`, `Red`: in a pattern, an identifier that starts with an
/// uppercase letter names a constant or a variant, not a new binding.
fn is_constant_like(ident: &Ident) -> bool {
    ident
        .to_string()
        .trim_start_matches("r#")
        .chars()
        .next()
        .is_some_and(char::is_uppercase)
}

struct Collector<'a> {
    scopes: &'a Scopes,
    /// Names bound inside the visited code, innermost last.
    inner: Vec<HashSet<String>>,
    access: Access,
    /// Inside a closure or async block: `?` and `return` are not ours.
    closures: usize,
}

impl<'a> Collector<'a> {
    fn new(scopes: &'a Scopes) -> Self {
        Collector {
            scopes,
            inner: Vec::new(),
            access: Access::default(),
            closures: 0,
        }
    }

    fn lookup(&self, name: &str) -> Option<VarId> {
        if self.inner.iter().any(|s| s.contains(name)) {
            return None;
        }
        self.scopes.resolve(name)
    }

    fn bind(&mut self, pat: &Pat) {
        let names: Vec<String> = pattern_bindings(pat)
            .into_iter()
            .map(|b| b.ident.to_string())
            .collect();
        if self.inner.is_empty() {
            self.inner.push(HashSet::new());
        }
        if let Some(top) = self.inner.last_mut() {
            top.extend(names);
        }
    }

    fn use_name(&mut self, name: &str) {
        if let Some(v) = self.lookup(name) {
            self.access.uses.insert(v);
        }
    }

    fn scan_tokens(&mut self, tokens: TokenStream, format_like: bool) {
        let mut prev: Option<TokenTree> = None;
        let mut prev2: Option<TokenTree> = None;
        let mut iter = tokens.into_iter().peekable();
        while let Some(tt) = iter.next() {
            match &tt {
                TokenTree::Group(g) => self.scan_tokens(g.stream(), format_like),
                TokenTree::Ident(id) => {
                    let after_dot =
                        matches!(&prev, Some(TokenTree::Punct(p)) if p.as_char() == '.');
                    let after_path = matches!((&prev2, &prev), (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b))) if a.as_char() == ':' && b.as_char() == ':');
                    let before_bang =
                        matches!(iter.peek(), Some(TokenTree::Punct(p)) if p.as_char() == '!');
                    if !after_dot && !after_path && !before_bang {
                        self.use_name(&id.to_string());
                    }
                }
                TokenTree::Literal(lit) if format_like => {
                    if let Ok(syn::Lit::Str(s)) = syn::parse_str::<syn::Lit>(&lit.to_string()) {
                        for name in format_captures(&s.value()) {
                            self.use_name(&name);
                        }
                    }
                }
                _ => {}
            }
            prev2 = prev.take();
            prev = Some(tt);
        }
    }
}

/// Macros whose string literals are format strings with `{name}` captures.
const FORMAT_MACROS: &[&str] = &[
    "format",
    "format_args",
    "print",
    "println",
    "eprint",
    "eprintln",
    "write",
    "writeln",
    "panic",
    "assert",
    "assert_eq",
    "assert_ne",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "unreachable",
    "todo",
    "unimplemented",
    "trace",
    "debug",
    "info",
    "warn",
    "error",
    "event",
    "anyhow",
    "bail",
    "ensure",
];

/// The `{name}` captures of a format string.
pub(crate) fn format_captures(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '{' {
            if chars.peek() == Some(&'{') {
                chars.next();
                continue;
            }
            let mut name = String::new();
            while let Some(&n) = chars.peek() {
                if n == '}' || n == ':' {
                    break;
                }
                name.push(n);
                chars.next();
            }
            let name = name.trim();
            if name
                .chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_alphanumeric() || c == '_')
            {
                out.push(name.to_owned());
            }
        }
    }
    out
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_expr_path(&mut self, e: &'ast syn::ExprPath) {
        if e.qself.is_none()
            && let Some(id) = e.path.get_ident()
        {
            self.use_name(&id.to_string());
        }
    }

    fn visit_expr_assign(&mut self, e: &'ast syn::ExprAssign) {
        self.visit_expr(&e.right);
        if let Expr::Path(p) = &*e.left
            && let Some(v) = p
                .path
                .get_ident()
                .and_then(|id| self.lookup(&id.to_string()))
        {
            self.access.assigns.insert(v);
            return;
        }
        self.visit_expr(&e.left);
    }

    fn visit_expr_closure(&mut self, e: &'ast syn::ExprClosure) {
        self.inner.push(HashSet::new());
        for input in &e.inputs {
            self.bind(input);
        }
        self.closures += 1;
        self.visit_expr(&e.body);
        self.closures -= 1;
        self.inner.pop();
    }

    fn visit_expr_async(&mut self, e: &'ast syn::ExprAsync) {
        self.closures += 1;
        self.visit_block(&e.block);
        self.closures -= 1;
    }

    fn visit_block(&mut self, b: &'ast syn::Block) {
        self.inner.push(HashSet::new());
        visit::visit_block(self, b);
        self.inner.pop();
    }

    fn visit_local(&mut self, l: &'ast syn::Local) {
        if let Some(init) = &l.init {
            self.visit_expr(&init.expr);
            if let Some((_, diverge)) = &init.diverge {
                self.visit_expr(diverge);
            }
        }
        self.bind(&l.pat);
    }

    fn visit_arm(&mut self, arm: &'ast syn::Arm) {
        self.inner.push(HashSet::new());
        self.bind(&arm.pat);
        if let Some((_, guard)) = &arm.guard {
            self.visit_expr(guard);
        }
        self.visit_expr(&arm.body);
        self.inner.pop();
    }

    fn visit_expr_if(&mut self, e: &'ast syn::ExprIf) {
        self.inner.push(HashSet::new());
        self.visit_expr(&e.cond);
        self.visit_block(&e.then_branch);
        self.inner.pop();
        if let Some((_, els)) = &e.else_branch {
            self.visit_expr(els);
        }
    }

    fn visit_expr_while(&mut self, e: &'ast syn::ExprWhile) {
        self.inner.push(HashSet::new());
        self.visit_expr(&e.cond);
        self.visit_block(&e.body);
        self.inner.pop();
    }

    fn visit_expr_for_loop(&mut self, e: &'ast syn::ExprForLoop) {
        self.visit_expr(&e.expr);
        self.inner.push(HashSet::new());
        self.bind(&e.pat);
        self.visit_block(&e.body);
        self.inner.pop();
    }

    fn visit_expr_let(&mut self, e: &'ast syn::ExprLet) {
        self.visit_expr(&e.expr);
        self.bind(&e.pat);
    }

    fn visit_expr_try(&mut self, e: &'ast syn::ExprTry) {
        if self.closures == 0 {
            self.access.fails = true;
        }
        visit::visit_expr_try(self, e);
    }

    fn visit_expr_return(&mut self, e: &'ast syn::ExprReturn) {
        if self.closures == 0 {
            self.access.returns = true;
        }
        visit::visit_expr_return(self, e);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        let format_like = m
            .path
            .segments
            .last()
            .is_some_and(|s| FORMAT_MACROS.contains(&s.ident.to_string().as_str()));
        self.scan_tokens(m.tokens.clone(), format_like);
    }

    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn scopes(names: &[&str]) -> Scopes {
        let mut s = Scopes::default();
        s.push();
        for (i, n) in names.iter().enumerate() {
            s.declare(&Ident::new(n, proc_macro2::Span::call_site()), i);
        }
        s
    }

    #[test]
    fn inner_bindings_shadow_outer_locals() {
        let s = scopes(&["x", "y", "z"]);
        let e: Expr = parse_quote!({
            let x = 5;
            let f = |y: u32| y + x;
            f(z)
        });
        let a = expr_access(&e, &s);
        assert_eq!(a.uses.into_iter().collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn assignment_is_not_a_read() {
        let s = scopes(&["x", "y"]);
        let e: Expr = parse_quote!(x = y + 1);
        let a = expr_access(&e, &s);
        assert_eq!(a.uses.into_iter().collect::<Vec<_>>(), vec![1]);
        assert_eq!(a.assigns.into_iter().collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn macros_and_format_captures_are_reads() {
        let s = scopes(&["a", "b", "c", "d"]);
        let st: Stmt = parse_quote!(println!("{a} and {b:?} {{c}}", d.len()););
        let a = stmt_access(&st, &s);
        assert_eq!(a.uses.into_iter().collect::<Vec<_>>(), vec![0, 1, 3]);
    }

    #[test]
    fn match_arms_bind_their_patterns() {
        let s = scopes(&["v", "w"]);
        let e: Expr = parse_quote!(match w {
            Some(v) => v,
            None => 0,
        });
        let a = expr_access(&e, &s);
        assert_eq!(a.uses.into_iter().collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn try_and_return_inside_closures_are_not_ours() {
        let s = scopes(&[]);
        let e: Expr = parse_quote!(|| -> Result<(), ()> {
            f()?;
            return Ok(());
        });
        let a = expr_access(&e, &s);
        assert!(!a.fails && !a.returns);
        let e: Expr = parse_quote!(f()?);
        assert!(expr_access(&e, &s).fails);
    }

    #[test]
    fn pattern_bindings_carry_stated_types() {
        let st: Stmt = parse_quote!(let (a, mut b): (u32, String) = x;);
        let Stmt::Local(local) = st else {
            panic!("a let")
        };
        let b = pattern_bindings(&local.pat);
        assert_eq!(b.len(), 2);
        assert!(b[0].ty.is_some() && !b[0].mutable);
        assert!(b[1].mutable);
        let p: Pat = parse_quote!(Some(x));
        assert_eq!(pattern_bindings(&p).len(), 1);
        let p: Pat = parse_quote!(None);
        assert!(pattern_bindings(&p).is_empty());
    }

    #[test]
    fn format_captures_skip_escapes_and_positions() {
        assert_eq!(format_captures("{a} {0} {{b}} {c:>5} {}"), vec!["a", "c"]);
    }
}
