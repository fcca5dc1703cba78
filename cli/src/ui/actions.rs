//! Actions: signal, cancel, terminate, resume, remove a buffered signal,
//! pause or resume a schedule. Each is a POSTed form that
//! - is refused in read-only mode;
//! - is refused from another site: the form's token must be this
//!   process's, and a browser's `Sec-Fetch-Site` or `Origin` must say the
//!   request comes from the console's own pages;
//! - asks for a confirmation first (a page that posts the same fields with
//!   `confirmed=yes`), so no click acts at once;
//! - is carried out by the same [`steadfast_runtime::Client`] call as the
//!   command line's: the core decides, the console writes nothing itself.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::pages::layout::{self, enc};
use super::routes::App;

/// The fields any action form may carry.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirmed: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    nonce: String,
}

/// Whether a browser says the request comes from the console's own pages.
/// Requests that carry neither header (not from a browser) pass; they
/// still need the form's token.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match (text("origin"), text(header::HOST.as_str())) {
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            origin_host == host
        }
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// Why an action is refused before it is looked at, if it is.
fn refusal(app: &App, headers: &HeaderMap, form: &ActionForm) -> Option<Response> {
    if app.read_only {
        return Some(layout::error_page(
            StatusCode::FORBIDDEN,
            "This console is read-only: actions are refused. Use the `steadfast` command, \
             or start the console without --read-only.",
        ));
    }
    if !same_origin(headers) || !app.csrf.matches(&form.csrf) {
        return Some(layout::error_page(
            StatusCode::FORBIDDEN,
            "Cross-site request refused: submit the form from the console's own page \
             (reload it if the console was restarted).",
        ));
    }
    None
}

/// The confirmation page: what is about to happen, and the same fields
/// posted again with `confirmed=yes`.
fn confirm(
    app: &App,
    title: &str,
    what: Markup,
    action: &str,
    form: &ActionForm,
    back: &str,
) -> Response {
    let body = html! {
        h1 { (title) }
        div.confirm {
            (what)
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(app.csrf.expose());
                input type="hidden" name="confirmed" value="yes";
                input type="hidden" name="reason" value=(form.reason);
                input type="hidden" name="note" value=(form.note);
                input type="hidden" name="name" value=(form.name);
                input type="hidden" name="payload" value=(form.payload);
                input type="hidden" name="nonce" value=(form.nonce);
                button #confirm type="submit" class="danger" { "Confirm" }
                " "
                a href=(back) { "Back" }
            }
        }
    };
    layout::page(app, title, "", body).into_response()
}

/// `POST /runs/<id>/<action>`.
pub(crate) async fn run_action(
    State(app): State<Arc<App>>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = refusal(&app, &headers, &form) {
        return refused;
    }
    let back = format!("/runs/{}", enc(&id));
    let here = format!("{back}/{}", enc(&action));
    let nonce: Option<u64> = form.nonce.trim().parse().ok();
    let (title, what) = match action.as_str() {
        "cancel" => (
            "Cancel the run",
            html! {
                p { "Cancel run " code { (id) } "? It stops at its next suspension point and runs its compensations." }
                p { "Reason: " q { (form.reason) } }
            },
        ),
        "terminate" => (
            "Terminate the run",
            html! {
                p { "Terminate run " code { (id) } " at once, " strong { "without compensating" } "?" }
                p { "Reason: " q { (form.reason) } }
            },
        ),
        "resume" => (
            "Resume the run",
            html! {
                p { "Put run " code { (id) } " back to work from where it stopped?" }
                p { "Note: " q { (form.note) } }
            },
        ),
        "signal" => (
            "Send a signal",
            html! {
                p { "Send signal " code { (form.name) } " to run " code { (id) } "?" }
                pre.json { (form.payload) }
            },
        ),
        "remove-signal" => (
            "Remove a buffered signal",
            html! {
                p { "Remove signal " code { (form.nonce) } " from the buffer of run " code { (id) } "?" }
                p { "Note: " q { (form.note) } }
            },
        ),
        _ => return layout::error_page(StatusCode::NOT_FOUND, "No such action."),
    };
    if form.confirmed != "yes" {
        return confirm(&app, title, what, &here, &form, &back);
    }
    let client = &app.client;
    let done: Result<String, String> = match action.as_str() {
        "cancel" => client
            .cancel(&id, non_empty(&form.reason, "cancelled from the console"))
            .await
            .map(|()| "asked the run to cancel".to_owned())
            .map_err(|e| e.to_string()),
        "terminate" => client
            .terminate(&id, non_empty(&form.reason, "terminated from the console"))
            .await
            .map(|()| "asked the run to terminate".to_owned())
            .map_err(|e| e.to_string()),
        "resume" => client
            .resume(&id, &form.note)
            .await
            .map(|status| format!("resumed: {status}"))
            .map_err(|e| e.to_string()),
        "signal" => match payload(&form.payload) {
            Ok(p) => client
                .signal_json(&id, &form.name, p)
                .await
                .map(|()| format!("sent signal {}", form.name))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        },
        _ => match nonce {
            Some(n) => client
                .remove_signal(&id, n, &form.note)
                .await
                .map(|()| format!("removed signal {n}"))
                .map_err(|e| e.to_string()),
            None => Err("the signal's nonce is a number; take it from the run page".into()),
        },
    };
    outcome(&app, done, &back)
}

/// `POST /schedules/<id>/<pause|resume>`.
pub(crate) async fn schedule_action(
    State(app): State<Arc<App>>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Some(refused) = refusal(&app, &headers, &form) {
        return refused;
    }
    let here = format!("/schedules/{}/{}", enc(&id), enc(&action));
    let (title, pause) = match action.as_str() {
        "pause" => ("Pause the schedule", true),
        "resume" => ("Resume the schedule", false),
        _ => return layout::error_page(StatusCode::NOT_FOUND, "No such action."),
    };
    if form.confirmed != "yes" {
        let what = html! {
            p { (if pause { "Stop firing schedule " } else { "Fire schedule " }) code { (id) }
              (if pause { " until it is resumed?" } else { " again from its next due time?" }) }
        };
        return confirm(&app, title, what, &here, &form, "/schedules");
    }
    let done = if pause {
        app.client
            .pause_schedule(&id)
            .await
            .map(|()| "paused".to_owned())
    } else {
        app.client
            .resume_schedule(&id)
            .await
            .map(|()| "resumed".to_owned())
    };
    outcome(&app, done.map_err(|e| e.to_string()), "/schedules")
}

fn non_empty(text: &str, default: &str) -> String {
    if text.trim().is_empty() {
        default.to_owned()
    } else {
        text.to_owned()
    }
}

fn payload(text: &str) -> Result<serde_json::Value, String> {
    if text.trim().is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_str(text).map_err(|e| format!("the payload is not JSON: {e}"))
}

/// Back to the page, with what was done; or the error, with a link back.
fn outcome(app: &App, done: Result<String, String>, back: &str) -> Response {
    match done {
        Ok(notice) => Redirect::to(&format!("{back}?notice={}", enc(&notice))).into_response(),
        Err(e) => {
            let body = html! {
                h1 { "The action failed" }
                p.problem { (e) }
                p { a href=(back) { "Back" } }
            };
            (
                StatusCode::CONFLICT,
                layout::page(app, "The action failed", "", body),
            )
                .into_response()
        }
    }
}
