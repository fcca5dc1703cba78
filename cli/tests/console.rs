//! The web console (`steadfast ui`) as a person uses it: a real headless
//! Chromium driven over WebDriver, against a private redis-server with
//! real runs driven by a real worker. The list shows the runs, a run's
//! diagram highlights the state Redis holds, actions (resume, cancel)
//! change the runs in Redis and the open page follows without reloading.
//! Screenshots of the list and of a run page are saved to `docs/`.
//!
//! Needs `chromium` and `chromium-driver` (Debian packages; `.ci/run`
//! installs them): the test fails without them, unless
//! `STEADFAST_SKIP_BROWSER_TEST=1` says to skip it.
#![allow(missing_docs, unreachable_pub)]

#[allow(dead_code)]
mod console_support;
#[allow(dead_code)]
mod desk_workflow;
#[allow(dead_code)]
#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use console_support::{Console, Driver, screenshot, skip_requested, text, wait_text};
use desk_workflow::{Broken, Go, desk};
use fantoccini::Locator;
use redis_server::RedisServer;
use steadfast::prelude::*;
use steadfast::{RedisStore, Status, Store};

const TOKEN: &str = "console-test-token-5f2a";

async fn waiting_for_go(client: &Client, id: &str) {
    for _ in 0..500 {
        let r = client
            .describe(id)
            .await
            .expect("describes")
            .expect("exists");
        if r.wait().is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("`{id}` never waited for its signal");
}

async fn status_in_redis(store: &RedisStore, id: &str, want: Status) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = store
            .load(id)
            .await
            .expect("loads")
            .expect("exists")
            .status();
        if now == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "`{id}` is {now} in Redis, never {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A plain HTTP request to the console; returns the status and the body.
fn http(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connects to the console");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if method == "POST" {
        req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("sends");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("reads");
    let code = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out)
}

