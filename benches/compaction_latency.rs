//! p50/p99/p999 write latency with and without a concurrent compaction.
//!
//! Not a criterion bench: criterion reports means, and the question here is the tail. It loads
//! a store with `WALDEN_BENCH_DOCS` documents (default 100,000) of ~200 bytes, then measures
//! 4 writer threads × `WALDEN_BENCH_WRITES` durable puts (default 2,000 each), once alone and
//! once while another thread runs `compact()` back to back (each compaction folds and writes the
//! whole state). Run: `cargo bench --bench compaction_latency`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use walden::{Durability, Options, Store};

const WRITER_THREADS: usize = 4;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn measure(store: &Store, writes: usize, compacting: bool) -> (Vec<u64>, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let compactor = compacting.then(|| {
        let store = store.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Keep the log non-empty so every round writes a full snapshot.
                store.put("filler", "x", &n).unwrap();
                store.compact().unwrap();
                n += 1;
            }
            n
        })
    });
    let threads: Vec<_> = (0..WRITER_THREADS)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(writes);
                for i in 0..writes {
                    let doc = serde_json::json!({"thread": t, "i": i, "pad": "x".repeat(150)});
                    let start = Instant::now();
                    store.put("hot", &format!("t{t}-{}", i % 500), &doc).unwrap();
                    lat.push(start.elapsed().as_micros() as u64);
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let compactions = compactor.map_or(0, |c| c.join().unwrap());
    all.sort_unstable();
    (all, compactions)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks benches to list themselves.
    }
    let docs = env_or("WALDEN_BENCH_DOCS", 100_000);
    let writes = env_or("WALDEN_BENCH_WRITES", 2_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(
        dir.path(),
        Options { auto_compact: false, durability: Durability::Immediate, ..Options::default() },
    )
    .unwrap();
    let mut batch = walden::Batch::new();
    for i in 0..docs {
        batch.put(
            "bulk",
            &format!("doc{i:08}"),
            &serde_json::json!({"i": i, "pad": "y".repeat(180)}),
        );
        if batch.len() == 5_000 {
            store.commit(std::mem::take(&mut batch)).unwrap();
        }
    }
    store.commit(batch).unwrap();
    store.compact().unwrap();
    let t = Instant::now();
    store.put("filler", "x", &0).unwrap();
    store.compact().unwrap();
    println!("one full compaction of {docs} documents: {:?}", t.elapsed());
    println!("{WRITER_THREADS} writers x {writes} durable puts each; latency in microseconds");
    println!("| condition | p50 | p99 | p999 | max | compactions during run |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut p99 = [0u64; 2];
    for (i, compacting) in [false, true].into_iter().enumerate() {
        let (lat, n) = measure(&store, writes, compacting);
        p99[i] = quantile(&lat, 0.99);
        println!(
            "| {} | {} | {} | {} | {} | {n} |",
            if compacting { "compacting" } else { "alone" },
            quantile(&lat, 0.5),
            p99[i],
            quantile(&lat, 0.999),
            lat.last().unwrap()
        );
    }
    println!("p99 ratio compacting / alone: {:.2}", p99[1] as f64 / p99[0].max(1) as f64);
}
