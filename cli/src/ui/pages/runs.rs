//! `/runs`: one index at a time (in progress, needing an operator,
//! finished), filtered by status, workflow type and time, searched by id,
//! paged by a cursor on the index so that a page costs the same with a
//! hundred thousand runs as with ten.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::StreamExt as _;
use maud::{Markup, html};
use serde::Deserialize;
use steadfast_runtime::{Cursor, PageQuery, RunList, RunRecord, StoreError};

use super::layout::{self, enc, status_badge, time};
use crate::ui::routes::App;

/// Runs shown per page unless `limit` says otherwise.
const PAGE: usize = 50;
/// The most index entries one request reads while filters drop runs: past
/// it the page is shown as it is, with a link to go on.
const MAX_SCANNED: usize = 2_000;
/// Records read at once for a page.
const CONCURRENT_READS: usize = 16;

/// The list's filters, from the URL.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RunsQuery {
    #[serde(default)]
    list: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    workflow: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
    limit: Option<usize>,
}

/// The statuses by the index that holds them.
const STATUSES: [(&str, RunList); 9] = [
    ("running", RunList::Active),
    ("compensating", RunList::Active),
    ("parked", RunList::Attention),
    ("compensation_failed", RunList::Attention),
    ("completed", RunList::Finished),
    ("failed", RunList::Finished),
    ("cancelled", RunList::Finished),
    ("terminated", RunList::Finished),
    ("timed_out", RunList::Finished),
];

fn list_of(query: &RunsQuery) -> RunList {
    match query.list.as_str() {
        "attention" => RunList::Attention,
        "finished" => RunList::Finished,
        "active" => RunList::Active,
        _ => STATUSES
            .iter()
            .find(|(s, _)| *s == query.status)
            .map_or(RunList::Active, |(_, l)| *l),
    }
}

fn list_name(list: RunList) -> &'static str {
    match list {
        RunList::Attention => "attention",
        RunList::Finished => "finished",
        _ => "active",
    }
}

/// `2026-12-01`, `2026-12-01T09:00` or `2026-12-01 09:00:00`, in UTC, as ms.
fn parse_time(text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let formats = [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ];
    let parsed = formats
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        });
    match parsed {
        Some(t) => Ok(u64::try_from(t.and_utc().timestamp_millis()).ok()),
        None => Err(format!(
            "`{text}` is no time; write 2026-12-01 or 2026-12-01T09:00 (UTC)"
        )),
    }
}

/// One row: the run as read, or why it does not read.
enum Row {
    Run(Box<RunRecord>),
    Missing(String),
    Unreadable(String, String),
}

