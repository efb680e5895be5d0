//! Durable rate-limit checks (`Durability::Immediate`: each allowed check is fsynced before it
//! returns) with one thread and with several, where group commit shares fsyncs.
//!
//! Run with `cargo bench --bench ratelimit`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use walden::{Quota, RateLimiter, Store};

const KEYS: u64 = 1_000;

/// A limiter that always allows: a billion cells per second, burst of a second's worth.
fn limiter(store: &Store) -> RateLimiter {
    store.rate_limiter("bench", Quota::per_second(1_000_000_000)).unwrap()
}

fn run(l: &RateLimiter, thread: u64, iters: u64) {
    for i in 0..iters {
        let key = format!("client-{}", (thread * 7919 + i) % KEYS);
        assert!(l.check(&key).unwrap().allowed);
    }
}

fn durable_checks(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let l = limiter(&store);
    let mut group = c.benchmark_group("ratelimit_durable_check");
    group.sample_size(10).measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    group.bench_function("threads_1", |b| b.iter_custom(|iters| time(&l, 1, iters)));
    for threads in [4u64, 16] {
        group.bench_function(format!("threads_{threads}"), |b| {
            b.iter_custom(|iters| time(&l, threads, iters))
        });
    }
    group.finish();
}

/// Wall time for `iters` checks spread over `threads` threads.
fn time(l: &RateLimiter, threads: u64, iters: u64) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let n = iters / threads + u64::from(t < iters % threads);
            s.spawn(move || run(l, t, n));
        }
    });
    start.elapsed()
}

criterion_group!(benches, durable_checks);
criterion_main!(benches);
