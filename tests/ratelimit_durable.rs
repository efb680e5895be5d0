//! Rate limiters against a real store, time driven by a `ManualClock`: the GCRA decisions and
//! their HTTP fields, state intact across a reopen, a clock stepping back grants nothing,
//! denials write nothing, allowed checks are fsynced before they return, and a million one-off
//! keys do not stay resident once idle. The SIGKILL test is in `breaker_ratelimit_kill9.rs`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use walden::{Durability, Error, LimitKind, ManualClock, Options, Quota, Store};

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * S;

fn open(dir: &Path, clock: &ManualClock) -> Store {
    let options = Options { clock: Arc::new(clock.clone()), ..Options::default() };
    Store::open_with(dir, options).unwrap()
}

/// A new store with the clock at `t`. The directory lives as long as the result.
fn fresh(t: u64) -> (tempfile::TempDir, ManualClock, Store) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(t);
    let store = open(dir.path(), &clock);
    (dir, clock, store)
}

#[test]
fn burst_then_denial_with_http_fields() {
    let (_dir, clock, store) = fresh(T0);
    let api = store.rate_limiter("api", Quota::per_minute(10)).unwrap();
    for i in 0..10 {
        let d = api.check("alice").unwrap();
        assert!(d.allowed, "check {i}");
        assert_eq!((d.limit, d.remaining), (10, 9 - i));
    }
    let d = api.check("alice").unwrap();
    assert!(!d.allowed);
    assert_eq!(d.remaining, 0);
    assert_eq!(d.retry_after, Duration::from_secs(6));
    assert_eq!(d.reset_after, Duration::from_secs(60));
    clock.advance_ns(6 * S);
    assert!(api.check("alice").unwrap().allowed, "one cell back after T");
    assert!(!api.check("alice").unwrap().allowed);
}

#[test]
fn state_survives_a_reopen_in_the_middle_of_limiting() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let store = open(dir.path(), &clock);
        let api = store.rate_limiter("api", Quota::per_minute(10)).unwrap();
        for _ in 0..4 {
            assert!(api.check("bob").unwrap().allowed);
        }
        assert!(api.check_n("carol", 10).unwrap().allowed);
        store.close().unwrap();
    }
    let store = open(dir.path(), &clock);
    let api = store.rate_limiter("api", Quota::per_minute(10)).unwrap();
    let peek = api.peek("bob").unwrap();
    assert_eq!((peek.allowed, peek.remaining), (true, 6));
    assert_eq!(peek.reset_after, Duration::from_secs(24));
    for _ in 0..6 {
        assert!(api.check("bob").unwrap().allowed);
    }
    let d = api.check("carol").unwrap();
    assert!(!d.allowed);
    assert_eq!(d.retry_after, Duration::from_secs(6));
    assert_eq!(store.rate_limit_stats().resident_keys, 2);
}

#[test]
fn clock_stepping_back_grants_nothing_even_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0 + 100 * S);
    let quota = Quota::per_second(1).with_burst(2);
    {
        let store = open(dir.path(), &clock);
        let l = store.rate_limiter("l", quota).unwrap();
        assert!(l.check("k").unwrap().allowed);
        assert!(l.check("k").unwrap().allowed);
        clock.set_ns(T0); // 100 s back
        let d = l.check("k").unwrap();
        assert_eq!((d.allowed, d.retry_after), (false, Duration::from_secs(1)));
        assert_eq!(store.rate_limit_stats().high_water_unix_ns, T0 + 100 * S);
    }
    // The high-water mark comes back from the log: time still reads T0 + 100 s.
    let store = open(dir.path(), &clock);
    assert_eq!(store.rate_limit_stats().high_water_unix_ns, T0 + 100 * S);
    let l = store.rate_limiter("l", quota).unwrap();
    let d = l.check("k").unwrap();
    assert_eq!((d.allowed, d.retry_after), (false, Duration::from_secs(1)));
    // A fresh key is not handed extra time either: its TAT starts at the mark.
    assert_eq!(l.check("new").unwrap().reset_after, Duration::from_secs(1));
}