/// `GET /runs`.
pub(crate) async fn page(State(app): State<Arc<App>>, Query(query): Query<RunsQuery>) -> Response {
    match render(&app, &query).await {
        Ok(r) => r,
        Err(e) => layout::error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

async fn render(app: &App, query: &RunsQuery) -> Result<Response, StoreError> {
    let Some(admin) = app.store.admin() else {
        return Ok(layout::error_page(
            StatusCode::NOT_IMPLEMENTED,
            "This store cannot list runs.",
        ));
    };
    let q = query.q.trim();
    let found = !q.is_empty()
        && (app.store.load(q).await.ok().flatten().is_some()
            || admin.raw_record(q).await?.is_some());
    if found {
        return Ok(Redirect::to(&format!("/runs/{}", enc(q))).into_response());
    }
    let list = list_of(query);
    let limit = query.limit.unwrap_or(PAGE).clamp(1, 500);
    let mut problems = Vec::new();
    if !q.is_empty() {
        problems.push(format!("No run has the id `{q}`."));
    }
    let since = parse_time(&query.since).unwrap_or_else(|e| {
        problems.push(e);
        None
    });
    let until = parse_time(&query.until).unwrap_or_else(|e| {
        problems.push(e);
        None
    });
    let mut cursor: Option<Cursor> = query.after.parse().ok();
    let filtering = !query.status.is_empty() || !query.workflow.is_empty();
    let mut rows = Vec::new();
    let mut scanned = 0;
    let mut next = None;
    'pages: loop {
        let page = admin
            .page_runs(
                &PageQuery::new(list, if filtering { limit * 2 } else { limit })
                    .after(cursor.clone())
                    .between(since, until),
            )
            .await?;
        // The page's records, read a few at a time: the connection
        // pipelines them.
        let reads: Vec<_> = page
            .runs
            .iter()
            .map(|e| {
                let (store, id) = (Arc::clone(&app.store), e.id.clone());
                async move { store.load(&id).await }
            })
            .collect();
        let loaded: Vec<Result<Option<RunRecord>, StoreError>> = futures_util::stream::iter(reads)
            .buffered(CONCURRENT_READS)
            .collect()
            .await;
        for (entry, read) in page.runs.iter().zip(loaded) {
            scanned += 1;
            cursor = Some(Cursor::new(entry.score_ms, entry.id.clone()));
            let row = match read {
                Ok(Some(r)) => Row::Run(Box::new(r)),
                Ok(None) => Row::Missing(entry.id.clone()),
                Err(StoreError::Corrupt { reason, .. }) => {
                    Row::Unreadable(entry.id.clone(), reason)
                }
                Err(e) => return Err(e),
            };
            let keep = match &row {
                Row::Run(r) => {
                    (query.status.is_empty() || r.status().as_str() == query.status)
                        && (query.workflow.is_empty() || r.workflow == query.workflow)
                }
                _ => !filtering,
            };
            if keep {
                rows.push(row);
            }
            if rows.len() == limit || scanned >= MAX_SCANNED {
                next = cursor.clone();
                break 'pages;
            }
        }
        if page.next.is_none() {
            break;
        }
    }
    // A full page at the very end of the index has no successor.
    if let Some(c) = &next {
        let probe = admin
            .page_runs(
                &PageQuery::new(list, 1)
                    .after(Some(c.clone()))
                    .between(since, until),
            )
            .await?;
        if probe.runs.is_empty() {
            next = None;
        }
    }
    let counts = [
        (
            RunList::Active,
            "In progress",
            admin.count_runs(RunList::Active).await?,
        ),
        (
            RunList::Attention,
            "Needs attention",
            admin.count_runs(RunList::Attention).await?,
        ),
        (
            RunList::Finished,
            "Finished",
            admin.count_runs(RunList::Finished).await?,
        ),
    ];
    let workflows: Vec<String> = admin
        .catalog()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let body = html! {
        h1 { "Runs" }
        nav.tabs {
            @for (l, label, n) in &counts {
                a href={ "/runs?list=" (list_name(*l)) } class=(if *l == list { "active" } else { "" }) {
                    (label) " " span.count { (n) }
                }
            }
        }
        (filters(query, list, &workflows))
        @for p in &problems { p.problem { (p) } }
        @if rows.is_empty() {
            p.empty { "No runs here." }
        } @else {
            table.runs #runs {
                thead { tr { th { "id" } th { "workflow" } th { "status" } th { "step" } th { "created" } th { "updated" } th { "note" } } }
                tbody { @for row in &rows { (row_html(row)) } }
            }
        }
        @if let Some(c) = &next {
            p.more { a #next href=(next_link(query, list, c)) { "Next page →" } }
        }
        @if !query.after.is_empty() {
            p.more { a href=(first_link(query, list)) { "← First page" } }
        }
    };
    Ok(layout::page(app, "Runs", "runs", body).into_response())
}

fn filters(query: &RunsQuery, list: RunList, workflows: &[String]) -> Markup {
    html! {
        form.filters method="get" action="/runs" {
            input type="hidden" name="list" value=(list_name(list));
            label { "status "
                select name="status" {
                    option value="" { "any" }
                    @for (s, l) in STATUSES {
                        @if l == list {
                            option value=(s) selected[query.status == s] { (s) }
                        }
                    }
                }
            }
            label { "workflow "
                select name="workflow" {
                    option value="" { "any" }
                    @for w in workflows {
                        option value=(w) selected[query.workflow == *w] { (w) }
                    }
                }
            }
            label { (if list == RunList::Finished { "settled from " } else { "since " })
                input type="text" name="since" placeholder="2026-12-01T09:00" value=(query.since) size="16"; }
            label { "until " input type="text" name="until" placeholder="UTC" value=(query.until) size="16"; }
            button type="submit" { "Filter" }
        }
        form.search method="get" action="/runs" {
            label { "id " input type="search" name="q" placeholder="order-42" value=(query.q); }
            button type="submit" { "Find" }
        }
    }
}

fn row_html(row: &Row) -> Markup {
    match row {
        Row::Run(r) => html! {
            tr data-run=(r.id) {
                td { a href={ "/runs/" (enc(&r.id)) } { (r.id) } }
                td { (r.workflow) }
                td { (status_badge(r.status())) }
                td { code { (r.step()) } }
                td { (time(r.created_at_ms)) }
                td { (time(r.updated_at_ms)) }
                td.note { (crate::render::note(r)) }
            }
        },
        Row::Missing(id) => html! {
            tr data-run=(id) {
                td { (id) } td { "?" } td { span.status.attention { "missing" } } td {} td {} td {}
                td.note { "no record; `steadfast delete " (id) "` removes what is left" }
            }
        },
        Row::Unreadable(id, reason) => html! {
            tr data-run=(id) {
                td { a href={ "/runs/" (enc(id)) } { (id) } } td { "?" } td { span.status.attention { "unreadable" } } td {} td {} td {}
                td.note { (reason) }
            }
        },
    }
}

fn base_link(query: &RunsQuery, list: RunList) -> String {
    let mut link = format!("/runs?list={}", list_name(list));
    for (k, v) in [
        ("status", &query.status),
        ("workflow", &query.workflow),
        ("since", &query.since),
        ("until", &query.until),
    ] {
        if !v.is_empty() {
            link.push_str(&format!("&{k}={}", enc(v)));
        }
    }
    if let Some(l) = query.limit {
        link.push_str(&format!("&limit={l}"));
    }
    link
}

fn next_link(query: &RunsQuery, list: RunList, cursor: &Cursor) -> String {
    format!(
        "{}&after={}",
        base_link(query, list),
        enc(&cursor.to_string())
    )
}

fn first_link(query: &RunsQuery, list: RunList) -> String {
    base_link(query, list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_in_utc() {
        assert_eq!(parse_time("1970-01-01T00:01"), Ok(Some(60_000)));
        assert_eq!(parse_time("1970-01-02"), Ok(Some(86_400_000)));
        assert_eq!(parse_time(" "), Ok(None));
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn a_status_picks_its_index() {
        let q = RunsQuery {
            status: "parked".into(),
            ..RunsQuery::default()
        };
        assert_eq!(list_of(&q), RunList::Attention);
    }
}
