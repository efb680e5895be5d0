//! What moving to Redis costs and what walden's scripts gain over the plain Redis idioms,
//! measured in one run on this machine against a private redis-server (unix socket,
//! `appendonly yes`, `appendfsync always`):
//!
//! - limiter: walden's GCRA `check` vs a fixed-window `INCR` + `EXPIRE` pipeline (one round
//!   trip each), and the embedded limiter;
//! - CAS under contention: walden's `update` on one hot counter vs `WATCH`/`GET`/`MULTI`/`SET`/
//!   `EXEC`, and the embedded store's `update`;
//!
//! each with 1, 16 and 64 client threads. Prints a Markdown table of operations per second.
//!
//! ```text
//! cargo bench -p walden-redis --bench redis_vs_embedded            # 6 rounds × 0.5 s per cell
//! WALDEN_BENCH_SECS=0.2 cargo bench -p walden-redis --bench redis_vs_embedded
//! ```

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use walden::api::{Backend, DocumentsExt, Limiter};
use walden::{Quota, Store};
use walden_redis::{RedisBackend, RedisConfig};

const CLIENTS: [usize; 3] = [1, 16, 64];

fn seconds() -> f64 {
    std::env::var("WALDEN_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(0.5)
}

/// Runs `op` on `clients` threads for the configured time; returns completed ops per second.
fn run(clients: usize, op: &(dyn Fn(usize) + Sync)) -> f64 {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let secs = seconds();
    let began = Instant::now();
    std::thread::scope(|s| {
        for c in 0..clients {
            let (stop, done) = (&stop, &done);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    op(c);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed) as f64 / began.elapsed().as_secs_f64()
}

struct Server {
    child: Child,
    _dir: tempfile::TempDir,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_redis() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("redis.sock");
    let child = Command::new("redis-server")
        .args(["--port", "0", "--appendonly", "yes", "--appendfsync", "always", "--save", ""])
        .arg("--unixsocket")
        .arg(&socket)
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    for _ in 0..1000 {
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Server { child, url: format!("redis+unix://{}", socket.display()), _dir: dir }
}

fn raw_connection(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

fn fixed_window(url: &str, clients: usize) -> f64 {
    let cons: Vec<_> = (0..clients).map(|_| parking_lot::Mutex::new(raw_connection(url))).collect();
    run(clients, &|c| {
        let mut con = cons[c].lock();
        let key = format!("fw:client-{c}");
        let _: (u64, i64) = redis::pipe()
            .cmd("INCR")
            .arg(&key)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(60)
            .arg("NX")
            .query(&mut *con)
            .unwrap();
    })
}

fn watch_multi_exec(url: &str, clients: usize) -> f64 {
    let cons: Vec<_> = (0..clients).map(|_| parking_lot::Mutex::new(raw_connection(url))).collect();
    run(clients, &|c| {
        let mut con = cons[c].lock();
        loop {
            redis::cmd("WATCH").arg("hot").query::<()>(&mut *con).unwrap();
            let n: Option<u64> = redis::cmd("GET").arg("hot").query(&mut *con).unwrap();
            let r: Option<(String,)> = redis::pipe()
                .atomic()
                .cmd("SET")
                .arg("hot")
                .arg(n.unwrap_or(0) + 1)
                .query(&mut *con)
                .unwrap();
            if r.is_some() {
                return;
            }
        }
    })
}

fn limiter_checks(limiter: &dyn Limiter, clients: usize) -> f64 {
    run(clients, &|c| {
        let d = limiter.check(&format!("client-{c}")).unwrap();
        assert!(d.allowed);
    })
}

fn updates(backend: &dyn Backend, clients: usize) -> f64 {
    run(clients, &|_| {
        backend.update::<u64, _>("bench", "hot", |n| Some(n.unwrap_or(0) + 1)).unwrap();
    })
}

/// Alternates short runs of the workloads so that a change in the machine's load (other
/// processes) affects each of them alike; returns ops/s of each, summed over the rounds.
fn interleaved(clients: usize, workloads: &[&dyn Fn(usize) -> f64]) -> Vec<f64> {
    const ROUNDS: usize = 6;
    let mut sums = vec![0.0; workloads.len()];
    for _ in 0..ROUNDS {
        for (sum, w) in sums.iter_mut().zip(workloads) {
            *sum += w(clients);
        }
    }
    sums.into_iter().map(|s| s / ROUNDS as f64).collect()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let server = start_redis();
    let redis = RedisBackend::connect(RedisConfig::new(server.url.clone())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // A quota no client reaches: every check is an allowed one (the path that writes).
    let quota = Quota::per_second(1_000_000_000).with_burst(1_000_000_000);
    let redis_limiter = Backend::rate_limiter(&redis, "bench", quota).unwrap();
    let store_limiter = Backend::rate_limiter(&store, "bench", quota).unwrap();
    let url = server.url.as_str();
    println!("| workload | clients | walden on Redis (ops/s) | plain Redis (ops/s) | ratio | embedded walden (ops/s) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for clients in CLIENTS {
        let r = interleaved(
            clients,
            &[&|c| limiter_checks(&*redis_limiter, c), &|c| fixed_window(url, c), &|c| {
                limiter_checks(&*store_limiter, c)
            }],
        );
        let (w, p, e) = (r[0], r[1], r[2]);
        println!(
            "| limiter check vs INCR+EXPIRE | {clients} | {w:.0} | {p:.0} | {:.2} | {e:.0} |",
            w / p
        );
    }
    for clients in CLIENTS {
        let r = interleaved(
            clients,
            &[&|c| updates(&redis, c), &|c| watch_multi_exec(url, c), &|c| updates(&store, c)],
        );
        let (w, p, e) = (r[0], r[1], r[2]);
        println!(
            "| CAS update of one hot key vs WATCH/MULTI/EXEC | {clients} | {w:.0} | {p:.0} | {:.2} | {e:.0} |",
            w / p
        );
    }
}
