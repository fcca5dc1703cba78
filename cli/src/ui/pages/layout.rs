//! What every page shares: the frame around it, escaping of URL parts,
//! times, status badges, error pages. Every text from Redis goes through
//! maud, which escapes it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use steadfast_runtime::Status;

use crate::ui::routes::App;

/// A full page: the navigation, the read-only banner, `body`.
pub(crate) fn page(app: &App, title: &str, active: &str, body: Markup) -> Markup {
    let nav = [
        ("runs", "/runs", "Runs"),
        ("schedules", "/schedules", "Schedules"),
        ("catalog", "/catalog", "Workflows"),
    ];
    frame(
        title,
        html! {
            header {
                a.brand href="/runs" { "steadfast" }
                nav {
                    @for (key, href, label) in nav {
                        a href=(href) class=(if key == active { "active" } else { "" }) { (label) }
                    }
                }
                @if app.read_only { span.badge.readonly { "read-only" } }
            }
            main { (body) }
        },
    )
}

/// A page without navigation (the login form).
pub(crate) fn bare(title: &str, body: Markup) -> Markup {
    frame(title, html! { main.narrow { (body) } })
}

fn frame(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · steadfast" }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body { (content) }
        }
    }
}

/// An error page with `status`.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let body = html! {
        h1 { (status.canonical_reason().unwrap_or("Error")) }
        p.problem { (message) }
        p { a href="/runs" { "Runs" } }
    };
    (status, frame("Error", html! { main.narrow { (body) } })).into_response()
}

/// `text` percent-encoded for one URL path segment or query value.
pub(crate) fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A time in UTC, as the command line prints it.
pub(crate) fn time(ms: u64) -> String {
    crate::render::time(ms)
}

/// A status as a coloured badge.
pub(crate) fn status_badge(status: Status) -> Markup {
    let class = if status.needs_attention() {
        "attention"
    } else if status.is_settled() {
        match status {
            Status::Completed => "ok",
            _ => "ended",
        }
    } else {
        "live"
    };
    html! { span class={ "status " (class) } data-status=(status.as_str()) { (status.as_str()) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parts_are_encoded() {
        assert_eq!(enc("order-42"), "order-42");
        assert_eq!(enc("a/b c?&"), "a%2Fb%20c%3F%26");
    }
}
