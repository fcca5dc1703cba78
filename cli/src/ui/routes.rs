//! The URL map, and the state every handler shares.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use steadfast_runtime::{Client, Store};

use super::pages::layout;
use super::{Secret, actions, auth, pages};

/// What every handler shares: the store, the client that carries out
/// actions, and the console's secrets.
pub(crate) struct App {
    /// The store the workers use.
    pub(crate) store: Arc<dyn Store>,
    /// Actions go through the same client calls as the command line.
    pub(crate) client: Client,
    /// Whether actions are refused.
    pub(crate) read_only: bool,
    /// The token visitors must give, if any.
    token: Option<Secret>,
    /// The session cookie's value, given for the token (so the token
    /// itself is never stored in the browser).
    pub(crate) session: Secret,
    /// The cross-site request token every form carries.
    pub(crate) csrf: Secret,
    /// How often an open run page asks for changes (ms).
    pub(crate) live_interval_ms: u64,
}

impl App {
    /// The state of a console on `store`.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        read_only: bool,
        token: Option<Secret>,
        live_interval_ms: u64,
    ) -> Self {
        App {
            client: Client::new_shared(Arc::clone(&store)),
            store,
            read_only,
            token,
            session: Secret::random(),
            csrf: Secret::random(),
            live_interval_ms,
        }
    }

    /// Whether visitors must give a token.
    pub(crate) fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The token, to check a visitor's against.
    pub(crate) fn token(&self) -> Option<&Secret> {
        self.token.as_ref()
    }
}

/// The console's routes.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/runs") }))
        .route("/runs", get(pages::runs::page))
        .route("/runs/{id}", get(pages::run::page))
        .route("/runs/{id}/live", get(pages::run::live))
        .route("/runs/{id}/{action}", post(actions::run_action))
        .route("/schedules", get(pages::schedules::page))
        .route("/schedules/{id}/{action}", post(actions::schedule_action))
        .route("/catalog", get(pages::catalog::page))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/assets/console.js", get(script))
        .route("/assets/console.css", get(style))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            auth::require,
        ))
        .layer(axum::middleware::from_fn(headers))
        .with_state(app)
}

/// Headers on every answer: no framing by other sites, no sniffing, no
/// scripts but ours, no caching of pages that show runs.
async fn headers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("assets/console.js"),
    )
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        include_str!("assets/console.css"),
    )
}

async fn not_found() -> Response {
    layout::error_page(StatusCode::NOT_FOUND, "No such page.")
}
