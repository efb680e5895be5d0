//! Followers: how soon a write acknowledged by the writer is visible on a follower, and what
//! followers cost the writer. A measurement, not a test: it prints numbers for
//! `docs/BENCHMARKS.md` ("Read-only followers") and asserts nothing about time.
//!
//! 1. **Ack → visible.** One writer thread puts key `k` with value i = 0, 1, 2, … (`Immediate`),
//!    records the instant each put returns, and waits [`PACE`] between puts, so each write is
//!    measured alone. A follower in the same process (its own thread, reading files like any
//!    other process) records the instant it first shows each value: with `refresh()` called in
//!    a loop every [`REFRESH_LOOP_PAUSE`], and with `follow()` (background refresh every
//!    `poll_interval`, default 1 ms) and `wait_for`. Latency = seen − acknowledged, 0 when the
//!    follower showed it first (the writer publishes right after the fsync, before the writing
//!    thread wakes).
//! 2. **Writer throughput with 0 and 3 followers.** 8 writer threads put for [`RUN`]; the
//!    followers are separate processes (this binary again) in `follow()` mode. The rounds
//!    alternate 0, 3, 0, 3, … so drift shows; the medians and their ratio are printed.
//!
//! `WALDEN_BENCH_PART=latency` or `=throughput` runs one part.
//!
//! Run with `cargo bench --bench follower`. `WALDEN_BENCH_SAMPLES` sets the samples of 1.

use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use walden::{Follower, Store};

const FOLLOWER_ENV: &str = "WALDEN_BENCH_FOLLOWER";
const PACE: Duration = Duration::from_millis(2);
const REFRESH_LOOP_PAUSE: Duration = Duration::from_micros(100);
const RUN: Duration = Duration::from_secs(4);
const WRITERS: usize = 8;
/// Rounds of each configuration, alternating.
const ROUNDS: usize = 4;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Ack → visible for `samples` writes; `follow`: background mode, else a `refresh()` loop.
fn ack_to_visible(samples: usize, follow: bool) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.put("b", "k", &u64::MAX).unwrap();
    let f = Follower::open(dir.path()).unwrap();
    if follow {
        f.follow().unwrap();
    }
    let start = Instant::now();
    let ns = move |i: Instant| i.duration_since(start).as_nanos() as u64;
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..samples).map(|_| AtomicU64::new(0)).collect());
    let seen: Arc<Vec<AtomicU64>> = Arc::new((0..samples).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (seen, done, f) = (seen.clone(), done.clone(), f.clone());
        std::thread::spawn(move || {
            let mut next = 0usize;
            while !done.load(Ordering::Relaxed) && next < samples {
                if follow {
                    f.wait_for(f.applied_lsn() + 1, Duration::from_millis(50)).unwrap();
                } else {
                    f.refresh().unwrap();
                }
                let v = f.get::<u64>("b", "k").unwrap().unwrap().value;
                if v != u64::MAX && v as usize >= next {
                    let now = ns(Instant::now());
                    for s in &seen[next..=v as usize] {
                        s.store(now, Ordering::Relaxed);
                    }
                    next = v as usize + 1;
                }
                if !follow {
                    std::thread::sleep(REFRESH_LOOP_PAUSE);
                }
            }
        })
    };
    for (i, slot) in acked.iter().enumerate() {
        store.put("b", "k", &(i as u64)).unwrap();
        slot.store(ns(Instant::now()), Ordering::Relaxed);
        std::thread::sleep(PACE);
    }
    std::thread::sleep(Duration::from_millis(200));
    done.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let mut lat: Vec<Duration> = acked
        .iter()
        .zip(seen.iter())
        .filter(|(_, s)| s.load(Ordering::Relaxed) > 0)
        .map(|(a, s)| {
            Duration::from_nanos(
                s.load(Ordering::Relaxed).saturating_sub(a.load(Ordering::Relaxed)),
            )
        })
        .collect();
    assert_eq!(lat.len(), samples, "the follower saw every write");
    lat.sort();
    lat
}

/// Puts per second of [`WRITERS`] threads for [`RUN`], with `followers` follower processes.
fn throughput(followers: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.put("w", "seed", &0u64).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<Child> = (0..followers)
        .map(|_| {
            Command::new(&exe)
                .env(FOLLOWER_ENV, dir.path())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in &mut children {
        let mut line = String::new();
        std::io::BufReader::new(c.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (store, stop, count) = (store.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    store.put("w", &format!("t{t}-{}", i % 1000), &i).unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(RUN);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let rate = count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    for mut c in children {
        drop(c.stdin.take());
        c.wait().unwrap();
    }
    rate
}

/// The follower process of [`throughput`]: follow until stdin closes.
fn follower_process(dir: &str) {
    let f = Follower::open(dir).unwrap();
    f.follow().unwrap();
    println!("READY");
    std::io::stdout().flush().unwrap();
    let mut sink = String::new();
    let _ = std::io::stdin().read_line(&mut sink);
    assert!(f.applied_lsn() > 0);
}

fn main() {
    if let Ok(dir) = std::env::var(FOLLOWER_ENV) {
        return follower_process(&dir);
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let samples = std::env::var("WALDEN_BENCH_SAMPLES").ok().and_then(|s| s.parse().ok());
    let samples = samples.unwrap_or(2000);
    let part = std::env::var("WALDEN_BENCH_PART").unwrap_or_default();
    let latency = [("refresh() loop", false), ("follow() + wait_for", true)];
    for (name, follow) in latency.into_iter().filter(|_| part != "throughput") {
        let lat = ack_to_visible(samples, follow);
        println!(
            "ack -> visible, {name}: p50 {:?}, p99 {:?}, max {:?} ({samples} writes)",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat[lat.len() - 1]
        );
    }
    if part == "latency" {
        return;
    }
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..ROUNDS * 2 {
        let followers = if round % 2 == 0 { 0 } else { 3 };
        let rate = throughput(followers);
        println!("writer throughput, {WRITERS} threads, {followers} followers: {rate:.0} puts/s");
        rates[round % 2].push(rate);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (m0, m3) = (median(&mut rates[0]), median(&mut rates[1]));
    println!(
        "median: 0 followers {m0:.0} puts/s, 3 followers {m3:.0} puts/s, ratio {:.2}",
        m3 / m0
    );
}
