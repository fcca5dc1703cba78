//! Tests of the workflow compiler on token input: which locals each state
//! stores, how states are named, the graph, and expansion snapshots.

use proc_macro2::TokenStream;
use quote::quote;

use super::emit::{Emitter, Meta};
use super::liveness::Liveness;
use super::sig::WorkflowSig;
use super::{expand, graph, lower};
use crate::errors::Errors;

/// `(state name, stored field names)` of a workflow, or its errors.
fn states_of(item: TokenStream) -> Result<Vec<(String, Vec<String>)>, Vec<String>> {
    let func: syn::ItemFn = syn::parse2(item).expect("a function");
    let errors = Errors::new();
    let sig = WorkflowSig::parse(&errors, &func).expect("a valid signature");
    let cfg = lower::lower(&errors, &sig, (*func.block).clone());
    let live = Liveness::compute(&cfg);
    let meta = Meta {
        name: "w".into(),
        queue: "default".into(),
        state: syn::parse_quote!(WState),
        docs: Vec::new(),
        patches: Vec::new(),
        migrations: None,
    };
    let em = Emitter::new(&sig, &cfg, &live, &errors, meta);
    let states = em.states();
    em.check_states(&states);
    drop(em);
    if let Err(e) = errors.finish() {
        return Err(e.into_iter().map(|e| e.to_string()).collect());
    }
    Ok(states
        .iter()
        .map(|s| {
            let fields = s
                .fields
                .iter()
                .map(|v| cfg.vars[*v].name.to_string())
                .collect();
            (s.name.clone(), fields)
        })
        .collect())
}

fn fields(states: &[(String, Vec<String>)], name: &str) -> Vec<String> {
    states
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no state `{name}` in {states:?}"))
        .1
        .clone()
}

#[test]
fn a_local_not_used_after_an_await_is_not_stored() {
    let s = states_of(quote! {
        async fn w(order_id: String) -> Result<(), E> {
            let copy = order_id.clone();
            charge(copy).await?;
            ship(order_id).await?;
            Ok(())
        }
    })
    .expect("compiles");
    assert_eq!(fields(&s, "start"), vec!["order_id"]);
    assert_eq!(fields(&s, "charge#0"), vec!["order_id"]);
    assert!(fields(&s, "ship#0").is_empty());
}

#[test]
fn a_local_is_stored_exactly_between_its_definition_and_last_use() {
    let s = states_of(quote! {
        async fn w(x: u32) -> Result<u32, E> {
            a(x).await?;
            let y: u32 = x + 1;
            b(y).await?;
            c(y).await?;
            d(x).await?;
            Ok(0)
        }
    })
    .expect("compiles");
    assert_eq!(fields(&s, "a#0"), vec!["x"]);
    assert_eq!(fields(&s, "b#0"), vec!["x", "y"]);
    assert_eq!(fields(&s, "c#0"), vec!["x"]);
    assert!(fields(&s, "d#0").is_empty());
}

#[test]
fn an_activity_result_gets_its_type_from_the_activity() {
    let s = states_of(quote! {
        async fn w(id: String) -> Result<String, E> {
            let payment = charge(id.clone()).await?;
            ship(id).await?;
            Ok(payment)
        }
    })
    .expect("compiles without annotations");
    assert_eq!(fields(&s, "ship#0"), vec!["payment"]);
}

#[test]
fn branch_locals_are_stored_only_in_their_branch() {
    let s = states_of(quote! {
        async fn w(flag: bool) -> Result<u32, E> {
            if flag {
                let only_here: u32 = 7;
                a(1).await?;
                b(only_here).await?;
            } else {
                c(2).await?;
            }
            Ok(1)
        }
    })
    .expect("compiles");
    assert_eq!(fields(&s, "a#0"), vec!["only_here"]);
    assert!(fields(&s, "b#0").is_empty());
    assert!(fields(&s, "c#0").is_empty());
}

#[test]
fn loops_store_their_iterator_and_loop_carried_locals() {
    let s = states_of(quote! {
        async fn w(items: Vec<String>) -> Result<u32, E> {
            let mut count: u32 = 0;
            for item in items {
                ship(item).await?;
                count += 1;
            }
            done(count).await?;
            Ok(count)
        }
    })
    .expect("compiles");
    let ship = fields(&s, "ship#0");
    assert!(ship.contains(&"count".to_owned()), "{ship:?}");
    assert!(ship.iter().any(|f| f.starts_with("__sf_items")), "{ship:?}");
    assert!(!ship.contains(&"item".to_owned()), "{ship:?}");
    assert_eq!(fields(&s, "done#0"), vec!["count"]);
}

