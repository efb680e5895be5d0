//! What the durable closed-state counters and violation histories cost on the hot paths:
//! breaker outcomes with counts logged (the default) against memory-only counts, for successes
//! and for a flood of failures, and limiter denials with the violation history.
//!
//! Run with `cargo bench --bench breaker_counts`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use walden::{Acquire, BreakerConfig, CircuitBreaker, Quota, Store};

/// A breaker that never trips, so every outcome is counted in Closed.
fn breaker(store: &Store, name: &str, logged: bool) -> CircuitBreaker {
    let counts_log_interval =
        if logged { BreakerConfig::default().counts_log_interval } else { None };
    let config =
        BreakerConfig { consecutive_failures: None, counts_log_interval, ..Default::default() };
    store.breaker(name, config).unwrap()
}

fn outcome(b: &CircuitBreaker, ok: bool) {
    let Acquire::Permitted(p) = b.try_acquire().unwrap() else { panic!("rejected") };
    if ok {
        p.success().unwrap();
    } else {
        p.failure().unwrap();
    }
}

fn outcomes(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut group = c.benchmark_group("breaker_outcome");
    group.sample_size(20).measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(1));
    for (logged, label) in [(true, "counts_logged"), (false, "counts_in_memory")] {
        let b = breaker(&store, label, logged);
        group.bench_function(format!("success/{label}"), |bench| bench.iter(|| outcome(&b, true)));
        group.bench_function(format!("failure/{label}"), |bench| bench.iter(|| outcome(&b, false)));
    }
    group.finish();
}

fn denials(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let l = store.rate_limiter("bench", Quota::per_hour(1)).unwrap();
    assert!(l.check("spent").unwrap().allowed);
    let mut group = c.benchmark_group("ratelimit_denial");
    group.sample_size(20).measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(1));
    group.bench_function("with_violation_history", |b| {
        b.iter(|| assert!(!l.check("spent").unwrap().allowed))
    });
    group.bench_function("peek", |b| b.iter(|| l.peek("spent").unwrap()));
    group.finish();
}

criterion_group!(benches, outcomes, denials);
criterion_main!(benches);
