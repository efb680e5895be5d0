//! A private `redis-server` per test: a unix socket in a temporary directory, no TCP port,
//! `appendonly yes` + `appendfsync always`, data in the same directory so it can be killed and
//! restarted on the same data. Never the machine's shared Redis.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use walden_redis::{RedisBackend, RedisConfig};

/// How long a server may take to start accepting connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct RedisServer {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    child: Option<Child>,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server in a new temporary directory.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts a server with extra `--name value` arguments.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = RedisServer {
            dir: tmp.path().to_path_buf(),
            _tmp: Some(tmp),
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn();
        s
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    pub fn config(&self) -> RedisConfig {
        let mut c = RedisConfig::new(self.url());
        c.timeout = Duration::from_secs(5);
        c
    }

    pub fn backend(&self) -> RedisBackend {
        RedisBackend::connect(self.config()).unwrap()
    }

    pub fn spawn(&mut self) {
        assert!(self.child.is_none());
        let _ = std::fs::remove_file(self.socket());
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(self.socket())
            .arg("--unixsocketperm")
            .arg("700")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--appendonly")
            .arg("yes")
            .arg("--appendfsync")
            .arg("always")
            .arg("--save")
            .arg("")
            .arg("--daemonize")
            .arg("no")
            .arg("--logfile")
            .arg(self.dir.join("redis.log"));
        for a in &self.extra {
            cmd.arg(a);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install -y redis-server)");
        self.child = Some(child);
        wait_ready(&self.socket());
    }

    /// SIGKILL: no shutdown, no final fsync.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal (`STOP`, `CONT`) to the server process.
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
        assert!(status.unwrap().success());
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn wait_ready(socket: &Path) {
    let deadline = Instant::now() + START_TIMEOUT;
    let url = format!("redis+unix://{}", socket.display());
    loop {
        if socket.exists() {
            if let Ok(client) = redis::Client::open(url.as_str()) {
                if let Ok(mut con) = client.get_connection_with_timeout(Duration::from_secs(1)) {
                    if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                        return;
                    }
                }
            }
        }
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
