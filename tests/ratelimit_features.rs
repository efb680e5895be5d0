//! Rate-limiter features against a real store: `reset(key)` logged and surviving a reopen,
//! typed errors for a zero or over-burst cost (nothing written), the blocking
//! `wait_until_ready`, violation history, and saturation tests that offer at least ten times
//! the quota and check both bounds of what GCRA admits: never more than
//! `burst + rate × elapsed`, and not far fewer.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use walden::{Clock, Durability, Error, ManualClock, Options, Quota, Store, SystemClock};

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * S;

fn open(dir: &Path, clock: &ManualClock) -> Store {
    let options = Options { clock: Arc::new(clock.clone()), ..Options::default() };
    Store::open_with(dir, options).unwrap()
}

#[test]
fn reset_forgives_a_key_durably() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let store = open(dir.path(), &clock);
        let login = store.rate_limiter("login", Quota::per_hour(3)).unwrap();
        for _ in 0..3 {
            assert!(login.check("alice").unwrap().allowed);
            assert!(login.check("bob").unwrap().allowed);
        }
        assert!(!login.check("alice").unwrap().allowed);
        let lsn = store.stats().last_lsn;
        assert!(login.reset("alice").unwrap(), "alice had spent cells");
        assert_eq!(store.stats().durable_lsn, lsn + 1, "one fsynced record");
        assert!(!login.reset("carol").unwrap(), "nothing to forgive: nothing written");
        assert_eq!(store.stats().last_lsn, lsn + 1);
    }
    let store = open(dir.path(), &clock);
    let login = store.rate_limiter("login", Quota::per_hour(3)).unwrap();
    assert_eq!(login.peek("alice").unwrap().remaining, 3, "the reset survived the reopen");
    assert!(!login.check("bob").unwrap().allowed, "other keys are untouched");
}

#[test]
fn zero_and_over_burst_costs_are_their_own_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &ManualClock::new(T0));
    let l = store.rate_limiter("w", Quota::per_second(10)).unwrap();
    let lsn = store.stats().last_lsn;
    assert!(matches!(l.check_n("k", 0), Err(Error::ZeroCost)));
    match l.check_n("k", 11) {
        Err(Error::InsufficientCapacity { cost, burst }) => assert_eq!((cost, burst), (11, 10)),
        other => panic!("expected InsufficientCapacity, got {other:?}"),
    }
    let broken = Quota::per_second(0);
    assert!(matches!(l.check_with("k", 1, &broken), Err(Error::InvalidQuota { .. })));
    assert_eq!(store.stats().last_lsn, lsn);
    assert_eq!(l.peek("k").unwrap().remaining, 10);
}

#[test]
fn wait_until_ready_blocks_until_a_cell_is_back_or_gives_up_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let l = store.rate_limiter("w", Quota::per_second(20).with_burst(1)).unwrap(); // T = 50 ms
    let l = l.with_durability(Durability::Buffered);
    assert!(l.check("k").unwrap().allowed);
    let started = Instant::now();
    let d = l.wait_until_ready("k", Duration::from_secs(5)).unwrap();
    assert!(d.allowed);
    assert!(started.elapsed() >= Duration::from_millis(30), "it waited for the cell");
    let started = Instant::now();
    let d = l.wait_until_ready("k", Duration::from_millis(1)).unwrap();
    assert!(!d.allowed && d.retry_after > Duration::from_millis(1));
    assert!(started.elapsed() < Duration::from_millis(40), "gave up without sleeping");
    assert_eq!(l.violations("k"), None, "waiting is not a violation");
}

#[test]
fn violation_history_counts_denials_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open(dir.path(), &clock);
    let l = store.rate_limiter("api", Quota::per_minute(2)).unwrap();
    for _ in 0..10 {
        let _ = l.check("mallory").unwrap();
        clock.advance_ns(S / 10);
    }
    let _ = l.check("alice").unwrap();
    let h = l.violations("mallory").unwrap();
    assert_eq!((h.denials, h.first_denied_unix_ns), (8, T0 + 2 * S / 10));
    assert_eq!(h.last_denied_unix_ns, T0 + 9 * S / 10);
    assert_eq!(l.violations("alice"), None);
    assert_eq!(l.violators().len(), 1);
    let short = l.clone().with_violation_retention(Duration::from_secs(5));
    let _ = short.check("eve").unwrap();
    let _ = short.check("eve").unwrap();
    let _ = short.check("eve").unwrap();
    clock.advance_ns(6 * S);
    assert_eq!(l.violations("eve"), None, "expired 5 s after the last denial");
}

