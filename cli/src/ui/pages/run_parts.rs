//! The sections of a run page.

use maud::{Markup, html};
use steadfast_runtime::catalog::CatalogEntry;
use steadfast_runtime::{HistoryEntry, Interrupt, RunRecord, Wait, Work};

use super::layout::{enc, status_badge, time};
use crate::ui::diagram::{self, RunPath};
use crate::ui::routes::App;

fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("<does not encode: {e}>"))
}

fn run_link(id: &str) -> Markup {
    html! { a href={ "/runs/" (enc(id)) } { code { (id) } } }
}

/// Everything that changes as the run moves.
pub(crate) fn live(
    app: &App,
    r: &RunRecord,
    history: &[HistoryEntry],
    catalog: &[(String, String)],
) -> Markup {
    let status = r.status();
    html! {
        div.summary data-seq=(r.seq) {
            dl {
                dt { "status" } dd #status { (status_badge(status)) }
                dt { "workflow" } dd { (r.workflow) }
                dt { "state" } dd { code #step { (r.step()) } }
                dt { "seq" } dd { (r.seq) }
                dt { "queue" } dd { (r.queue) }
                @if let Some(reason) = r.reason() { dt { "reason" } dd.problem { (reason) } }
                @if let Some(stopped) = r.stopped() { dt { "stopped" } dd { (stopped) } }
                @if let Some(i) = &r.interrupt {
                    dt { "stop asked" } dd { (match i { Interrupt::Cancel { reason } => format!("cancel: {reason}"), Interrupt::Terminate { reason } => format!("terminate: {reason}"), _ => "a stop".into() }) }
                }
                @if let Some(d) = r.deadline_ms { dt { "deadline" } dd { (time(d)) } }
                @if let Some(p) = &r.parent { dt { "parent" } dd { (run_link(p)) } }
                @if r.generation > 0 { dt { "generation" } dd { (r.generation) } }
                dt { "created" } dd { (time(r.created_at_ms)) }
                dt { "updated" } dd { (time(r.updated_at_ms)) }
            }
        }
        section.diagram-box {
            h2 { "State diagram" }
            (diagram_of(r, history, catalog))
        }
        section { h2 { "Waits for" } (waits(r)) }
        section {
            h2 { "Compensations owed" }
            @if r.compensations.is_empty() {
                p.empty { "None." }
            } @else {
                p.hint { "Run newest first if the run unwinds." }
                table #compensations {
                    thead { tr { th { "next" } th { "activity" } th { "undoes" } th { "idempotency key" } th { "input" } } }
                    tbody {
                        @for (i, c) in r.compensations.iter().rev().enumerate() {
                            tr { td { (i + 1) } td { code { (c.activity) } } td { code { (c.step) } } td { code { (c.key) } } td { pre.json { (pretty(&c.input)) } } }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Buffered signals" }
            @if r.signals.is_empty() {
                p.empty { "None." }
            } @else {
                table #signals {
                    thead { tr { th { "name" } th { "nonce" } th { "sent" } th { "payload" } th {} } }
                    tbody {
                        @for s in &r.signals {
                            tr data-nonce=(s.nonce) {
                                td { code { (s.name) } } td { (s.nonce) } td { (time(s.sent_at_ms)) }
                                td { pre.json { (pretty(&s.payload)) } }
                                td {
                                    @if !app.read_only {
                                        form method="post" action={ "/runs/" (enc(&r.id)) "/remove-signal" } {
                                            input type="hidden" name="csrf" value=(app.csrf.expose());
                                            input type="hidden" name="nonce" value=(s.nonce);
                                            input type="text" name="note" placeholder="why" size="12";
                                            button type="submit" { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if !r.queries.is_empty() {
            section {
                h2 { "Queries" }
                dl { @for (k, v) in &r.queries { dt { (k) } dd { code { (v.to_string()) } } } }
            }
        }
        section.data {
            h2 { "Input" } pre.json #input { (pretty(&r.input)) }
            @if let Some(s) = r.phase.state() { h2 { "State" } pre.json #state { (pretty(&s.json)) } }
            @if let Some(o) = r.output() { h2 { "Output" } pre.json #output { (pretty(o)) } }
            @if let Some((e, message)) = r.error() { h2 { "Error" } p.problem { (message) } pre.json { (pretty(e)) } }
        }
        section {
            h2 { "History" }
            ol.timeline #history {
                @for h in history.iter().rev() {
                    li {
                        span.when { (time(h.at_ms)) }
                        " " span.seq { "#" (h.seq) }
                        " " (status_badge(h.status))
                        " " code { (h.step) }
                        " " span.event { (h.event) }
                    }
                }
            }
        }
    }
}

fn diagram_of(r: &RunRecord, history: &[HistoryEntry], catalog: &[(String, String)]) -> Markup {
    let Some((name, json)) = catalog.iter().find(|(name, _)| *name == r.workflow) else {
        return html! { p.hint { "No worker has registered workflow " code { (r.workflow) } " yet: start a worker of this version and the diagram appears." } };
    };
    let entry = match CatalogEntry::from_json(name, json) {
        Ok(e) => e,
        Err(e) => return html! { p.problem { (e.to_string()) } },
    };
    let steps = history.iter().map(|h| h.step.clone()).collect();
    let path = RunPath::of(r.step(), r.status(), steps);
    let layout_differs = r.phase.state().is_some_and(|s| {
        entry
            .state(&s.step)
            .is_some_and(|known| known.fingerprint != s.fingerprint)
    });
    html! {
        (diagram::svg(&entry, &path))
        p.hint {
            "Registered by worker " code { (entry.worker) } " at " (time(entry.registered_at_ms))
            " (fingerprint " code { (entry.fingerprint) } ")."
            @if layout_differs { " " strong { "The run's state was written by code with another layout." } }
        }
    }
}

fn waits(r: &RunRecord) -> Markup {
    if let Some(w) = r.work() {
        return match w {
            Work::Activity {
                activity,
                step,
                key,
                queue,
                ..
            } => html! {
                p #waits {
                    "activity " code { (activity) } " (state " code { (step) } "), attempt " (r.attempts + 1)
                    ", idempotency key " code { (key) }
                    @if let Some(q) = queue { ", on queue " code { (q) } }
                }
                @if let Some(e) = &r.last_error { p.problem { "last error: " (e) } }
            },
            _ => html! { p #waits { "a worker, to start the run" } },
        };
    }
    match r.wait() {
        Some(Wait::Timer { until_ms, .. }) => {
            html! { p #waits { "a timer, until " (time(*until_ms)) } }
        }
        Some(Wait::Signal {
            name, deadline_ms, ..
        }) => html! {
            p #waits { "signal " code { (name) } @if let Some(d) = deadline_ms { ", until " (time(*d)) } }
        },
        Some(Wait::Child { id, workflow, .. }) => html! {
            p #waits { "child run " (run_link(id)) " (" (workflow) ")" }
        },
        Some(other) => html! { p #waits { (other.describe()) } },
        None => html! { p.empty #waits { "Nothing." } },
    }
}

/// The action forms; none in read-only mode.
pub(crate) fn actions(app: &App, r: &RunRecord) -> Markup {
    if app.read_only {
        return html! { p.hint { "Read-only console: no actions." } };
    }
    let status = r.status();
    let base = format!("/runs/{}", enc(&r.id));
    let csrf = app.csrf.expose();
    html! {
        section.actions #actions {
            h2 { "Actions" }
            @if status.needs_attention() {
                form method="post" action={ (base) "/resume" } {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="text" name="note" placeholder="what was fixed" size="30";
                    button #resume type="submit" { "Resume…" }
                }
            }
            @if !status.is_settled() {
                form method="post" action={ (base) "/cancel" } {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="text" name="reason" placeholder="why" size="30";
                    button #cancel type="submit" { "Cancel…" }
                }
                form method="post" action={ (base) "/terminate" } {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="text" name="reason" placeholder="why" size="30" required;
                    button #terminate type="submit" class="danger" { "Terminate…" }
                }
                form method="post" action={ (base) "/signal" } {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="text" name="name" placeholder="signal name" size="16" required;
                    textarea name="payload" rows="1" cols="30" placeholder="payload (JSON)" {}
                    button #signal type="submit" { "Send signal…" }
                }
            }
        }
    }
}

/// A record that does not read: why, and its fields as stored.
pub(crate) fn raw(id: &str, reason: &str, fields: &[(String, String)]) -> Markup {
    html! {
        p.problem { "Run " code { (id) } " does not read: " (reason) }
        table #raw {
            thead { tr { th { "field" } th { "value as stored" } } }
            tbody { @for (k, v) in fields { tr { td { code { (k) } } td { pre { (v) } } } } }
        }
    }
}