#[test]
fn per_call_quotas_weighted_checks_and_typed_errors() {
    let (_dir, _clock, store) = fresh(T0);
    let l = store.rate_limiter("plans", Quota::per_second(1)).unwrap();
    let gold = Quota::per_second(100);
    for _ in 0..100 {
        assert!(l.check_with("gold-user", 1, &gold).unwrap().allowed);
    }
    assert!(!l.check_with("gold-user", 1, &gold).unwrap().allowed);
    assert!(l.check("free-user").unwrap().allowed);
    assert!(!l.check("free-user").unwrap().allowed);
    let w = store.rate_limiter("weighted", Quota::per_second(10)).unwrap();
    assert_eq!(w.check_n("k", 7).unwrap().remaining, 3);
    assert!(!w.check_n("k", 4).unwrap().allowed, "all or nothing");
    assert_eq!(w.check_n("k", 3).unwrap().remaining, 0);
    assert!(matches!(w.check_n("k", 11), Err(Error::InvalidQuota { .. })));
    assert!(matches!(
        store.rate_limiter("bad name", Quota::per_second(1)),
        Err(Error::InvalidName { what: LimitKind::LimiterName, .. })
    ));
    assert!(matches!(
        store.rate_limiter("x", Quota::per_second(0)),
        Err(Error::InvalidQuota { .. })
    ));
    assert!(matches!(w.check(""), Err(Error::InvalidName { what: LimitKind::Key, .. })));
}

#[test]
fn denials_and_peeks_write_nothing_and_allowed_checks_are_fsynced_first() {
    let (_dir, _clock, store) = fresh(T0);
    let l = store.rate_limiter("l", Quota::per_hour(1)).unwrap();
    let before = store.stats().last_lsn;
    assert!(l.check("k").unwrap().allowed);
    let after = store.stats();
    assert_eq!(after.last_lsn, before + 1, "one record per allowed check");
    assert_eq!(after.durable_lsn, after.last_lsn, "Immediate: fsynced before returning");
    for _ in 0..5 {
        assert!(!l.check("k").unwrap().allowed);
        assert!(!l.peek("k").unwrap().allowed);
    }
    assert_eq!(store.stats().last_lsn, before + 1);
}

#[test]
fn concurrent_checks_on_one_key_never_exceed_the_burst() {
    let (_dir, _clock, store) = fresh(T0);
    let l = store.rate_limiter("shared", Quota::per_hour(40)).unwrap();
    let allowed: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let l = l.clone();
                s.spawn(move || (0..10).filter(|_| l.check("hot").unwrap().allowed).count())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(allowed, 40, "80 concurrent checks against a burst of 40");
    let s = store.stats();
    assert_eq!((s.last_lsn, s.durable_lsn), (40, 40), "one durable record per allowed check");
}

#[test]
fn a_million_one_off_keys_do_not_stay_resident_once_idle() {
    const KEYS: u64 = 1_000_000;
    const THREADS: u64 = 4;
    let (_dir, clock, store) = fresh(T0);
    // Every key is seen once and idle 10 ms later; the clock moves 1 µs per check.
    let l = store
        .rate_limiter("ip", Quota::per_second(100))
        .unwrap()
        .with_durability(Durability::Buffered);
    let max_resident = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (l, clock, store) = (l.clone(), clock.clone(), store.clone());
                s.spawn(move || {
                    let mut max_resident = 0;
                    for i in (t..KEYS).step_by(THREADS as usize) {
                        clock.advance_ns(1_000);
                        assert!(l.check(&format!("10.{i}")).unwrap().allowed);
                        if i % 4096 == t {
                            max_resident = max_resident.max(store.rate_limit_stats().resident_keys);
                        }
                    }
                    max_resident
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).max().unwrap()
    });
    let stats = store.rate_limit_stats();
    // 10 ms of keys at 1 µs each are live at any time; sweeps run at twice the live count.
    assert!(max_resident <= 2 * 10_000 + 1024, "resident peaked at {max_resident}");
    assert!(stats.swept_keys >= KEYS - 2 * 10_000 - 1024, "{stats:?}");
    clock.advance_ns(10_000_000);
    store.sweep_rate_limits();
    let stats = store.rate_limit_stats();
    assert_eq!((stats.resident_keys, stats.swept_keys), (0, KEYS));
}
