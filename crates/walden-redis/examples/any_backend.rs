//! One application, two backends: the same code runs on an embedded store or on Redis, chosen
//! by configuration (here: the command line).
//!
//! ```text
//! cargo run -p walden-redis --example any_backend -- embedded [DIR]
//! cargo run -p walden-redis --example any_backend -- redis [URL]
//! ```
//! Without a URL, `redis` starts a private `redis-server` on a unix socket in a temporary
//! directory (`appendonly yes`, `appendfsync always`) and stops it at the end.

use std::sync::Arc;
use std::time::Duration;

use walden::api::{Admission, Backend, DocumentsExt, KeyRange};
use walden::{Batch, BreakerConfig, Error, Quota, Store};
use walden_redis::{RedisBackend, RedisConfig};

/// The application: written once against `dyn Backend`.
pub fn tour(backend: &dyn Backend) -> walden::Result<()> {
    println!("backend: {:?}", backend.guarantees());

    // Documents with versions: optimistic concurrency.
    let v = backend.put("accounts", "alice", &100)?;
    match backend.put_if_version("accounts", "alice", &90, v + 1) {
        Err(Error::Conflict { current, .. }) => {
            println!("stale write refused; current {current:?}")
        }
        Ok(version) => println!("unexpected: wrote version {version}"),
        Err(e) => println!("unexpected: {e}"),
    }
    let mut transfer = Batch::new();
    transfer.put_if_version("accounts", "alice", &70, v).insert("accounts", "bob", &30);
    println!("transfer versions: {:?}", backend.commit(transfer)?);
    backend.update::<u64, _>("counters", "visits", |n| Some(n.unwrap_or(0) + 1))?;
    for (key, doc) in backend.scan::<u64>("accounts", &KeyRange::all())? {
        println!("  {key} = {} (v{})", doc.value, doc.version);
    }

    // A rate limiter shared by every process on the backend.
    let login = backend.rate_limiter("login", Quota::per_minute(3))?;
    for _ in 0..4 {
        let d = login.check("ip:10.0.0.1")?;
        println!(
            "login allowed={} remaining={} retry_after={:?}",
            d.allowed, d.remaining, d.retry_after
        );
    }
    login.reset("ip:10.0.0.1")?;

    // A circuit breaker: a trip in one process is seen by all.
    let config = BreakerConfig { open_duration: Duration::from_secs(30), ..Default::default() };
    let payments = backend.breaker("payments", config)?;
    for _ in 0..3 {
        if let Admission::Permitted(call) = payments.try_acquire()? {
            call.failure()?; // the dependency failed
        }
    }
    println!("breaker: {:?}", payments.state()?);
    payments.reset()?;
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        // Display, not Debug: the message is written for the person reading it.
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tmp = tempfile::tempdir()?;
    let mut server = None;
    let backend: Arc<dyn Backend> = match args.first().map(String::as_str) {
        Some("redis") => {
            let url = match args.get(1) {
                Some(url) => url.clone(),
                None => {
                    let socket = tmp.path().join("redis.sock");
                    server = Some(start_private_redis(tmp.path(), &socket)?);
                    format!("redis+unix://{}", socket.display())
                }
            };
            Arc::new(RedisBackend::connect(RedisConfig::new(url))?)
        }
        Some("embedded") | None => {
            let dir = args.get(1).map_or_else(|| tmp.path().join("store"), Into::into);
            Arc::new(Store::open(dir)?)
        }
        Some(other) => return Err(format!("unknown backend {other:?}: embedded or redis").into()),
    };
    let result = tour(&*backend);
    if let Some(mut s) = server {
        let _ = s.kill();
        let _ = s.wait();
    }
    Ok(result?)
}

fn start_private_redis(
    dir: &std::path::Path,
    socket: &std::path::Path,
) -> std::io::Result<std::process::Child> {
    let child = std::process::Command::new("redis-server")
        .args(["--port", "0", "--appendonly", "yes", "--appendfsync", "always", "--save", ""])
        .arg("--unixsocket")
        .arg(socket)
        .arg("--dir")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .spawn()?;
    for _ in 0..500 {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(child)
}
