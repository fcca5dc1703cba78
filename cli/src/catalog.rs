//! `steadfast workflows`: what workers registered in the catalog — each
//! workflow type's queue, fingerprint and graph — read without the
//! workflows' code.

use std::fmt::Write as _;

use steadfast_runtime::AdminStore;
use steadfast_runtime::catalog::{CatalogEntry, EdgeKind};

use crate::ops::CliError;
use crate::render;

/// Lists the registered workflow types, or shows one's states and edges.
pub(crate) async fn run(
    admin: &dyn AdminStore,
    name: Option<&str>,
    as_json: bool,
) -> Result<String, CliError> {
    let stored = admin.catalog().await?;
    let mut entries = Vec::new();
    let mut problems = String::new();
    for (workflow, json) in &stored {
        if name.is_some_and(|n| n != workflow) {
            continue;
        }
        match CatalogEntry::from_json(workflow, json) {
            Ok(e) => entries.push(e),
            Err(e) => {
                let _ = writeln!(problems, "{e}");
            }
        }
    }
    if let Some(n) = name
        && entries.is_empty()
        && problems.is_empty()
    {
        return Err(CliError::NoWorkflow(n.to_owned()));
    }
    if as_json {
        let mut s = serde_json::to_string_pretty(&entries)
            .unwrap_or_else(|e| format!("\"does not encode: {e}\""));
        s.push('\n');
        return Ok(s);
    }
    let mut out = match name {
        Some(_) => entries.iter().map(detail).collect::<String>(),
        None if entries.is_empty() && problems.is_empty() => {
            "no workflow registered (workers register theirs as they start)\n".to_owned()
        }
        None => {
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        e.workflow.clone(),
                        e.queue.clone(),
                        e.states.len().to_string(),
                        e.fingerprint.clone(),
                        render::time(e.registered_at_ms),
                        e.worker.clone(),
                    ]
                })
                .collect();
            render::table(
                &[
                    "WORKFLOW",
                    "QUEUE",
                    "STATES",
                    "FINGERPRINT",
                    "REGISTERED",
                    "BY",
                ],
                &rows,
            )
        }
    };
    out.push_str(&problems);
    Ok(out)
}

/// One workflow type: its facts, states and edges.
fn detail(e: &CatalogEntry) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "workflow      {}", e.workflow);
    let _ = writeln!(out, "queue         {}", e.queue);
    let _ = writeln!(out, "fingerprint   {}", e.fingerprint);
    let _ = writeln!(out, "steadfast     {}", e.version);
    if !e.patches.is_empty() {
        let _ = writeln!(out, "patches       {}", e.patches.join(", "));
    }
    let _ = writeln!(
        out,
        "registered    {} by {}",
        render::time(e.registered_at_ms),
        e.worker
    );
    out.push_str("states:\n");
    for s in &e.states {
        let undo = if s.compensable { "  (compensable)" } else { "" };
        let _ = writeln!(out, "  {:<24}waits for {}{undo}", s.name, s.waits_for);
    }
    out.push_str("edges:\n");
    for edge in &e.edges {
        let kind = match edge.kind {
            EdgeKind::Next => "",
            EdgeKind::Completes => "  (returns Ok)",
            EdgeKind::Fails => "  (returns Err)",
            EdgeKind::Continues => "  (continues as new)",
            EdgeKind::Compensation => "  (undone when the run unwinds)",
            _ => "",
        };
        let _ = writeln!(out, "  {} -> {}{kind}", edge.from, edge.to);
    }
    out
}
