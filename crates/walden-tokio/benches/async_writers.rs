//! Durable async writers on a 2-worker tokio runtime against blocking writer threads.
//!
//! A plain harness: each case runs for `WALDEN_BENCH_SECS` seconds (default 2), three times,
//! and the median run (by throughput) is reported. Every writer puts the ~200 B document to
//! its own key, again and again, with `Durability::Immediate`: a put returns only after the
//! fsync that covers it. Cases: 1, 64, 1,000 and 10,000 concurrent async writers (tasks on a
//! runtime with 2 worker threads), and 64 blocking writer threads on the same store type.
//!
//! Reported: durable puts/s, p99 latency, puts per fsync (`stats().commits / fsyncs`), and the
//! heap per concurrent writer: the mean of the live heap (a counting global allocator), sampled
//! every millisecond during the run, minus the heap before the writers started (their keys
//! already written once, so the document map does not grow; latencies go to a histogram of
//! fixed size allocated before), divided by the writers. It counts
//! everything a writer holds while it waits — its task, its future, its completion slot, its
//! queued record and overlay entry, the new document before the old one is freed.
//!
//! Run: `cargo bench -p walden-tokio --bench async_writers`. `WALDEN_BENCH_DIR` picks the disk.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use walden::{Durability, Options, Store};
use walden_tokio::AsyncStore;

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(serde::Serialize, Clone)]
struct Doc {
    id: u64,
    name: String,
    email: String,
    active: bool,
    score: f64,
    tags: Vec<String>,
    note: String,
}

fn doc(i: u64) -> Doc {
    Doc {
        id: i,
        name: format!("user-{i:08}"),
        email: format!("user{i:08}@example.com"),
        active: i.is_multiple_of(2),
        score: i as f64 * 0.5,
        tags: vec!["alpha".into(), "beta".into(), "gamma".into()],
        note: "x".repeat(64),
    }
}

fn key(i: u64) -> String {
    format!("k{i:010}")
}

fn secs() -> Duration {
    let s = std::env::var("WALDEN_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    Duration::from_secs_f64(s)
}

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("WALDEN_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).expect("temp dir"),
        None => tempfile::tempdir().expect("temp dir"),
    }
}

#[derive(Clone, Copy)]
struct Run {
    ops_per_s: f64,
    p99_us: u64,
    per_fsync: f64,
    heap_per_writer_bytes: f64,
}

fn p99(mut lat: Vec<u64>) -> u64 {
    lat.sort_unstable();
    lat.get((lat.len() as f64 * 0.99) as usize).copied().unwrap_or(0)
}

/// Latencies in log-linear microsecond buckets (16 per power of two, so a quantile is within
/// 1/16 of the truth): fixed memory, allocated before the heap baseline, so the writers' heap
/// is not inflated by their own measurements.
struct Histogram {
    buckets: Vec<std::sync::atomic::AtomicU64>,
}

const SUB_BUCKETS: u64 = 16;

impl Histogram {
    fn new() -> Histogram {
        Histogram { buckets: (0..64 * SUB_BUCKETS).map(|_| Default::default()).collect() }
    }

    fn bucket(us: u64) -> usize {
        if us < SUB_BUCKETS {
            return us as usize;
        }
        let exp = 63 - u64::from(us.leading_zeros()); // >= 4
        let mantissa = (us >> (exp - 4)) & (SUB_BUCKETS - 1);
        ((exp - 3) * SUB_BUCKETS + mantissa) as usize
    }

    /// Lowest latency of a bucket.
    fn lower(b: usize) -> u64 {
        let b = b as u64;
        if b < SUB_BUCKETS {
            return b;
        }
        let exp = b / SUB_BUCKETS + 3;
        (SUB_BUCKETS + b % SUB_BUCKETS) << (exp - 4)
    }

