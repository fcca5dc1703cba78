//! The state graph (as Mermaid) and `WorkflowInfo`. A state's fingerprint
//! is computed by the runtime on first use, from the serde layouts of the
//! stored types (`steadfast-runtime`'s `layout.rs`), not from their spelling
//! here.

use std::collections::{BTreeSet, HashSet};

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::Ident;

use super::cfg::{BlockId, Cfg, SuspendId, Terminator, VarId};
use super::emit::Emitter;
use super::liveness::Liveness;

/// A persisted state: `start` or a suspension.
pub(crate) struct StateDef {
    pub(crate) name: String,
    pub(crate) variant: Ident,
    pub(crate) fields: Vec<VarId>,
    pub(crate) waits_for: String,
    pub(crate) suspend: Option<SuspendId>,
}

/// Where a state's step can end.
#[derive(Default)]
struct Exits {
    states: BTreeSet<SuspendId>,
    completes: bool,
    continues: bool,
    fails: bool,
}

/// Follows blocks from `from` through transient joints to the next
/// suspensions and to the workflow's returns.
fn exits(cfg: &Cfg, from: BlockId) -> Exits {
    let mut out = Exits::default();
    let mut seen = HashSet::new();
    let mut stack = vec![from];
    while let Some(b) = stack.pop() {
        if !seen.insert(b) {
            continue;
        }
        let block = &cfg.blocks[b];
        for piece in &block.pieces {
            out.fails |= piece.may_fail;
            out.completes |= piece.may_return;
            out.continues |= piece.continues;
        }
        out.fails |= cfg.fail_terms.contains(&b);
        if let Terminator::Suspend(s) = &block.term {
            out.states.insert(*s);
            continue;
        }
        for (s, _) in cfg.successors(b) {
            stack.push(s);
        }
    }
    out
}

fn node_id(name: &str) -> String {
    let mut id: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    id.insert_str(0, "s_");
    id
}

/// The workflow's states and transitions as a Mermaid `stateDiagram-v2`.
pub(crate) fn mermaid(cfg: &Cfg, live: &Liveness, states: &[StateDef]) -> String {
    let mut lines = vec!["stateDiagram-v2".to_owned()];
    for st in states {
        lines.push(format!(
            "    state \"{}\" as {}",
            st.name,
            node_id(&st.name)
        ));
    }
    lines.push("    state \"completed\" as completed".to_owned());
    lines.push("    state \"failed: compensations run, newest first\" as failed".to_owned());
    lines.push(format!("    [*] --> {}", node_id("start")));
    let mut fails_anywhere = false;
    let mut continues_anywhere = false;
    for st in states {
        let from = match st.suspend {
            None => cfg.entry,
            Some(id) => cfg.suspends[id].resume,
        };
        if !live.reachable[from] {
            continue;
        }
        let ex = exits(cfg, from);
        for s in ex.states {
            let target = &cfg.suspends[s].name;
            lines.push(format!("    {} --> {}", node_id(&st.name), node_id(target)));
        }
        if ex.completes {
            lines.push(format!("    {} --> completed", node_id(&st.name)));
        }
        if ex.continues {
            continues_anywhere = true;
            lines.push(format!("    {} --> continued", node_id(&st.name)));
        }
        if ex.fails {
            fails_anywhere = true;
            lines.push(format!("    {} --> failed: error", node_id(&st.name)));
        }
    }
    lines.push("    completed --> [*]".to_owned());
    if continues_anywhere {
        lines.push("    state \"continued as new: start again\" as continued".to_owned());
        lines.push("    continued --> [*]".to_owned());
    }
    if fails_anywhere {
        lines.push("    failed --> [*]".to_owned());
    }
    lines.join("\n")
}

/// The fields of a state as (name, type as written).
fn field_texts(cfg: &Cfg, st: &StateDef) -> Vec<(String, String)> {
    st.fields
        .iter()
        .map(|v| {
            let var = &cfg.vars[*v];
            let ty = var
                .ty
                .as_ref()
                .map(|t| normalize(&t.to_token_stream().to_string()))
                .unwrap_or_default();
            (var.name.to_string(), ty)
        })
        .collect()
}

/// `< charge_card as :: steadfast :: __private :: Activity > :: Output` ->
/// `<charge_card as ::steadfast::__private::Activity>::Output`.
fn normalize(ty: &str) -> String {
    let mut out = String::with_capacity(ty.len());
    let tokens: Vec<&str> = ty.split(' ').collect();
    for (i, t) in tokens.iter().enumerate() {
        let prev = if i > 0 { tokens[i - 1] } else { "" };
        let glue = i == 0
            || (matches!(*t, "::" | ">" | "," | "<" | ")" | "]" | ";")
                && !matches!(prev, "as" | "dyn" | "impl"))
            || matches!(prev, "::" | "<" | "(" | "[" | "&")
            || (*t == "(" && prev != "as");
        if !glue {
            out.push(' ');
        }
        if *t == "," {
            out.push_str(", ");
            continue;
        }
        out.push_str(t);
    }
    out.replace(",  ", ", ")
        .replace(", >", ">")
        .replace("::steadfast::__private::", "")
        .trim_end()
        .to_owned()
}

/// `INFO.get_or_init(|| WorkflowInfo::traced(..))`: the facts, with each
/// stored field's layout traced through the state probe.
pub(crate) fn info_tokens(em: &Emitter<'_>, states: &[StateDef]) -> TokenStream {
    let p = quote!(::steadfast::__private);
    let name = &em.meta.name;
    let queue = &em.meta.queue;
    let mermaid = mermaid(em.cfg, em.live, states);
    let patches = &em.meta.patches;
    let state_infos = states.iter().map(|st| {
        let fields = field_texts(em.cfg, st);
        let sname = &st.name;
        let waits = &st.waits_for;
        let pairs = fields.iter().map(|(n, t)| quote!((#n, #t)));
        let layouts = st.fields.iter().map(|v| {
            let ty = em.cfg.vars[*v]
                .ty
                .as_ref()
                .map(|t| quote!(#t))
                .unwrap_or_else(|| quote!(()));
            quote!((&#p::Probe::<#ty>::new()).layout())
        });
        quote!(#p::TracedState::new(#sname, #waits, &[#(#pairs),*], ::std::vec::Vec::from([#(#layouts),*])))
    });
    quote! {
        static INFO: #p::InfoCell = #p::InfoCell::new();
        INFO.get_or_init(|| {
            use #p::{ProbeNotStored as _, ProbeStored as _};
            #p::WorkflowInfo::traced(
                #name,
                #queue,
                ::std::vec::Vec::from([#(#state_infos),*]),
                &[#(#patches),*],
                #mermaid,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_type_text() {
        assert_eq!(
            normalize("< charge_card as :: steadfast :: __private :: Activity > :: Output"),
            "<charge_card as Activity>::Output"
        );
        assert_eq!(normalize("Vec < String >"), "Vec<String>");
        assert_eq!(normalize("< T as :: a :: B > :: C"), "<T as ::a::B>::C");
        assert_eq!(normalize("(u32 , String)"), "(u32, String)");
        assert_eq!(normalize("Option < (u32 , bool) >"), "Option<(u32, bool)>");
    }
}