/// Offers checks on one key as fast as one thread can, for `quota`'s key over `duration` of
/// a manual clock stepped by `step_ns`; returns (offered, allowed).
fn saturate(
    l: &walden::RateLimiter,
    clock: &ManualClock,
    duration_ns: u64,
    step_ns: u64,
) -> (u64, u64) {
    let (mut offered, mut allowed) = (0, 0);
    let end = clock.now_unix_ns() + duration_ns;
    while clock.now_unix_ns() <= end {
        offered += 1;
        allowed += u64::from(l.check("hot").unwrap().allowed);
        clock.advance_ns(step_ns);
    }
    (offered, allowed)
}

#[test]
fn a_saturated_limiter_admits_exactly_what_gcra_allows() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open(dir.path(), &clock);
    // 100/s, burst 10, for 10 s, offered 2,000/s (20× the quota), then 20,000/s.
    for (name, step_ns) in [("x20", S / 2_000), ("x200", S / 20_000)] {
        let l = store
            .rate_limiter(name, Quota::per_second(100).with_burst(10))
            .unwrap()
            .with_durability(Durability::Buffered);
        let (offered, allowed) = saturate(&l, &clock, 10 * S, step_ns);
        let bound = 10 + 100 * 10; // burst + rate × elapsed
        assert!(offered >= 10 * bound, "{name}: offered {offered}");
        assert!(allowed <= bound + 1, "{name}: {allowed} allowed, GCRA allows {bound}");
        assert!(allowed >= bound - 1, "{name}: only {allowed} of {bound} allowed");
    }
}

#[test]
fn a_saturated_limiter_under_concurrent_callers_stays_within_both_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let l = store
        .rate_limiter("hot", Quota::per_second(200).with_burst(20))
        .unwrap()
        .with_durability(Durability::Buffered);
    let (offered, allowed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let start_ns = SystemClock.now_unix_ns();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (l, offered, allowed, stop) =
                (l.clone(), offered.clone(), allowed.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    offered.fetch_add(1, Ordering::Relaxed);
                    if l.check("k").unwrap().allowed {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1_500));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let elapsed_ns = SystemClock.now_unix_ns() - start_ns;
    let (offered, allowed) = (offered.load(Ordering::Relaxed), allowed.load(Ordering::Relaxed));
    // Cells GCRA can hand out in the time the callers ran: the burst plus one per 5 ms.
    let bound = 20 + elapsed_ns / (S / 200);
    assert!(offered >= 10 * bound, "offered {offered} for a bound of {bound}: not saturated");
    assert!(allowed <= bound + 1, "{allowed} allowed, GCRA allows {bound}");
    // A caller descheduled for longer than a burst (100 ms) loses cells: allow 20 % for a
    // machine shared with other work.
    assert!(allowed * 10 >= bound * 8, "only {allowed} of {bound} allowed");
}

#[test]
fn violation_histories_of_idle_keys_do_not_stay_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open(dir.path(), &clock);
    let l = store
        .rate_limiter("spray", Quota::per_second(1).with_burst(1))
        .unwrap()
        .with_durability(Durability::Buffered)
        .with_violation_retention(Duration::from_secs(1));
    let mut max_histories = 0;
    for i in 0..30_000u64 {
        let key = format!("ip-{i}");
        assert!(l.check(&key).unwrap().allowed);
        assert!(!l.check(&key).unwrap().allowed);
        clock.advance_ns(S / 100); // about 100 keys and histories live at any time
        max_histories = max_histories.max(store.rate_limit_stats().violation_keys);
    }
    assert!(max_histories <= 2 * 1024, "max histories resident {max_histories}");
    clock.advance_ns(2 * S);
    store.sweep_rate_limits();
    let stats = store.rate_limit_stats();
    assert_eq!((stats.resident_keys, stats.violation_keys), (0, 0));
}
