//! Several processes share one Redis: 4 processes × 16 threads on one saturated rate limiter
//! (every decision counted, both bounds checked against GCRA), a breaker tripped by one process
//! and seen Open by the others, and 4 × 16 `update` loops ending at exact counter totals.
//!
//! The test binary re-executes itself: a child runs the same test function with
//! `WALDEN_REDIS_CHILD` naming its role and `WALDEN_REDIS_URL` the parent's private server, and
//! prints `RESULT …` lines the parent adds up.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::RedisServer;
use walden::api::{Admission, Backend, DocumentsExt};
use walden::{BreakerConfig, CircuitState, Quota};
use walden_redis::{RedisBackend, RedisConfig};

const CHILD_ENV: &str = "WALDEN_REDIS_CHILD";
const URL_ENV: &str = "WALDEN_REDIS_URL";
const START_ENV: &str = "WALDEN_REDIS_START_NS";
const PROCESSES: usize = 4;
const THREADS: usize = 16;

/// The limiter: 100 per second, burst 100.
fn limiter_quota() -> Quota {
    Quota::per_second(100)
}
/// How long the children hammer the limiter.
const LIMIT_RUN: Duration = Duration::from_secs(2);
const UPDATES_PER_THREAD: u64 = 20;
const COUNTER_KEYS: usize = 4;

fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

fn child_backend() -> RedisBackend {
    let mut c = RedisConfig::new(std::env::var(URL_ENV).unwrap());
    c.timeout = Duration::from_secs(10);
    RedisBackend::connect(c).unwrap()
}

fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// Runs `test` in `n` child processes with `role`; returns every `RESULT` line they printed.
fn run_children(
    test: &str,
    role: &str,
    n: usize,
    server: &RedisServer,
    env: &[(&str, String)],
) -> Vec<String> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            let mut cmd = Command::new(std::env::current_exe().unwrap());
            cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, role)
                .env(URL_ENV, server.url())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            for (k, v) in env {
                cmd.env(k, v);
            }
            cmd.spawn().unwrap()
        })
        .collect();
    let mut lines = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "child {role} failed: {:?}", out.status);
        let text = String::from_utf8(out.stdout).unwrap();
        // libtest prints "test NAME ... " before the test's own output, on the same line.
        let results = text.lines().filter_map(|l| l.split_once("RESULT ").map(|(_, r)| r));
        lines.extend(results.map(String::from));
    }
    lines
}

