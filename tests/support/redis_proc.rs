//! One `redis-server` (or Sentinel) process for the topology fixtures: a
//! free port on loopback, its own directory, killed when dropped. Never
//! touches 6379. The directory is removed by the fixture that owns it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::redis_server::{free_port, serves};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Panics with how to install `binary` when it is missing.
pub fn require(binary: &str, package: &str) {
    match Command::new(binary).arg("--version").output() {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{binary}` is not installed, and the Redis topology tests start their own servers: \
             install it (Debian/Ubuntu: `apt-get install {package}`) or run `.ci/run`, which does"
        ),
        Err(e) => panic!("cannot run {binary}: {e}"),
    }
}

/// A fresh private directory under the system's temporary directory.
pub fn private_dir(kind: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "steadfast-{kind}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("creates a private directory");
    dir
}

/// A running server process.
pub struct RedisProcess {
    child: Option<Child>,
    /// Its (plain text) port.
    pub port: u16,
    /// Its directory (data, log, config).
    pub dir: PathBuf,
    /// `--user`, `--pass` for `redis-cli`, once the default user has a
    /// password.
    pub auth: Option<(String, String)>,
}

impl RedisProcess {
    /// Starts `redis-server` in `dir` with the common settings (loopback,
    /// no persistence, a log file) and `extra` arguments, on a free port
    /// (another is tried when a test took it first). `config` is written
    /// to `redis.conf` and passed first when given (Sentinels need one).
    pub fn start(dir: &Path, config: Option<&str>, extra: &[String]) -> Self {
        require("redis-server", "redis-server");
        let mut failure = String::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn(dir, port, config, extra) {
                Ok(child) => {
                    return RedisProcess {
                        child: Some(child),
                        port,
                        dir: dir.to_owned(),
                        auth: None,
                    };
                }
                Err(e) => failure = e,
            }
        }
        panic!("{failure}");
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills it with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends it a signal with `kill` (`STOP`, `CONT`, ...).
    pub fn signal(&self, signal: &str) {
        let Some(pid) = self.pid() else {
            panic!("node {} is not running", self.port)
        };
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("runs kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// Runs `redis-cli` against it and returns its output (`--raw`).
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.arg("-p").arg(self.port.to_string()).arg("--raw");
        if let Some((user, pass)) = &self.auth {
            cmd.arg("--user")
                .arg(user)
                .arg("--pass")
                .arg(pass)
                .arg("--no-auth-warning");
        }
        let out = cmd
            .args(args)
            .output()
            .expect("runs redis-cli (installed with redis-server)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The value of `field` in `INFO <section>`.
    pub fn info_field(&self, section: &str, field: &str) -> Option<String> {
        let prefix = format!("{field}:");
        self.cli(&["INFO", section])
            .lines()
            .find_map(|l| l.strip_prefix(&prefix).map(|v| v.trim().to_owned()))
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(dir: &Path, port: u16, config: Option<&str>, extra: &[String]) -> Result<Child, String> {
    let log = dir.join(format!("redis-{port}.log"));
    let mut cmd = Command::new("redis-server");
    if let Some(config) = config {
        let file = dir.join(format!("redis-{port}.conf"));
        std::fs::write(&file, config).map_err(|e| format!("cannot write {file:?}: {e}"))?;
        cmd.arg(file);
    }
    cmd.arg("--port")
        .arg(port.to_string())
        .arg("--bind")
        .arg("127.0.0.1")
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(&log)
        .arg("--daemonize")
        .arg("no")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start redis-server: {e}"))?;
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if serves(port, pid) {
            return Ok(child);
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    Err(format!("redis-server on port {port} did not start:\n{log}"))
}

/// Polls `check` every 50 ms until it holds or `within` passes; panics
/// with `what` and the last observation otherwise.
pub fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + within;
    loop {
        match check() {
            Ok(()) => return,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {within:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