#[test]
fn steps_are_named_by_activity_and_occurrence_or_pinned() {
    let s = states_of(quote! {
        async fn w(x: u32) -> Result<(), E> {
            a(x).await?;
            b(x).await?;
            a(x).await?;
            #[step("final-check")]
            a(x).await?;
            Ok(())
        }
    })
    .expect("compiles");
    let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["start", "a#0", "b#0", "a#1", "final-check"]);
}

#[test]
fn code_after_return_makes_no_states() {
    let s = states_of(quote! {
        async fn w(x: u32) -> Result<(), E> {
            a(x).await?;
            return Ok(());
            b(x).await?;
            Ok(())
        }
    })
    .expect("compiles");
    let names: Vec<&str> = s.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["start", "a#0"]);
}

#[test]
fn untyped_locals_across_awaits_are_reported_once() {
    let errs = states_of(quote! {
        async fn w(x: u32) -> Result<u32, E> {
            let n = 3;
            a(x).await?;
            b(x).await?;
            Ok(n)
        }
    })
    .expect_err("needs an annotation");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("`n` is used after an await (state `a#0`)"),
        "{errs:?}"
    );
}

#[test]
fn a_valued_break_defines_its_variable_on_the_way_out() {
    // `label` gets its value only when the loop is left: it is not stored
    // inside the loop, and it needs no type because it crosses no await.
    let s = states_of(quote! {
        async fn w(x: u32) -> Result<u32, E> {
            let mut total: u32 = 0;
            let label = loop {
                total = add(total, x).await?;
                if total > 10 { break "big"; }
            };
            Ok(if label == "big" { total } else { 0 })
        }
    })
    .expect("compiles");
    // `total` is overwritten by the outcome, so its old value is not stored.
    assert_eq!(fields(&s, "add#0"), vec!["x"]);
}

#[test]
fn the_graph_links_states_and_exits() {
    let func: syn::ItemFn = syn::parse_quote! {
        async fn w(x: u32) -> Result<(), E> {
            if x > 1 { a(x).await?; } else { b(x).await?; }
            c(x).await?;
            Ok(())
        }
    };
    let errors = Errors::new();
    let sig = WorkflowSig::parse(&errors, &func).expect("a valid signature");
    let cfg = lower::lower(&errors, &sig, (*func.block).clone());
    let live = Liveness::compute(&cfg);
    let meta = Meta {
        name: "w".into(),
        queue: "default".into(),
        state: syn::parse_quote!(WState),
        docs: Vec::new(),
        patches: Vec::new(),
        migrations: None,
    };
    let em = Emitter::new(&sig, &cfg, &live, &errors, meta);
    let states = em.states();
    let m = graph::mermaid(&cfg, &live, &states);
    for edge in [
        "s_start --> s_a_0",
        "s_start --> s_b_0",
        "s_a_0 --> s_c_0",
        "s_b_0 --> s_c_0",
        "s_c_0 --> completed",
        "s_a_0 --> failed: error",
    ] {
        assert!(m.contains(edge), "missing `{edge}` in\n{m}");
    }
    assert!(!m.contains("s_start --> s_c_0"), "{m}");
}

/// Pretty-printed expansion of a workflow.
fn expanded(item: TokenStream) -> String {
    let out = expand(TokenStream::new(), item);
    match syn::parse2::<syn::File>(out.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(_) => out.to_string(),
    }
}

/// Compares the expansion of `expand/<name>.rs` with `expand/<name>.expanded.rs`;
/// `STEADFAST_BLESS=1` rewrites the snapshot.
fn check_snapshot(name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand");
    let source = std::fs::read_to_string(dir.join(format!("{name}.rs"))).expect("the input exists");
    let file: syn::File = syn::parse_str(&source).expect("the input parses");
    let func = file
        .items
        .into_iter()
        .find_map(|i| match i {
            syn::Item::Fn(f) if f.attrs.iter().any(|a| a.path().is_ident("workflow")) => Some(f),
            _ => None,
        })
        .expect("a #[workflow] function");
    let mut func = func;
    func.attrs.retain(|a| !a.path().is_ident("workflow"));
    let got = expanded(quote!(#func));
    let path = dir.join(format!("{name}.expanded.rs"));
    if std::env::var_os("STEADFAST_BLESS").is_some() {
        std::fs::write(&path, &got).expect("writes the snapshot");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        want == got,
        "the expansion of {name} changed; review it and rerun with STEADFAST_BLESS=1\n{got}"
    );
}

#[test]
fn expansion_of_the_order_saga() {
    check_snapshot("order_saga");
}

#[test]
fn expansion_of_a_loop_with_a_branch() {
    check_snapshot("loop_branch");
}

#[test]
fn expansion_of_waits_children_patches_and_continue_as_new() {
    check_snapshot("waits");
}