fn hammer_limiter() {
    let backend = child_backend();
    let limiter = backend.rate_limiter("shared", limiter_quota()).unwrap();
    let start: u64 = std::env::var(START_ENV).unwrap().parse().unwrap();
    let end = start + LIMIT_RUN.as_nanos() as u64;
    let (allowed, denied) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            let (limiter, allowed, denied) = (&limiter, &allowed, &denied);
            s.spawn(move || {
                while unix_ns() < start {
                    std::thread::sleep(Duration::from_micros(200));
                }
                while unix_ns() < end {
                    let d = limiter.check("one-key").unwrap();
                    let counter = if d.allowed { allowed } else { denied };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    println!("RESULT {} {}", allowed.load(Ordering::Relaxed), denied.load(Ordering::Relaxed));
}

#[test]
fn processes_sharing_a_saturated_limiter_get_what_gcra_allows_in_total() {
    match child_role().as_deref() {
        Some("limiter") => return hammer_limiter(),
        Some(_) => return,
        None => {}
    }
    let server = RedisServer::start();
    // Children start together, a moment after all of them are up.
    let start = unix_ns() + 1_500_000_000;
    let lines = run_children(
        "processes_sharing_a_saturated_limiter_get_what_gcra_allows_in_total",
        "limiter",
        PROCESSES,
        &server,
        &[(START_ENV, start.to_string())],
    );
    assert_eq!(lines.len(), PROCESSES);
    // Redis's clock once every child has exited: no check was decided later than this.
    let mut con = redis::Client::open(server.url()).unwrap().get_connection().unwrap();
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query(&mut con).unwrap();
    let last_ns = secs * 1_000_000_000 + micros * 1_000;
    let (mut allowed, mut denied) = (0u64, 0u64);
    for l in &lines {
        let mut it = l.split(' ').map(|n| n.parse::<u64>().unwrap());
        allowed += it.next().unwrap();
        denied += it.next().unwrap();
    }
    let q = limiter_quota();
    let interval_ns = q.interval().as_nanos() as u64;
    // GCRA: the burst at once, then one cell per interval, between the first check (no child
    // checks before `start`; Redis's TIME and the children's clock are this machine's clock)
    // and the last one (before `last_ns`). Not far fewer: a saturated key spends every cell
    // of the run but those that came back after the last checks; 80% of the run must be.
    let most = u64::from(q.burst()) + (last_ns - start) / interval_ns + 1;
    let run_ns = LIMIT_RUN.as_nanos() as u64;
    let fewest = u64::from(q.burst()) + run_ns * 8 / 10 / interval_ns;
    eprintln!("allowed {allowed}, denied {denied}, bounds {fewest}..={most}");
    assert!(allowed <= most, "allowed {allowed} > {most}");
    assert!(
        allowed >= fewest,
        "allowed {allowed} < {fewest}: the limiter was not saturated or lost cells"
    );
    assert!(allowed + denied >= 10 * allowed, "offered {} is not 10× the quota", allowed + denied);
}

#[test]
fn a_breaker_tripped_in_one_process_is_open_in_the_others() {
    let config = BreakerConfig { open_duration: Duration::from_secs(600), ..Default::default() };
    match child_role().as_deref() {
        Some("trip") => {
            let b = child_backend().breaker("payments", config).unwrap();
            for _ in 0..3 {
                let Admission::Permitted(p) = b.try_acquire().unwrap() else { panic!("closed") };
                p.failure().unwrap();
            }
            println!("RESULT {:?}", b.state().unwrap());
            return;
        }
        Some("observe") => {
            let b = child_backend().breaker("payments", config).unwrap();
            // A permit is reported as a success: a dropped one would count as a failure.
            let rejected = match b.try_acquire().unwrap() {
                Admission::Rejected { retry_after } => retry_after.is_some(),
                Admission::Permitted(p) => !p.success().unwrap(),
            };
            println!("RESULT {:?} {rejected}", b.state().unwrap());
            return;
        }
        Some(_) => return,
        None => {}
    }
    let server = RedisServer::start();
    let test = "a_breaker_tripped_in_one_process_is_open_in_the_others";
    let before = run_children(test, "observe", 1, &server, &[]);
    assert_eq!(before, ["Closed false"]);
    assert_eq!(run_children(test, "trip", 1, &server, &[]), ["Open"]);
    let after = run_children(test, "observe", PROCESSES - 1, &server, &[]);
    assert_eq!(after, vec!["Open true"; PROCESSES - 1]);
    // And this process too.
    let b = server.backend().breaker("payments", config).unwrap();
    assert_eq!(b.state().unwrap(), CircuitState::Open);
}

#[test]
fn updates_from_many_processes_and_threads_end_at_exact_totals() {
    match child_role().as_deref() {
        Some("update") => {
            let backend = child_backend();
            std::thread::scope(|s| {
                for t in 0..THREADS {
                    let backend = &backend;
                    s.spawn(move || {
                        let key = format!("k{}", t % COUNTER_KEYS);
                        for _ in 0..UPDATES_PER_THREAD {
                            backend
                                .update::<u64, _>("counters", &key, |n| Some(n.unwrap_or(0) + 1))
                                .unwrap();
                        }
                    });
                }
            });
            println!("RESULT done");
            return;
        }
        Some(_) => return,
        None => {}
    }
    let server = RedisServer::start();
    let test = "updates_from_many_processes_and_threads_end_at_exact_totals";
    assert_eq!(run_children(test, "update", PROCESSES, &server, &[]).len(), PROCESSES);
    let backend = server.backend();
    let per_key = (PROCESSES * THREADS / COUNTER_KEYS) as u64 * UPDATES_PER_THREAD;
    for k in 0..COUNTER_KEYS {
        let doc = backend.get::<u64>("counters", &format!("k{k}")).unwrap().unwrap();
        assert_eq!(doc.value, per_key, "k{k}");
        assert_eq!(doc.version, per_key, "one version per update");
    }
}
