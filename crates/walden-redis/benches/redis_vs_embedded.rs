//! What moving to Redis costs and what walden's scripts gain over the plain Redis idioms,
//! measured in one run on this machine against a private redis-server (unix socket,
//! `appendonly yes`, `appendfsync always`):
//!
//! - limiter: walden's GCRA `check` vs a fixed-window `INCR` + `EXPIRE` pipeline (one round
//!   trip each), and the embedded limiter; each client checks its own key;
//! - CAS under contention: `update` of one hot counter (a JSON number) by every client vs the
//!   `WATCH`/`GET`/`MULTI`/`SET`/`EXEC` loop on the same counter (three round trips per
//!   attempt, every retry counted), walden with the clients sharing one backend (threads of
//!   one process) and with one backend per client (as separate processes would), and the
//!   embedded store's `update`;
//!
//! each with 1, 16 and 64 client threads (one connection each for the plain idioms). Each
//! round alternates 8 short slices of every workload of a row, in rotating order, so a change
//! in the machine's load hits them alike; a row reports the median of 3 rounds and the median
//! of the 3 paired ratios. Round trips per operation are counted by the server (`INFO commandstats`, reset
//! before each workload), not assumed. Prints a Markdown table.
//!
//! ```text
//! cargo bench -p walden-redis --bench redis_vs_embedded            # 2 s per workload and round
//! WALDEN_BENCH_SECS=0.3 cargo bench -p walden-redis --bench redis_vs_embedded
//! WALDEN_BENCH_ONLY=limiter cargo bench -p walden-redis --bench redis_vs_embedded  # or update
//! ```

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use walden::api::{Backend, DocumentsExt, Limiter};
use walden::{Quota, Store};
use walden_redis::{RedisBackend, RedisConfig};

const CLIENTS: [usize; 3] = [1, 16, 64];

/// Rounds per row; a row reports medians.
const ROUNDS: usize = 3;

/// Slices per round and workload; each runs for the configured time ÷ this.
const SLICES: usize = 8;

/// Length of the uncounted round before a row's rounds.
const WARM_UP_SECS: f64 = 0.2;

static WARMING: AtomicBool = AtomicBool::new(false);

