//! `/schedules`: every cron schedule, its next firings, pause and resume.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use steadfast_runtime::CronSchedule;

use super::layout::{self, enc, time};
use crate::ui::routes::App;

/// How many coming firings are listed per schedule.
const FIRINGS: usize = 3;

/// `GET /schedules`.
pub(crate) async fn page(State(app): State<Arc<App>>) -> Response {
    let specs = match app.client.schedules().await {
        Ok(s) => s,
        Err(e) => return layout::error_page(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let now = steadfast_runtime::wall_clock_ms();
    let body = html! {
        h1 { "Schedules" }
        @if specs.is_empty() {
            p.empty { "No schedules." }
        } @else {
            table #schedules {
                thead { tr { th { "id" } th { "workflow" } th { "cron" } th { "next firings" } th { "last fired" } th { "runs started" } th { "state" } th {} } }
                tbody {
                    @for s in &specs {
                        @let firings = match (s.paused, CronSchedule::parse(&s.cron, &s.timezone)) {
                            (false, Ok(c)) => c.between(s.next_ms.unwrap_or(now).saturating_sub(1), u64::MAX, FIRINGS),
                            _ => Vec::new(),
                        };
                        tr data-schedule=(s.id) {
                            td { code { (s.id) } }
                            td { (s.workflow) }
                            td { code { (s.cron) } " " span.hint { (s.timezone) } }
                            td { @for f in &firings { (time(*f)) br; } @if s.paused { span.hint { "paused" } } }
                            td { (s.last_fired_ms.map(time).unwrap_or_default()) }
                            td { (s.runs_started) }
                            td { @if s.paused { span.status.attention { "paused" } } @else { span.status.live { "active" } } }
                            td {
                                @if !app.read_only {
                                    @let action = if s.paused { "resume" } else { "pause" };
                                    form method="post" action={ "/schedules/" (enc(&s.id)) "/" (action) } {
                                        input type="hidden" name="csrf" value=(app.csrf.expose());
                                        button type="submit" { (if s.paused { "Resume…" } else { "Pause…" }) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(&app, "Schedules", "schedules", body).into_response()
}
