//! The console test's harness: the `steadfast ui` process, chromedriver
//! with headless Chromium, and the workflow the runs are of.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client as Browser, ClientBuilder, Locator};

use crate::redis_server::free_port;

/// Kills a child process when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `steadfast ui` on a free port, and where it listens.
pub struct Console {
    pub proc: Proc,
    pub base: String,
    pub stderr: std::sync::mpsc::Receiver<String>,
}

impl Console {
    /// Starts the console against `redis_url` with `extra` arguments and
    /// waits until it says where it listens.
    pub fn start(redis_url: &str, extra: &[&str], token: Option<&str>) -> Console {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_steadfast"));
        cmd.args([
            "--redis-url",
            redis_url,
            "ui",
            "--listen",
            "127.0.0.1:0",
            "--live-interval-ms",
            "200",
        ])
        .args(extra)
        .env_remove("REDIS_URL")
        .env_remove("STEADFAST_UI_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        if let Some(t) = token {
            cmd.env("STEADFAST_UI_TOKEN", t);
        }
        let mut child = cmd.spawn().expect("starts steadfast ui");
        let stderr = child.stderr.take().expect("has stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let proc = Proc(child);
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the console says where it listens");
        let base = first
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .map(|addr| format!("http://{addr}"))
            .unwrap_or_else(|| panic!("unexpected first line of steadfast ui: {first}"));
        Console {
            proc,
            base,
            stderr: rx,
        }
    }

    /// Everything the console printed since it started listening.
    pub fn log(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }
}

/// Whether the browser test may be skipped: only when asked explicitly.
pub fn skip_requested() -> bool {
    std::env::var("STEADFAST_SKIP_BROWSER_TEST").is_ok_and(|v| v == "1")
}

/// Panics with how to install a missing browser tool.
pub fn require_tool(path: &str, package: &str) {
    assert!(
        std::path::Path::new(path).exists(),
        "`{path}` is missing: the console test drives headless Chromium over WebDriver. \
         Install it (Debian: `apt-get install chromium chromium-driver`; `.ci/run` does), \
         or set STEADFAST_SKIP_BROWSER_TEST=1 to skip this test knowingly ({package})"
    );
}

/// chromedriver on a free port, and a headless Chromium session on it.
pub struct Driver {
    _proc: Proc,
    _profile: std::path::PathBuf,
    pub browser: Browser,
}

impl Driver {
    pub async fn start() -> Driver {
        require_tool("/usr/bin/chromium", "chromium");
        require_tool("/usr/bin/chromedriver", "chromium-driver");
        let port = free_port();
        let proc = Proc(
            Command::new("/usr/bin/chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starts chromedriver"),
        );
        let profile =
            std::env::temp_dir().join(format!("steadfast-chromium-{}-{port}", std::process::id()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,1300", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let browser = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(b) => break b,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot start a Chromium session through chromedriver: {e}"),
            }
        };
        Driver {
            _proc: proc,
            _profile: profile,
            browser,
        }
    }

    /// Ends the session (the browser quits).
    pub async fn close(self) {
        let _ = self.browser.clone().close().await;
        let _ = std::fs::remove_dir_all(&self._profile);
    }
}

/// The text of the first element matching `css` (read again when the
/// live update swapped the element meanwhile).
pub async fn text(b: &Browser, css: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let read = match b.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match read {
            Ok(t) => return t,
            Err(e) if Instant::now() > deadline => panic!("no `{css}` on the page: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Waits up to 15 s until the text of `css` contains `want`.
pub async fn wait_text(b: &Browser, css: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = match b.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if now.contains(want) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "`{css}` shows `{now}`, never `{want}`"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Saves a screenshot of the page: to `target/console-screenshots/<name>`
/// at the workspace root, or to `docs/<name>` (the screenshots the docs
/// show) when `STEADFAST_UPDATE_SCREENSHOTS=1`, so a test run does not
/// rewrite committed files.
pub async fn screenshot(b: &Browser, name: &str) {
    let png = b.screenshot().await.expect("takes a screenshot");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = if std::env::var("STEADFAST_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        root.join("docs")
    } else {
        root.join("target").join("console-screenshots")
    };
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let path = dir.join(name);
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
