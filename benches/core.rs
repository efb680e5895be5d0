//! Criterion micro-benchmarks of the write and read paths.
//!
//! `cargo bench --bench core` runs them all (a few minutes); pass a filter to run a group, e.g.
//! `cargo bench --bench core -- group_commit`. Groups:
//!
//! - `raw_fdatasync`: the disk's own limit, an append of one record-sized buffer plus
//!   `fdatasync`, in the same directory the stores use (the baseline for ratios);
//! - `ops/{immediate,buffered}`: put, get, insert, CAS (`put_if_version`), a 10-op batch and
//!   delete of ~200 B JSON documents;
//! - `group_commit`: 1, 4, 16 and 64 writer threads doing durable puts; throughput is the
//!   total of all threads, and the average group size (commits / fsyncs) is printed.

mod common;

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{bench_dir, doc, key};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use walden::format::RECORD_HEADER_LEN;
use walden::{Batch, Durability, Options, Store};

/// Length of a test document's JSON (211 bytes).
fn doc_len() -> usize {
    serde_json::to_vec(&doc(12_345_678)).unwrap().len()
}

const COLL: &str = "users";

fn open(dir: &Path, durability: Durability) -> Store {
    Store::open_with(dir, Options { durability, ..Options::default() }).expect("open store")
}

fn short<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g
}

/// The physical limit: append `len` bytes and `fdatasync`, once per iteration.
fn raw_fdatasync(c: &mut Criterion) {
    // The size of one put's WAL record: frame header, batch count, op header, key, document.
    let len = RECORD_HEADER_LEN + 4 + 1 + 1 + COLL.len() + 2 + key(0).len() + 8 + 4 + doc_len();
    let dir = bench_dir();
    let mut f: File = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("raw.log"))
        .expect("open raw log");
    let buf = vec![0xA5u8; len];
    let mut g = short(c, "raw_fdatasync");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::new("append_fdatasync", len), |b| {
        b.iter(|| {
            f.write_all(&buf).unwrap();
            f.sync_data().unwrap();
        })
    });
    g.finish();
}

fn ops(c: &mut Criterion) {
    println!("document size: {} bytes of JSON", doc_len());
    for (mode, durability) in
        [("immediate", Durability::Immediate), ("buffered", Durability::Buffered)]
    {
        let dir = bench_dir();
        let store = open(dir.path(), durability);
        // A populated collection so gets and updates hit a realistic map.
        const N: u64 = 10_000;
        let mut b = Batch::new();
        for i in 0..N {
            b.put(COLL, &key(i), &doc(i));
        }
        b.durability(Durability::Buffered);
        store.commit(b).expect("preload");
        store.sync().expect("sync");

        let mut g = short(c, &format!("ops/{mode}"));
        g.throughput(Throughput::Elements(1));
        let d = doc(7);

        let mut i = 0u64;
        g.bench_function("put", |b| {
            b.iter(|| {
                i = (i + 1) % N;
                store.put(COLL, &key(i), &d).unwrap()
            })
        });

        g.bench_function("get", |b| {
            let mut i = 0u64;
            b.iter(|| {
                i = (i + 7919) % N;
                black_box(store.get::<serde_json::Value>(COLL, &key(i)).unwrap())
            })
        });

        let mut next = 0u64;
        g.bench_function("insert", |b| {
            b.iter(|| {
                next += 1;
                store.insert("fresh", &key(next), &d).unwrap()
            })
        });

        // CAS on one key: the version is known from the previous iteration.
        let mut version = store.put(COLL, "cas", &d).unwrap();
        g.bench_function("cas", |b| {
            b.iter(|| {
                version = store.put_if_version(COLL, "cas", &d, version).unwrap();
            })
        });

        g.throughput(Throughput::Elements(10));
        let mut j = 0u64;
        g.bench_function("batch10", |b| {
            b.iter(|| {
                let mut batch = Batch::new();
                for _ in 0..10 {
                    j = (j + 1) % N;
                    batch.put(COLL, &key(j), &d);
                }
                store.commit(batch).unwrap()
            })
        });

        // Delete needs something to delete: insert outside the timed part.
        g.throughput(Throughput::Elements(1));
        g.bench_function("delete", |b| {
            b.iter_custom(|iters| {
                let base = next;
                let mut pre = Batch::new();
                for k in 0..iters {
                    pre.put("del", &key(base + k), &d);
                }
                pre.durability(Durability::Buffered);
                store.commit(pre).unwrap();
                next += iters;
                let t = Instant::now();
                for k in 0..iters {
                    black_box(store.delete("del", &key(base + k)).unwrap());
                }
                t.elapsed()
            })
        });
        g.finish();
        let st = store.stats();
        println!(
            "ops/{mode}: commits={} fsyncs={} (preload and setup included)",
            st.commits, st.fsyncs
        );
    }
}

fn group_commit(c: &mut Criterion) {
    let mut g = short(c, "group_commit");
    for threads in [1usize, 4, 16, 64] {
        let dir = bench_dir();
        let store = open(dir.path(), Durability::Immediate);
        let before = store.stats();
        // Each thread does `per_thread` puts; the sample is the wall time for all of them.
        g.throughput(Throughput::Elements(threads as u64));
        g.bench_with_input(
            BenchmarkId::new("put_threads", threads),
            &threads,
            |b, &threads: &usize| {
                b.iter_custom(|iters| {
                    let barrier = Arc::new(Barrier::new(threads + 1));
                    let handles: Vec<_> = (0..threads)
                        .map(|t| {
                            let store = store.clone();
                            let barrier = barrier.clone();
                            std::thread::spawn(move || {
                                let d = doc(t as u64);
                                let k = format!("t{t:03}");
                                barrier.wait();
                                for _ in 0..iters {
                                    store.put(COLL, &k, &d).unwrap();
                                }
                            })
                        })
                        .collect();
                    barrier.wait();
                    let t = Instant::now();
                    for h in handles {
                        h.join().unwrap();
                    }
                    t.elapsed()
                })
            },
        );
        let after = store.stats();
        let fsyncs = after.fsyncs - before.fsyncs;
        let commits = after.commits - before.commits;
        println!(
            "group_commit threads={threads}: commits={commits} fsyncs={fsyncs} \
             commits/fsync={:.2} max_group={} p50<={}us p99<={}us",
            commits as f64 / fsyncs.max(1) as f64,
            after.max_group_size,
            after.commit_latency_p50_upper_bound_us,
            after.commit_latency_p99_upper_bound_us,
        );
    }
    g.finish();
}

criterion_group!(benches, raw_fdatasync, ops, group_commit);
criterion_main!(benches);