    fn record(&self, us: u64) {
        self.buckets[Self::bucket(us)].fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    fn quantile(&self, q: f64) -> u64 {
        let rank = (self.count() as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank.max(1) {
                return Self::lower(i);
            }
        }
        0
    }
}

/// Opens a store and writes every writer's key once.
fn prepared(dir: &std::path::Path, writers: u64) -> Store {
    let options =
        Options { durability: Durability::Immediate, auto_compact: false, ..Options::default() };
    let store = Store::open_with(dir, options).unwrap();
    let mut batch = walden::Batch::new();
    for w in 0..writers {
        batch.put("users", &key(w), &doc(w));
        if batch.len() == 1_000 {
            store.commit(std::mem::take(&mut batch)).unwrap();
        }
    }
    store.commit(batch).unwrap();
    store
}

/// Samples the live heap every millisecond until `stop`; returns the mean.
fn sample_heap(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<f64> {
    std::thread::spawn(move || {
        let (mut sum, mut n) = (0f64, 0u64);
        while !stop.load(Ordering::Relaxed) {
            sum += LIVE.load(Ordering::Relaxed) as f64;
            n += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        sum / n.max(1) as f64
    })
}

fn async_run(writers: u64) -> Run {
    let dir = bench_dir();
    let store = prepared(dir.path(), writers);
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let hist = Arc::new(Histogram::new());
    let before = store.stats();
    let store = AsyncStore::from(store);
    let start = Instant::now();
    let end = start + secs();
    let stop = Arc::new(AtomicBool::new(false));
    let base = LIVE.load(Ordering::Relaxed) as f64;
    let sampler = sample_heap(stop.clone());
    rt.block_on(async {
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let (store, hist) = (store.clone(), hist.clone());
                tokio::spawn(async move {
                    let (k, d) = (key(w), doc(w));
                    while Instant::now() < end {
                        let t = Instant::now();
                        store.put("users", &k, &d).await.unwrap();
                        hist.record(t.elapsed().as_micros() as u64);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let heap = sampler.join().unwrap();
    let after = store.store().stats();
    Run {
        ops_per_s: hist.count() as f64 / elapsed.as_secs_f64(),
        p99_us: hist.quantile(0.99),
        per_fsync: (after.commits - before.commits) as f64
            / (after.fsyncs - before.fsyncs).max(1) as f64,
        heap_per_writer_bytes: (heap - base) / writers as f64,
    }
}

fn blocking_run(threads: u64) -> Run {
    let dir = bench_dir();
    let store = prepared(dir.path(), threads);
    let before = store.stats();
    let start = Instant::now();
    let end = start + secs();
    let lat: Vec<u64> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|w| {
                let store = &store;
                sc.spawn(move || {
                    let (k, d) = (key(w), doc(w));
                    let mut lat = Vec::new();
                    while Instant::now() < end {
                        let t = Instant::now();
                        store.put("users", &k, &d).unwrap();
                        lat.push(t.elapsed().as_micros() as u64);
                    }
                    lat
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let elapsed = start.elapsed();
    let after = store.stats();
    let n = lat.len() as f64;
    Run {
        ops_per_s: n / elapsed.as_secs_f64(),
        p99_us: p99(lat),
        per_fsync: (after.commits - before.commits) as f64
            / (after.fsyncs - before.fsyncs).max(1) as f64,
        heap_per_writer_bytes: f64::NAN,
    }
}

fn median(f: impl Fn() -> Run) -> Run {
    let mut runs: Vec<Run> = (0..3).map(|_| f()).collect();
    runs.sort_by(|a, b| a.ops_per_s.total_cmp(&b.ops_per_s));
    runs[1]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks benches to list themselves.
    }
    println!("{:?} per run, median of 3 runs by throughput; durable puts", secs());
    println!("| case | puts/s | p99 µs | puts per fsync | heap per writer (bytes) |");
    println!("|---|---:|---:|---:|---:|");
    let mut async_10k = 0.0;
    for writers in [1u64, 64, 1_000, 10_000] {
        let r = median(|| async_run(writers));
        println!(
            "| async x{writers} | {:.0} | {} | {:.1} | {:.0} |",
            r.ops_per_s, r.p99_us, r.per_fsync, r.heap_per_writer_bytes
        );
        async_10k = r.ops_per_s;
    }
    let b = median(|| blocking_run(64));
    println!(
        "| blocking threads x64 | {:.0} | {} | {:.1} | – |",
        b.ops_per_s, b.p99_us, b.per_fsync
    );
    println!("async x10000 / blocking x64: {:.2}x", async_10k / b.ops_per_s);
}
