//! A private `redis-server` for one test: a free port on loopback, its own
//! data directory, killed and removed when dropped. Never touches 6379.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// How the server keeps data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// No persistence: fastest, for tests that never restart Redis.
    None,
    /// `appendonly yes`, `appendfsync always`: nothing acknowledged is lost.
    Always,
    /// `appendonly yes`, `appendfsync everysec`.
    EverySec,
}

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    durability: Durability,
}

impl RedisServer {
    /// A server without persistence.
    pub fn start() -> Self {
        Self::start_with(Durability::None)
    }

    pub fn start_with(durability: Durability) -> Self {
        match Command::new("redis-server").arg("--version").output() {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed, and the Redis tests start their own: install it \
                 (Debian/Ubuntu: `apt-get install redis-server`; macOS: `brew install redis`) \
                 or run `.ci/run`, which installs it"
            ),
            Err(e) => panic!("cannot run redis-server: {e}"),
        }
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "steadfast-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("creates the data directory");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            durability,
        };
        // Another test may take the free port before this server binds it:
        // then try another.
        let mut failure = String::new();
        for _ in 0..5 {
            match server.try_spawn() {
                Ok(()) => return server,
                Err(e) => {
                    failure = e;
                    server.port = free_port();
                }
            }
        }
        panic!("{failure}");
    }

    fn try_spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--save")
            .arg("")
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .arg("--daemonize")
            .arg("no");
        match self.durability {
            Durability::None => {
                cmd.arg("--appendonly").arg("no");
            }
            Durability::Always => {
                cmd.arg("--appendonly")
                    .arg("yes")
                    .arg("--appendfsync")
                    .arg("always");
            }
            Durability::EverySec => {
                cmd.arg("--appendonly")
                    .arg("yes")
                    .arg("--appendfsync")
                    .arg("everysec");
            }
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts redis-server");
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            // Ours answers, not another test's server that took the port
            // between `free_port` and this start.
            if serves(self.port, pid) {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        Err(format!(
            "redis-server on port {} did not start:\n{log}",
            self.port
        ))
    }

    fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("{e}");
        }
    }

    /// The server process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server with SIGKILL (no chance to save anything).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs `redis-cli` against the server and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("runs redis-cli (installed with redis-server)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds a free port");
    let port = listener.local_addr().expect("has an address").port();
    assert_ne!(port, 6379);
    port
}

/// Whether the server on `port` answers and is the process `pid`.
pub fn serves(port: u16, pid: u32) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"INFO server\r\n").is_err() {
        return false;
    }
    let want = format!("process_id:{pid}\r\n");
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    // The reply is one bulk string of a few KB; read until the field shows.
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        if text.contains(&want) {
            return true;
        }
        if text.contains("process_id:") && text.contains("\r\nrun_id:") {
            return false;
        }
    }
    false
}
