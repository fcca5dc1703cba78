//! `/catalog`: the workflow types workers have registered, each with its
//! diagram.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use steadfast_runtime::catalog::CatalogEntry;

use super::layout::{self, enc, time};
use crate::ui::diagram::{self, RunPath};
use crate::ui::routes::App;

/// `GET /catalog`.
pub(crate) async fn page(State(app): State<Arc<App>>) -> Response {
    let Some(admin) = app.store.admin() else {
        return layout::error_page(StatusCode::NOT_IMPLEMENTED, "This store keeps no catalog.");
    };
    let entries = match admin.catalog().await {
        Ok(e) => e,
        Err(e) => return layout::error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let body = html! {
        h1 { "Workflows" }
        @if entries.is_empty() { p.empty { "No worker has registered a workflow yet." } }
        @for (name, json) in &entries {
            section.workflow {
                h2 { (name) " " a.hint href={ "/runs?list=active&workflow=" (enc(name)) } { "runs" } }
                @match CatalogEntry::from_json(name, json) {
                    Ok(entry) => {
                        p.hint {
                            "queue " code { (entry.queue) } ", fingerprint " code { (entry.fingerprint) }
                            ", steadfast " (entry.version) ", registered by " code { (entry.worker) }
                            " at " (time(entry.registered_at_ms))
                            @if !entry.patches.is_empty() { ", patches: " (entry.patches.join(", ")) }
                        }
                        (diagram::svg(&entry, &RunPath::default()))
                    }
                    Err(e) => p.problem { (e.to_string()) },
                }
            }
        }
    };
    layout::page(&app, "Workflows", "catalog", body).into_response()
}
