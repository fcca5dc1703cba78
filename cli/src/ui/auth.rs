//! The optional token. A visitor gives it once on `/login` (or sends it as
//! `Authorization: Bearer <token>`) and gets a session cookie whose value
//! is a random secret of this process, not the token. Without a token the
//! console is open to whoever reaches its address (loopback by default).

use std::sync::Arc;

use axum::Form;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::actions::same_origin;
use super::pages::layout;
use super::routes::App;

/// The session cookie's name.
const COOKIE: &str = "steadfast_session";

/// Lets a request through when no token is set, when it carries the
/// session cookie or the token, or when it asks for the login page or
/// the assets.
pub(crate) async fn require(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let Some(token) = app.token() else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    if path == "/login" || path.starts_with("/assets/") {
        return next.run(request).await;
    }
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let by_token = bearer.is_some_and(|b| token.matches(b));
    let by_cookie = cookie(headers, COOKIE).is_some_and(|c| app.session.matches(c));
    if by_token || by_cookie {
        return next.run(request).await;
    }
    if request.method() == Method::GET {
        Redirect::to("/login").into_response()
    } else {
        layout::error_page(
            StatusCode::UNAUTHORIZED,
            "Give the console's token on the login page first.",
        )
    }
}

/// The value of cookie `name`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The login form.
pub(crate) async fn login_page(State(app): State<Arc<App>>) -> Response {
    if !app.has_token() {
        return Redirect::to("/runs").into_response();
    }
    login_form(StatusCode::OK, None)
}

fn login_form(status: StatusCode, problem: Option<&str>) -> Response {
    let body = html! {
        h1 { "Log in" }
        @if let Some(p) = problem { p.problem { (p) } }
        form method="post" action="/login" {
            label { "Token " input type="password" name="token" autocomplete="current-password" autofocus; }
            " "
            button type="submit" { "Log in" }
        }
        p.hint { "The token the console was started with (STEADFAST_UI_TOKEN)." }
    };
    (status, layout::bare("Log in", body)).into_response()
}

/// The login form's fields.
#[derive(Deserialize)]
pub(crate) struct Login {
    token: String,
}

/// Checks the token; on success sets the session cookie.
pub(crate) async fn login(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    let Some(token) = app.token() else {
        return Redirect::to("/runs").into_response();
    };
    if !same_origin(&headers) {
        return layout::error_page(StatusCode::FORBIDDEN, "Cross-site requests are refused.");
    }
    if !token.matches(&form.token) {
        return login_form(StatusCode::UNAUTHORIZED, Some("That is not the token."));
    }
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        app.session.expose()
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/runs")).into_response()
}