fn seconds() -> f64 {
    std::env::var("WALDEN_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0)
}

/// One workload's result in one round.
#[derive(Clone, Copy)]
struct Sample {
    ops_per_s: f64,
    /// Client round trips per completed operation, as the server counted them.
    round_trips_per_op: f64,
}

/// Runs `op` on `clients` threads for the configured time; returns completed ops per second
/// and the number completed.
fn run(clients: usize, op: &(dyn Fn(usize) + Sync)) -> (f64, u64) {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let secs =
        if WARMING.load(Ordering::Relaxed) { WARM_UP_SECS } else { seconds() / SLICES as f64 };
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
    let done = done.load(Ordering::Relaxed);
    (done as f64 / began.elapsed().as_secs_f64(), done)
}

/// The server's per-command call counters: what `INFO commandstats` says.
struct Stats {
    admin: parking_lot::Mutex<redis::Connection>,
}

impl Stats {
    fn reset(&self) {
        redis::cmd("CONFIG").arg("RESETSTAT").query::<()>(&mut *self.admin.lock()).unwrap();
    }

    /// Calls of `command` since the last reset.
    fn calls(&self, command: &str) -> u64 {
        let info: String =
            redis::cmd("INFO").arg("commandstats").query(&mut *self.admin.lock()).unwrap();
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Runs a Redis workload; `round_trips` turns the server's counters and the number of
    /// completed operations into the client's round trips.
    fn measure(
        &self,
        clients: usize,
        op: &(dyn Fn(usize) + Sync),
        round_trips: &dyn Fn(&Stats, u64) -> u64,
    ) -> Sample {
        self.reset();
        let (ops_per_s, done) = run(clients, op);
        let round_trips_per_op = round_trips(self, done) as f64 / done.max(1) as f64;
        Sample { ops_per_s, round_trips_per_op }
    }
}

/// The fixed window is one pipeline (`INCR` + `EXPIRE`) per check.
fn fixed_window_round_trips(s: &Stats, _: u64) -> u64 {
    s.calls("incr")
}

/// A walden limiter check is one `EVALSHA`.
fn script_round_trips(s: &Stats, _: u64) -> u64 {
    s.calls("evalsha")
}

/// Each `WATCH` attempt is `WATCH`, then `GET`, then `MULTI`/`SET`/`EXEC` in one pipeline.
fn watch_round_trips(s: &Stats, _: u64) -> u64 {
    s.calls("watch") + s.calls("get") + s.calls("exec")
}

/// A walden `update` is reads (`HMGET`) and attempts (`EVALSHA`). The server also counts the
/// `HMGET` that a refused attempt runs inside its script (one per refusal, and refusals are
/// attempts minus completed updates), so those are taken out.
fn update_round_trips(s: &Stats, done: u64) -> u64 {
    let attempts = s.calls("evalsha");
    let refused = attempts.saturating_sub(done);
    attempts + s.calls("hmget").saturating_sub(refused)
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

fn connections(url: &str, clients: usize) -> Vec<parking_lot::Mutex<redis::Connection>> {
    (0..clients).map(|_| parking_lot::Mutex::new(raw_connection(url))).collect()
}

fn fixed_window(cons: &[parking_lot::Mutex<redis::Connection>], c: usize) {
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
}

/// The plain Redis optimistic loop on the same JSON counter: every retry is a new `WATCH`.
fn watch_multi_exec(cons: &[parking_lot::Mutex<redis::Connection>], c: usize) {
    let mut con = cons[c].lock();
    loop {
        redis::cmd("WATCH").arg("hot").query::<()>(&mut *con).unwrap();
        let json: Option<String> = redis::cmd("GET").arg("hot").query(&mut *con).unwrap();
        let n: u64 = json.map_or(0, |j| serde_json::from_str(&j).unwrap());
        let new = serde_json::to_string(&(n + 1)).unwrap();
        let r: Option<(String,)> =
            redis::pipe().atomic().cmd("SET").arg("hot").arg(new).query(&mut *con).unwrap();
        if r.is_some() {
            return;
        }
    }
}

fn limiter_check(limiter: &dyn Limiter, c: usize) {
    let d = limiter.check(&format!("client-{c}")).unwrap();
    assert!(d.allowed);
}

fn update(backend: &dyn Backend) {
    backend.update::<u64, _>("bench", "hot", |n| Some(n.unwrap_or(0) + 1)).unwrap();
}

/// Slices of equal length: the mean rate is the rate over the round.
fn mean(v: &[Sample]) -> Sample {
    let n = v.len() as f64;
    Sample {
        ops_per_s: v.iter().map(|s| s.ops_per_s).sum::<f64>() / n,
        round_trips_per_op: v.iter().map(|s| s.round_trips_per_op).sum::<f64>() / n,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A row: walden vs the plain idiom (both on Redis, paired round by round) and the embedded
/// store. Prints the medians.
fn row(
    name: &str,
    clients: usize,
    walden: &dyn Fn(usize) -> Sample,
    plain: &dyn Fn(usize) -> Sample,
    embedded: &dyn Fn(usize) -> f64,
) {
    // A round that opens the connections and creates the keys, not counted.
    WARMING.store(true, Ordering::Relaxed);
    walden(clients);
    plain(clients);
    WARMING.store(false, Ordering::Relaxed);
    let (mut w, mut p, mut e, mut ratios) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        // A round alternates short slices of the workloads, and the order rotates, so that
        // the machine's load (the disk's fsync latency above all) hits them alike and no
        // workload always runs right after the embedded one.
        let (mut ws, mut ps, mut es) = (Vec::new(), Vec::new(), Vec::new());
        for slice in 0..SLICES {
            for step in 0..3 {
                match (slice + step) % 3 {
                    0 => ws.push(walden(clients)),
                    1 => ps.push(plain(clients)),
                    _ => es.push(embedded(clients)),
                }
            }
        }
        let (ws, ps) = (mean(&ws), mean(&ps));
        e.push(es.iter().sum::<f64>() / es.len() as f64);
        ratios.push(ws.ops_per_s / ps.ops_per_s);
        w.push(ws);
        p.push(ps);
    }
    let ops = |v: &[Sample]| median(v.iter().map(|s| s.ops_per_s).collect());
    let rts = |v: &[Sample]| median(v.iter().map(|s| s.round_trips_per_op).collect());
    println!(
        "| {name} | {clients} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2} | {:.0} |",
        ops(&w),
        rts(&w),
        ops(&p),
        rts(&p),
        median(ratios),
        median(e)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let server = start_redis();
    let url = server.url.as_str();
    let redis = RedisBackend::connect(RedisConfig::new(url)).unwrap();
    let per_client: Vec<RedisBackend> =
        (0..64).map(|_| RedisBackend::connect(RedisConfig::new(url)).unwrap()).collect();
    let stats = Stats { admin: parking_lot::Mutex::new(raw_connection(url)) };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // A quota no client reaches: every check is an allowed one (the path that writes).
    let quota = Quota::per_second(1_000_000_000).with_burst(1_000_000_000);
    let redis_limiter: Arc<dyn Limiter> = Backend::rate_limiter(&redis, "bench", quota).unwrap();
    let store_limiter = Backend::rate_limiter(&store, "bench", quota).unwrap();
    let embedded = |op: &(dyn Fn(usize) + Sync), c| run(c, op).0;
    println!("| workload | clients | walden on Redis (ops/s) | round trips/op | plain Redis (ops/s) | round trips/op | ratio | embedded walden (ops/s) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let only = std::env::var("WALDEN_BENCH_ONLY").unwrap_or_default();
    for clients in CLIENTS.into_iter().filter(|_| only.is_empty() || only == "limiter") {
        let cons = connections(url, clients);
        row(
            "limiter check vs INCR+EXPIRE",
            clients,
            &|c| stats.measure(c, &|i| limiter_check(&*redis_limiter, i), &script_round_trips),
            &|c| stats.measure(c, &|i| fixed_window(&cons, i), &fixed_window_round_trips),
            &|c| embedded(&|i| limiter_check(&*store_limiter, i), c),
        );
    }
    for clients in CLIENTS.into_iter().filter(|_| only.is_empty() || only == "update") {
        let cons = connections(url, clients);
        row(
            "update of one hot key, clients share one backend, vs WATCH/MULTI/EXEC",
            clients,
            &|c| stats.measure(c, &|_| update(&redis), &update_round_trips),
            &|c| stats.measure(c, &|i| watch_multi_exec(&cons, i), &watch_round_trips),
            &|c| embedded(&|_| update(&store), c),
        );
        row(
            "update of one hot key, one backend per client, vs WATCH/MULTI/EXEC",
            clients,
            &|c| stats.measure(c, &|i| update(&per_client[i]), &update_round_trips),
            &|c| stats.measure(c, &|i| watch_multi_exec(&cons, i), &watch_round_trips),
            &|c| embedded(&|_| update(&store), c),
        );
    }
}