/// Runs of every kind: waiting (desk-1, desk-4, desk-5), completed
/// (desk-2), a failed compensation (desk-3).
async fn runs(store: &RedisStore, client: &Client) {
    for id in ["desk-1", "desk-2", "desk-3", "desk-4", "desk-5"] {
        client
            .start::<desk>(id, (id.to_owned(), id != "desk-3"))
            .await
            .expect("starts");
        waiting_for_go(client, id).await;
    }
    client
        .signal("desk-2", Go { by: "ada".into() })
        .await
        .expect("signals");
    client
        .signal("desk-3", Go { by: "bob".into() })
        .await
        .expect("signals");
    status_in_redis(store, "desk-2", Status::Completed).await;
    status_in_redis(store, "desk-3", Status::CompensationFailed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_lists_runs_draws_their_state_and_acts_on_them() {
    if skip_requested() {
        eprintln!("skipped: STEADFAST_SKIP_BROWSER_TEST=1");
        return;
    }
    let started = Instant::now();
    let server = RedisServer::start();
    let url = server.url();
    let store = RedisStore::builder(url.as_str())
        .check_persistence(false)
        .connect()
        .await
        .expect("connects");
    let broken = Broken::default();
    broken.0.store(true, std::sync::atomic::Ordering::SeqCst);
    let worker = Worker::builder(store.clone())
        .register::<desk>()
        .resource(broken.clone())
        .poll_wait(Duration::from_millis(50))
        .build()
        .expect("builds")
        .spawn();
    let client = Client::new(store.clone());
    runs(&store, &client).await;

    let console = Console::start(&url, &[], Some(TOKEN));
    let driver = Driver::start().await;
    let b = &driver.browser;
    let base = console.base.clone();

    // The token is asked for first.
    b.goto(&format!("{base}/runs"))
        .await
        .expect("opens the console");
    b.wait()
        .for_element(Locator::Css("input[name=token]"))
        .await
        .expect("asks for the token");
    b.find(Locator::Css("input[name=token]"))
        .await
        .expect("token field")
        .send_keys(TOKEN)
        .await
        .expect("types");
    b.find(Locator::Css("button[type=submit]"))
        .await
        .expect("button")
        .click()
        .await
        .expect("logs in");
    b.wait()
        .for_element(Locator::Css("table#runs"))
        .await
        .expect("shows the runs");

    // The list shows the runs of each index.
    let active = text(b, "table#runs").await;
    for id in ["desk-1", "desk-4", "desk-5"] {
        assert!(active.contains(id), "the list shows {id}:\n{active}");
    }
    assert!(
        !active.contains("desk-2"),
        "finished runs are on their own tab:\n{active}"
    );
    screenshot(b, "console-runs.png").await;
    b.goto(&format!("{base}/runs?list=attention"))
        .await
        .expect("opens");
    let attention = text(b, "table#runs").await;
    assert!(
        attention.contains("desk-3") && attention.contains("compensation_failed"),
        "{attention}"
    );
    b.goto(&format!("{base}/runs?list=finished&status=completed"))
        .await
        .expect("opens");
    assert!(text(b, "table#runs").await.contains("desk-2"));
    b.goto(&format!("{base}/runs?q=desk-5"))
        .await
        .expect("searches");
    assert!(
        b.current_url()
            .await
            .expect("url")
            .path()
            .ends_with("/runs/desk-5"),
        "a search by id opens the run"
    );

    // A run's diagram highlights the state Redis holds, and the path.
    let step = store
        .load("desk-1")
        .await
        .expect("loads")
        .expect("exists")
        .step()
        .to_owned();
    b.goto(&format!("{base}/runs/desk-1"))
        .await
        .expect("opens the run");
    let current = b
        .find(Locator::Css("svg.diagram g[data-current='true']"))
        .await
        .expect("a state is highlighted");
    assert_eq!(
        current.attr("data-state").await.expect("attr").as_deref(),
        Some(step.as_str())
    );
    assert!(
        b.find(Locator::Css("svg.diagram g.visited[data-state='book#0']"))
            .await
            .is_ok(),
        "the state it went through is marked"
    );
    assert!(
        b.find(Locator::Css("svg.diagram path.compensation"))
            .await
            .is_ok(),
        "compensation edges are drawn"
    );
    assert!(
        text(b, "#waits").await.contains("go"),
        "it says what the run waits for"
    );
    assert!(
        text(b, "#compensations").await.contains("unbook"),
        "it lists the compensation owed"
    );
    screenshot(b, "console-run.png").await;

    // The open page follows a change made elsewhere, without reloading.
    b.goto(&format!("{base}/runs/desk-4"))
        .await
        .expect("opens the run");
    b.execute("window.steadfastMarker = 42; return 1;", vec![])
        .await
        .expect("marks the page");
    client
        .signal("desk-4", Go { by: "cy".into() })
        .await
        .expect("signals");
    wait_text(b, "#status", "completed").await;
    let marker = b
        .execute("return window.steadfastMarker;", vec![])
        .await
        .expect("reads the mark");
    assert_eq!(marker, serde_json::json!(42), "the page was not reloaded");

    // Resume: the cause fixed, the operator resumes the failed compensation.
    broken.0.store(false, std::sync::atomic::Ordering::SeqCst);
    b.goto(&format!("{base}/runs/desk-3"))
        .await
        .expect("opens the run");
    b.find(Locator::Css("#actions input[name=note]"))
        .await
        .expect("note")
        .send_keys("booking system fixed")
        .await
        .expect("types");
    b.find(Locator::Css("#resume"))
        .await
        .expect("resume button")
        .click()
        .await
        .expect("clicks");
    b.wait()
        .for_element(Locator::Css("#confirm"))
        .await
        .expect("asks to confirm");
    assert_eq!(
        store
            .load("desk-3")
            .await
            .expect("loads")
            .expect("exists")
            .status(),
        Status::CompensationFailed,
        "nothing happens before the confirmation"
    );
    b.find(Locator::Css("#confirm"))
        .await
        .expect("confirm")
        .click()
        .await
        .expect("confirms");
    b.wait()
        .for_element(Locator::Css("#notice"))
        .await
        .expect("back on the run page");
    b.execute("window.steadfastMarker = 7; return 1;", vec![])
        .await
        .expect("marks the page");
    status_in_redis(&store, "desk-3", Status::Failed).await;
    wait_text(b, "#status", "failed").await;
    assert!(
        text(b, "#history")
            .await
            .contains("resumed by an operator: booking system fixed")
    );

    // Cancel a waiting run.
    b.goto(&format!("{base}/runs/desk-5"))
        .await
        .expect("opens the run");
    b.find(Locator::Css("#cancel"))
        .await
        .expect("cancel button")
        .click()
        .await
        .expect("clicks");
    // The confirmation is a page of its own: wait for it to load.
    b.wait()
        .for_element(Locator::Css("#confirm"))
        .await
        .expect("asks to confirm")
        .click()
        .await
        .expect("confirms");
    b.wait()
        .for_element(Locator::Css("#notice"))
        .await
        .expect("back on the run page");
    status_in_redis(&store, "desk-5", Status::Cancelled).await;
    wait_text(b, "#status", "cancelled").await;
    let marker = b
        .execute("return window.steadfastMarker;", vec![])
        .await
        .expect("reads the mark");
    assert_eq!(
        marker,
        serde_json::Value::Null,
        "a new page after the action (the mark is gone)"
    );

    // The token is never shown: not in pages, not in the console's output.
    for page in ["/runs", "/runs/desk-3", "/schedules", "/catalog"] {
        b.goto(&format!("{base}{page}")).await.expect("opens");
        let source = b.source().await.expect("reads the page");
        assert!(!source.contains(TOKEN), "{page} shows the token");
    }
    driver.close().await;
    let log = console.log();
    assert!(
        !log.contains(TOKEN),
        "the console printed its token:\n{log}"
    );
    worker.shutdown().await.expect("stops");
    eprintln!("browser test took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_are_refused_from_other_sites_without_a_token_and_in_read_only_mode() {
    let server = RedisServer::start();
    let url = server.url();
    let store = RedisStore::builder(url.as_str())
        .check_persistence(false)
        .connect()
        .await
        .expect("connects");
    let client = Client::new(store.clone());
    client
        .start::<desk>("desk-9", ("desk-9".into(), true))
        .await
        .expect("starts");

    // A token is required before anything is shown or done.
    let guarded = Console::start(&url, &[], Some(TOKEN));
    let (code, _) = http(&guarded.base, "GET", "/runs", &[], "");
    assert_eq!(
        code, 303,
        "visitors without the token are sent to the login page"
    );
    let (code, body) = http(
        &guarded.base,
        "GET",
        "/runs",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        "",
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("desk-9"));
    let (code, _) = http(
        &guarded.base,
        "POST",
        "/runs/desk-9/cancel",
        &[],
        "confirmed=yes",
    );
    assert_eq!(code, 401);
    let (code, body) = http(&guarded.base, "POST", "/login", &[], "token=wrong");
    assert_eq!(code, 401);
    assert!(!body.contains(TOKEN));
    drop(guarded);

    let open = Console::start(&url, &[], None);
    let (_, page) = http(&open.base, "GET", "/runs/desk-9", &[], "");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("forms carry the cross-site token")
        .to_owned();
    // Without the form's token, or from another site: refused.
    let (code, _) = http(
        &open.base,
        "POST",
        "/runs/desk-9/cancel",
        &[],
        "confirmed=yes&csrf=forged",
    );
    assert_eq!(code, 403);
    let body = format!("confirmed=yes&csrf={csrf}");
    let (code, _) = http(
        &open.base,
        "POST",
        "/runs/desk-9/cancel",
        &[("Origin", "http://evil.example")],
        &body,
    );
    assert_eq!(code, 403);
    let (code, _) = http(
        &open.base,
        "POST",
        "/runs/desk-9/cancel",
        &[("Sec-Fetch-Site", "cross-site")],
        &body,
    );
    assert_eq!(code, 403);
    assert!(
        store
            .load("desk-9")
            .await
            .expect("loads")
            .expect("exists")
            .interrupt
            .is_none(),
        "nothing was written"
    );
    // Unconfirmed: a confirmation page, nothing done.
    let (code, confirm) = http(
        &open.base,
        "POST",
        "/runs/desk-9/cancel",
        &[],
        &format!("csrf={csrf}&reason=%3Cscript%3E"),
    );
    assert_eq!(code, 200);
    assert!(confirm.contains("id=\"confirm\""));
    assert!(
        confirm.contains("&lt;script&gt;") && !confirm.contains("<script>alert"),
        "what a visitor typed is escaped"
    );
    assert!(
        store
            .load("desk-9")
            .await
            .expect("loads")
            .expect("exists")
            .interrupt
            .is_none()
    );
    // Confirmed, from the console's own page: done through the client.
    let (code, _) = http(
        &open.base,
        "POST",
        "/runs/desk-9/cancel",
        &[("Origin", &open.base), ("Sec-Fetch-Site", "same-origin")],
        &body,
    );
    assert_eq!(code, 303);
    assert!(
        store
            .load("desk-9")
            .await
            .expect("loads")
            .expect("exists")
            .interrupt
            .is_some(),
        "the stop request is stored"
    );
    // A signal, then its removal from the buffer, confirmed.
    let same_site = [
        ("Origin", open.base.as_str()),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    let signal = format!("confirmed=yes&csrf={csrf}&name=go&payload=%7B%22by%22%3A%22dee%22%7D");
    let (code, _) = http(
        &open.base,
        "POST",
        "/runs/desk-9/signal",
        &same_site,
        &signal,
    );
    assert_eq!(code, 303);
    let buffered = store
        .load("desk-9")
        .await
        .expect("loads")
        .expect("exists")
        .signals;
    assert_eq!(buffered.len(), 1, "the signal is buffered: {buffered:?}");
    let (_, page) = http(&open.base, "GET", "/runs/desk-9", &[], "");
    assert!(
        page.contains(&format!("data-nonce=\"{}\"", buffered[0].nonce)),
        "the page lists it"
    );
    let remove = format!(
        "confirmed=yes&csrf={csrf}&nonce={}&note=wrong",
        buffered[0].nonce
    );
    let (code, _) = http(
        &open.base,
        "POST",
        "/runs/desk-9/remove-signal",
        &same_site,
        &remove,
    );
    assert_eq!(code, 303);
    let buffered = store
        .load("desk-9")
        .await
        .expect("loads")
        .expect("exists")
        .signals;
    assert!(buffered.is_empty(), "the signal is removed: {buffered:?}");
    drop(open);

    let read_only = Console::start(&url, &["--read-only"], None);
    let (_, page) = http(&read_only.base, "GET", "/runs/desk-9", &[], "");
    assert!(
        !page.contains("id=\"actions\"") && page.contains("read-only"),
        "no actions are offered"
    );
    let (code, _) = http(
        &read_only.base,
        "POST",
        "/runs/desk-9/terminate",
        &[],
        &body,
    );
    assert_eq!(code, 403, "the server refuses them too");

    // Listening beyond loopback needs a token.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_steadfast"))
        .args(["--redis-url", &url, "ui", "--listen", "0.0.0.0:0"])
        .env_remove("STEADFAST_UI_TOKEN")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without a token"));
}
