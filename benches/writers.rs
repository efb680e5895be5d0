//! Blocking writers against the naive group-commit loop they must beat.
//!
//! A plain harness (the questions are ratios measured in one run, and tails): each case runs
//! for `WALDEN_BENCH_SECS` seconds (default 2), three times, and the median run is reported.
//! Cases:
//!
//! - `durable x1`, `durable x64`: 1 and 64 threads doing `Durability::Immediate` puts of the
//!   ~200 B document to distinct keys;
//! - `raw loop x64`: the baseline, 64 threads appending a record of the same framed size to one
//!   file through a naive group commit — one `std` mutex and one condition variable for all,
//!   the first thread to find no leader writes and `fdatasync`s everything queued outside the
//!   mutex, then wakes every waiter. No framing, no CRC, no state: the disk's and the kernel's
//!   share of a group commit;
//! - `buffered x1`, `buffered x4`: `Durability::Buffered` puts from 1 and 4 threads.
//!
//! Run: `cargo bench --bench writers` (about a minute). `WALDEN_BENCH_DIR` picks the disk.

mod common;

use std::fs::File;
use std::io::Write;
use std::sync::{Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::{bench_dir, doc, key};
use walden::{Durability, Options, Store};

fn secs() -> Duration {
    let s = std::env::var("WALDEN_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    Duration::from_secs_f64(s)
}

/// One run: operations per second, p99 latency (µs), commits per fsync.
#[derive(Clone, Copy)]
struct Run {
    ops_per_s: f64,
    p99_us: u64,
    per_fsync: f64,
}

/// Runs `threads` threads calling `op(thread, i)` for `secs()`, timing each call.
fn drive(threads: usize, op: impl Fn(usize, u64) + Sync) -> (u64, u64, Duration) {
    let barrier = Barrier::new(threads + 1);
    let deadline = Mutex::new(None::<Instant>);
    let (lat, elapsed) = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (op, barrier, deadline) = (&op, &barrier, &deadline);
                sc.spawn(move || {
                    barrier.wait();
                    let end = deadline.lock().unwrap().expect("set before the barrier");
                    let mut lat = Vec::new();
                    let mut i = 0;
                    while Instant::now() < end {
                        let start = Instant::now();
                        op(t, i);
                        lat.push(start.elapsed().as_micros() as u64);
                        i += 1;
                    }
                    lat
                })
            })
            .collect();
        let start = Instant::now();
        *deadline.lock().unwrap() = Some(start + secs());
        barrier.wait();
        let lat: Vec<u64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        (lat, start.elapsed())
    });
    let mut lat = lat;
    lat.sort_unstable();
    let p99 = lat.get((lat.len() as f64 * 0.99) as usize).copied().unwrap_or(0);
    (lat.len() as u64, p99, elapsed)
}

fn store_run(threads: usize, durability: Durability) -> Run {
    let dir = bench_dir();
    let options = Options { durability, auto_compact: false, ..Options::default() };
    let store = Store::open_with(dir.path(), options).unwrap();
    let docs: Vec<_> = (0..threads as u64).map(doc).collect();
    let before = store.stats();
    let (n, p99, elapsed) = drive(threads, |t, i| {
        store.put("users", &key(t as u64 * 1_000_000_000 + i), &docs[t]).unwrap();
    });
    let after = store.stats();
    let fsyncs = (after.fsyncs - before.fsyncs).max(1);
    Run {
        ops_per_s: n as f64 / elapsed.as_secs_f64(),
        p99_us: p99,
        per_fsync: n as f64 / fsyncs as f64,
    }
}

/// The naive group commit over raw appends.
struct RawLog {
    queue: Mutex<RawQueue>,
    cond: Condvar,
    file: Mutex<File>,
}

#[derive(Default)]
struct RawQueue {
    buf: Vec<u8>,
    appended: u64,
    durable: u64,
    leader: bool,
    fsyncs: u64,
}

impl RawLog {
    fn append(&self, record: &[u8]) {
        let mut q = self.queue.lock().unwrap();
        q.buf.extend_from_slice(record);
        q.appended += 1;
        let mine = q.appended;
        while q.durable < mine {
            if q.leader {
                q = self.cond.wait(q).unwrap();
                continue;
            }
            q.leader = true;
            let buf = std::mem::take(&mut q.buf);
            let upto = q.appended;
            drop(q);
            {
                let mut f = self.file.lock().unwrap();
                f.write_all(&buf).unwrap();
                f.sync_data().unwrap();
            }
            q = self.queue.lock().unwrap();
            q.durable = upto;
            q.leader = false;
            q.fsyncs += 1;
            self.cond.notify_all();
        }
    }
}

fn raw_run(threads: usize) -> Run {
    let dir = bench_dir();
    let file = File::create(dir.path().join("raw.log")).unwrap();
    let log = RawLog { queue: Mutex::default(), cond: Condvar::new(), file: Mutex::new(file) };
    // A put's frame: record header, batch header, collection, key, version, the document.
    let record = vec![0xA5u8; serde_json::to_vec(&doc(0)).unwrap().len() + 60];
    let (n, p99, elapsed) = drive(threads, |_, _| log.append(&record));
    let fsyncs = log.queue.lock().unwrap().fsyncs.max(1);
    Run {
        ops_per_s: n as f64 / elapsed.as_secs_f64(),
        p99_us: p99,
        per_fsync: n as f64 / fsyncs as f64,
    }
}

/// A named case of the bench.
type Case = Box<dyn Fn() -> Run>;

/// Three runs of `f`, the median by throughput.
fn median(f: impl Fn() -> Run) -> Run {
    let mut runs: Vec<Run> = (0..3).map(|_| f()).collect();
    runs.sort_by(|a, b| a.ops_per_s.total_cmp(&b.ops_per_s));
    runs[1]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks benches to list themselves.
    }
    let cases: [(&str, Case); 5] = [
        ("durable x1", Box::new(|| store_run(1, Durability::Immediate))),
        ("durable x64", Box::new(|| store_run(64, Durability::Immediate))),
        ("raw loop x64", Box::new(|| raw_run(64))),
        ("buffered x1", Box::new(|| store_run(1, Durability::Buffered))),
        ("buffered x4", Box::new(|| store_run(4, Durability::Buffered))),
    ];
    println!("{:?} per run, median of 3 runs by throughput", secs());
    println!("| case | puts/s | p99 µs | puts per fsync |");
    println!("|---|---:|---:|---:|");
    let mut results = Vec::new();
    for (name, f) in &cases {
        let r = median(f);
        println!("| {name} | {:.0} | {} | {:.1} |", r.ops_per_s, r.p99_us, r.per_fsync);
        results.push(r.ops_per_s);
    }
    println!("durable x64 / x1: {:.1}x", results[1] / results[0]);
    println!("durable x64 / raw loop x64: {:.2}x", results[1] / results[2]);
    println!("buffered x4 / x1: {:.2}x", results[4] / results[3]);
}
