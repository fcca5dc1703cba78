//! `/runs/<id>`: one run. Its state diagram with where it is and how it got
//! there, what it waits for, the compensations it still owes, its buffered
//! signals, parent and child, its history, its input, state and output; the
//! actions. `/runs/<id>/live` returns the part that changes, which the
//! page's script swaps in as the run moves.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use steadfast_runtime::{RunRecord, StoreError};

use super::layout::{self, enc};
use super::run_parts;
use crate::ui::routes::App;

/// `?notice=`: what the last action did.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RunQuery {
    #[serde(default)]
    notice: String,
}

/// What a run page shows of a run.
enum Found {
    Run(Box<RunRecord>),
    /// The record does not read: its raw fields, and why.
    Raw(String, Vec<(String, String)>),
}

async fn find(app: &App, id: &str) -> Result<Option<Found>, StoreError> {
    match app.store.load(id).await {
        Ok(Some(r)) => Ok(Some(Found::Run(Box::new(r)))),
        Ok(None) => Ok(None),
        Err(StoreError::Corrupt { reason, .. }) => {
            let raw = match app.store.admin() {
                Some(admin) => admin.raw_record(id).await?,
                None => None,
            };
            Ok(raw.map(|fields| Found::Raw(reason, fields)))
        }
        Err(e) => Err(e),
    }
}

/// `GET /runs/<id>`.
pub(crate) async fn page(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(query): Query<RunQuery>,
) -> Response {
    let found = match find(&app, &id).await {
        Ok(Some(f)) => f,
        Ok(None) => {
            return layout::error_page(
                StatusCode::NOT_FOUND,
                &format!("No run has the id `{id}` (it may have expired or been deleted)."),
            );
        }
        Err(e) => return layout::error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let live = match live_part(&app, &id, &found).await {
        Ok(m) => m,
        Err(e) => return layout::error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let body = html! {
        h1 { "Run " code { (id) } }
        @if !query.notice.is_empty() { p.notice #notice { (query.notice) } }
        div #live data-live-url={ "/runs/" (enc(&id)) "/live" } data-interval=(app.live_interval_ms) {
            (live)
        }
        @if let Found::Run(r) = &found {
            (run_parts::actions(&app, r))
        }
    };
    layout::page(&app, &format!("Run {id}"), "runs", body).into_response()
}

/// `GET /runs/<id>/live`: the changing part of the page.
pub(crate) async fn live(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match find(&app, &id).await {
        Ok(Some(found)) => match live_part(&app, &id, &found).await {
            Ok(m) => Html(m.into_string()).into_response(),
            Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
        },
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Html(html! { p.problem { "The run is gone (expired or deleted)." } }.into_string()),
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn live_part(app: &App, id: &str, found: &Found) -> Result<Markup, StoreError> {
    match found {
        Found::Raw(reason, fields) => Ok(run_parts::raw(id, reason, fields)),
        Found::Run(r) => {
            let history = app.store.history(id).await?;
            let catalog = match app.store.admin() {
                Some(admin) => admin.catalog().await?,
                None => Vec::new(),
            };
            Ok(run_parts::live(app, r, &history, &catalog))
        }
    }
}
