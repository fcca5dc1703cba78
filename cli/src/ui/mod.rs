//! `steadfast ui`: the web console. Server-rendered pages over the same
//! store and [`steadfast_runtime::Client`] calls as the other commands; a
//! small vendored script follows a run's changes. See `docs/console.md`.
//!
//! | file | job |
//! |---|---|
//! | `server.rs` | options, the bind rules, starting the server |
//! | `routes.rs` | the URL map and the state every handler shares |
//! | `auth.rs` | the optional token, the session cookie it buys |
//! | `actions.rs` | POSTed actions: confirmation, cross-site checks, read-only |
//! | `pages/` | the pages: runs, one run, schedules, the layout around them |
//! | `diagram.rs` | a workflow's state graph as SVG, with a run's path on it |
//! | `assets/` | the script and the style sheet, served by the binary |

mod actions;
mod auth;
mod diagram;
mod pages;
mod routes;
mod secret;
mod server;

pub(crate) use secret::Secret;
pub(crate) use server::{UiArgs, UiError, serve};
