//! A private `redis-server` with the users of `docs/operations.md`: the
//! `ACL SETUSER` lines are read from the page and sent as they are (with
//! the passwords filled in), so the documented lines stay the tested ones.
//! The `default` user gets a password, so a client without one is refused.

use std::path::PathBuf;

use super::redis_proc::{RedisProcess, private_dir};

/// The password of each test user (never printed by the code under test).
pub const ADMIN_PASSWORD: &str = "admin-Secr3t-9f2";
pub const WORKER_PASSWORD: &str = "worker-Secr3t-7c1";
pub const READER_PASSWORD: &str = "reader-Secr3t-4b8";

pub struct RedisAcl {
    pub server: RedisProcess,
    dir: PathBuf,
}

/// The `ACL SETUSER` lines of `docs/operations.md` for `user`, with
/// comments removed and the password placeholders filled in.
pub fn documented_acl_lines(user: &str) -> Vec<String> {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .expect("reads docs/operations.md");
    let prefix = format!("ACL SETUSER {user} ");
    let lines: Vec<String> = docs
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| {
            l.split(" #")
                .next()
                .unwrap_or(l)
                .trim()
                .replace("WORKER_PASSWORD", WORKER_PASSWORD)
                .replace("READER_PASSWORD", READER_PASSWORD)
        })
        .collect();
    assert!(
        !lines.is_empty(),
        "docs/operations.md has no `{prefix}` line"
    );
    lines
}

impl RedisAcl {
    /// Starts a server, creates `steadfast-worker` and `steadfast-reader`
    /// as documented (`extras`: the optional worker lines to apply too,
    /// matched by a word they contain, such as `+config|get`), a worker
    /// without scripting (`steadfast-noscript`), one without `XADD` and
    /// the subscription pattern (`steadfast-partial`), and protects
    /// `default`.
    pub fn start(extras: &[&str]) -> Self {
        let dir = private_dir("acl");
        let extra: Vec<String> = ["--save", "", "--appendonly", "no"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let server = RedisProcess::start(&dir, None, &extra);
        // Owned from here, so that a failed line below still removes it.
        let mut acl = RedisAcl { server, dir };
        let worker = documented_acl_lines("steadfast-worker");
        let base = worker.first().cloned().unwrap_or_default();
        let mut lines = vec![base.clone()];
        for line in worker.iter().skip(1) {
            if extras.iter().any(|e| line.contains(e)) {
                lines.push(line.clone());
            }
        }
        lines.extend(documented_acl_lines("steadfast-reader"));
        // The same user less the scripts.
        lines.push(format!(
            "{} -evalsha -script|load",
            base.replace("steadfast-worker", "steadfast-noscript")
        ));
        // The same user without the subscription pattern and `XADD`.
        lines.push(
            base.replace("steadfast-worker", "steadfast-partial")
                .replace(" &steadfast:{s*}:settled", "")
                .replace(" +xadd", ""),
        );
        for extra in extras {
            lines.push(format!("ACL SETUSER steadfast-noscript {extra}"));
        }
        lines.push(format!("ACL SETUSER default on >{ADMIN_PASSWORD}"));
        for line in &lines {
            let args = split_words(line);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = acl.server.cli(&args);
            assert_eq!(out.trim(), "OK", "{line}: {out}");
            if line.starts_with("ACL SETUSER default") {
                acl.server.auth = Some(("default".into(), ADMIN_PASSWORD.into()));
            }
        }
        acl
    }

    /// `redis://user:password@127.0.0.1:<port>/`, percent-encoding nothing
    /// (the test passwords need none).
    pub fn url(&self, user: &str, password: &str) -> String {
        format!("redis://{user}:{password}@127.0.0.1:{}/", self.server.port)
    }

    /// The URL without credentials.
    pub fn url_without_credentials(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.server.port)
    }
}

impl Drop for RedisAcl {
    fn drop(&mut self) {
        self.server.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Words of a command line (no quoting is used in the documented lines).
fn split_words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}
