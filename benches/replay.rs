//! Criterion benchmarks of recovery: WAL replay rate and open time.
//!
//! `cargo bench --bench replay` measures stores of 10k and 100k documents (one ~200 B document
//! per WAL record); `WALDEN_BENCH_LARGE=1 cargo bench --bench replay` adds 1M. Each store is
//! built once, outside the timed loop, with `Durability::Buffered` puts and a final `sync()`.
//!
//! Two measurements per size, both with `Throughput::Elements(records)` so criterion reports
//! records/s:
//!
//! - `open/N`: `Store::open` of the whole store (the drop is not timed): read the segments, verify every frame,
//!   decode every batch and rebuild the in-memory document map (what the targets are
//!   about: replay >= 1M records/s, open of 1M documents < 1 s);
//! - `open_snapshot/N`: the same store after `compact()`: open loads the snapshot and replays
//!   an empty log (the normal case for a store that has been running for a while);
//! - `scan/N`: only the reader's walk (`walden::wal::scan_log`: header, CRC, LSN chain) over
//!   the same bytes already in memory, with no document decoding, to split the open time.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{bench_dir, doc, key};
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use walden::wal::{scan_log, LogVerdict, SegmentInput, WAL_DIR};
use walden::{Durability, Options, Store};

/// Builds a store of `n` documents, one record each, from 4 threads of buffered puts.
fn build(dir: &Path, n: u64) {
    let t = Instant::now();
    let store = Store::open_with(dir, Options { durability: Durability::Buffered, ..log_only() })
        .expect("open");
    const THREADS: u64 = 4;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let store = &store;
            s.spawn(move || {
                let mut i = t;
                while i < n {
                    store.put("users", &key(i), &doc(i)).expect("put");
                    i += THREADS;
                }
            });
        }
    });
    store.sync().expect("sync");
    let st = store.stats();
    assert_eq!(st.documents, n);
    println!(
        "built store of {n} documents: {} WAL bytes in {} segment(s), {:.1}s",
        st.wal_bytes,
        st.wal_segments,
        t.elapsed().as_secs_f64()
    );
    store.close().expect("close");
}

/// Background compaction off: `open/N` measures replaying the whole log.
fn log_only() -> Options {
    Options { auto_compact: false, ..Options::default() }
}

/// Times `iters` opens of the store in `dir` (not the checks, not the drops).
fn time_opens(dir: &Path, iters: u64, mut check: impl FnMut(&Store)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let t = Instant::now();
        let store = Store::open_with(dir, log_only()).expect("reopen");
        total += t.elapsed();
        check(&store);
        drop(store);
    }
    total
}

fn segments(dir: &Path) -> Vec<(u64, PathBuf, Vec<u8>)> {
    let wal = dir.join(WAL_DIR);
    let mut segs: Vec<(u64, PathBuf, Vec<u8>)> = std::fs::read_dir(&wal)
        .expect("wal dir")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let no = walden::format::parse_segment_file_name(&name)?;
            let bytes = std::fs::read(e.path()).expect("read segment");
            Some((no, e.path(), bytes))
        })
        .collect();
    segs.sort_by_key(|s| s.0);
    segs
}

fn sizes() -> Vec<u64> {
    let mut v = vec![10_000, 100_000];
    if std::env::var_os("WALDEN_BENCH_LARGE").is_some_and(|v| v == "1") {
        v.push(1_000_000);
    }
    v
}

fn replay(c: &mut Criterion) {
    let mut g = c.benchmark_group("replay");
    // Flat: the same number of opens per sample (10 opens of 1M documents, not 55).
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    for n in sizes() {
        let dir = bench_dir();
        build(dir.path(), n);
        g.throughput(Throughput::Elements(n));

        // Only `open` is timed; the drop (final sync, flusher join, freeing the map) is not.
        let (mut replay_us, mut opens) = (0u64, 0u64);
        g.bench_with_input(BenchmarkId::new("open", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                time_opens(dir.path(), iters, |store| {
                    let st = store.stats();
                    assert_eq!(st.recovery.records_replayed, n);
                    replay_us += st.recovery.replay_us;
                    opens += 1;
                })
            })
        });
        let mean_us = replay_us as f64 / opens.max(1) as f64;
        if opens > 0 {
            println!(
                "open/{n}: recovery inside open (read + verify + decode + apply, from \
             stats().recovery.replay_us) mean {:.1} ms over {opens} opens = {:.2} M records/s",
                mean_us / 1000.0,
                n as f64 / mean_us.max(1.0)
            );
        }

        let segs = segments(dir.path());
        g.bench_with_input(BenchmarkId::new("scan", n), &n, |b, &n| {
            b.iter(|| {
                let inputs: Vec<SegmentInput<'_>> = segs
                    .iter()
                    .map(|(no, path, bytes)| SegmentInput { segment_no: *no, path, bytes })
                    .collect();
                let mut records = 0u64;
                let scan = scan_log(&inputs, None, &mut |_| {
                    records += 1;
                    Ok(())
                });
                assert_eq!(scan.verdict, LogVerdict::Clean);
                assert_eq!(records, n);
            })
        });

        let store = Store::open_with(dir.path(), log_only()).expect("reopen");
        store.compact().expect("compact").expect("a snapshot is written");
        store.close().expect("close");
        g.bench_with_input(BenchmarkId::new("open_snapshot", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                time_opens(dir.path(), iters, |store| assert_eq!(store.stats().documents, n))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
