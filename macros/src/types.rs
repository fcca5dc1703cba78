//! Questions about types as written in the source.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Type, TypePath, TypeReference};

/// Whether `ty` is `&Name` (`&ActivityContext`, `&steadfast::ActivityContext`).
pub(crate) fn is_context_ref(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Reference(r) if r.mutability.is_none() && last_segment_is(&r.elem, name))
}

/// Whether `ty` is `&mut Name`.
pub(crate) fn is_context_mut_ref(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Reference(r) if r.mutability.is_some() && last_segment_is(&r.elem, name))
}

/// Whether `ty` names the type `name` anywhere.
pub(crate) fn mentions_context(ty: &Type, name: &str) -> bool {
    struct Finder<'a> {
        name: &'a str,
        found: bool,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_type_path(&mut self, tp: &'ast TypePath) {
            if tp
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident == self.name)
            {
                self.found = true;
            }
            syn::visit::visit_type_path(self, tp);
        }
    }
    let mut f = Finder { name, found: false };
    f.visit_type(ty);
    f.found
}

fn last_segment_is(ty: &Type, name: &str) -> bool {
    match ty {
        Type::Path(tp) => {
            tp.qself.is_none() && tp.path.segments.last().is_some_and(|s| s.ident == name)
        }
        Type::Paren(p) => last_segment_is(&p.elem, name),
        Type::Group(g) => last_segment_is(&g.elem, name),
        _ => false,
    }
}

/// The span of the first borrow in `ty` (a reference, a lifetime or an
/// `impl Trait`), if it has one: such values cannot be checkpointed.
pub(crate) fn borrowed_span(ty: &Type) -> Option<Span> {
    struct Finder {
        found: Option<Span>,
    }
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type_reference(&mut self, r: &'ast TypeReference) {
            if self.found.is_none() {
                self.found = Some(r.and_token.span());
            }
        }
        fn visit_lifetime(&mut self, l: &'ast syn::Lifetime) {
            if self.found.is_none() && l.ident != "static" {
                self.found = Some(l.span());
            }
        }
        fn visit_type_impl_trait(&mut self, t: &'ast syn::TypeImplTrait) {
            if self.found.is_none() {
                self.found = Some(t.impl_token.span());
            }
        }
    }
    let mut f = Finder { found: None };
    f.visit_type(ty);
    f.found
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn recognises_context_parameters() {
        assert!(is_context_ref(
            &parse_quote!(&ActivityContext),
            "ActivityContext"
        ));
        assert!(is_context_ref(
            &parse_quote!(&steadfast::ActivityContext),
            "ActivityContext"
        ));
        assert!(!is_context_ref(
            &parse_quote!(&mut ActivityContext),
            "ActivityContext"
        ));
        assert!(is_context_mut_ref(
            &parse_quote!(&mut WorkflowContext),
            "WorkflowContext"
        ));
        assert!(mentions_context(
            &parse_quote!(ActivityContext),
            "ActivityContext"
        ));
    }

    #[test]
    fn finds_borrows() {
        assert!(borrowed_span(&parse_quote!(&str)).is_some());
        assert!(borrowed_span(&parse_quote!(Cow<'a, str>)).is_some());
        assert!(borrowed_span(&parse_quote!(Vec<&'static str>)).is_some());
        assert!(borrowed_span(&parse_quote!(Vec<String>)).is_none());
        assert!(borrowed_span(&parse_quote!(&'static str)).is_some());
    }
}
