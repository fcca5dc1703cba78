//! Small helpers of the lowering: types of `for` items, names, attributes,
//! patterns.

use super::*;

/// The item type of well-known collections, as written (`Vec<(A, B)>` has
/// items `(A, B)`), so that tuple patterns over them get typed bindings.
pub(super) fn element_type(ty: &Type) -> Option<Type> {
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
pub(super) fn snake_case(s: &str) -> String {
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
pub(super) fn take_step_attr(
    errors: &Errors,
    attrs: &mut Vec<Attribute>,
) -> Option<(String, Span)> {
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

pub(super) fn expr_attrs_mut(e: &mut Expr) -> Option<&mut Vec<Attribute>> {
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
pub(super) fn temp_let(temp: &Ident, found: Expr) -> Local {
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

pub(super) fn strip_type(p: &Pat) -> &Pat {
    match p {
        Pat::Type(t) => &t.pat,
        other => other,
    }
}

pub(super) fn is_control_flow_with_await(e: &Expr) -> bool {
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
pub(super) fn path_var(e: &Expr, scopes: &Scopes) -> Option<VarId> {
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
pub(super) fn let_patterns(cond: &Expr) -> Vec<&Pat> {
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
