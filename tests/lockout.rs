//! Lockouts against a real store, time driven by a `ManualClock`: N failures within W lock a
//! key for D, old failures age out, a success forgives, a reset unlocks, the state survives a
//! reopen and a compaction, the lock is fsynced before `failure` returns while plain failures
//! are not waited for, bad input is a typed error, and idle keys do not stay in memory. The
//! SIGKILL test is in `limits_kill9.rs`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use walden::{Error, LimitKind, LockoutConfig, ManualClock, Options, Store};

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * S;
const MIN: u64 = 60 * S;

fn open(dir: &Path, clock: &ManualClock) -> Store {
    let options = Options { clock: Arc::new(clock.clone()), ..Options::default() };
    Store::open_with(dir, options).unwrap()
}

fn config() -> LockoutConfig {
    let min15 = Duration::from_secs(15 * 60);
    LockoutConfig::new(5, min15, min15)
}

#[test]
fn five_failures_lock_a_key_for_fifteen_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open(dir.path(), &clock);
    let logins = store.lockout("login", config()).unwrap();
    for i in 0..4 {
        let s = logins.failure("alice").unwrap();
        assert_eq!((s.locked, s.remaining_attempts), (false, 4 - i));
        clock.advance_ns(MIN);
    }
    let lsn = store.stats().last_lsn;
    let s = logins.failure("alice").unwrap();
    assert!(s.locked);
    assert_eq!(s.retry_after, Duration::from_secs(15 * 60));
    let stats = store.stats();
    assert_eq!((stats.last_lsn, stats.durable_lsn), (lsn + 1, lsn + 1), "the lock is fsynced");
    clock.advance_ns(14 * MIN);
    assert!(logins.check("alice").unwrap().locked);
    assert!(logins.failure("alice").unwrap().locked, "failures while locked change nothing");
    assert_eq!(store.stats().last_lsn, lsn + 1);
    clock.advance_ns(MIN);
    let s = logins.check("alice").unwrap();
    assert_eq!((s.locked, s.failures, s.remaining_attempts), (false, 0, 5));
}

#[test]
fn old_failures_age_out_and_a_success_forgives() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open(dir.path(), &clock);
    let logins = store.lockout("login", config()).unwrap();
    for _ in 0..4 {
        logins.failure("bob").unwrap();
    }
    clock.advance_ns(16 * MIN);
    assert_eq!(logins.failure("bob").unwrap().failures, 1, "the four are older than 15 min");
    for _ in 0..3 {
        logins.failure("bob").unwrap();
    }
    assert_eq!(logins.success("bob").unwrap().failures, 0, "a good login forgives");
    for _ in 0..4 {
        assert!(!logins.failure("bob").unwrap().locked);
    }
    for _ in 0..5 {
        logins.failure("carol").unwrap();
    }
    assert!(logins.success("carol").unwrap().locked, "a success does not lift a lock");
    assert!(logins.reset("carol").unwrap());
    assert!(!logins.check("carol").unwrap().locked);
}

#[test]
fn state_survives_a_reopen_and_a_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let store = open(dir.path(), &clock);
        let logins = store.lockout("login", config()).unwrap();
        for _ in 0..5 {
            logins.failure("alice").unwrap();
        }
        for _ in 0..2 {
            logins.failure("bob").unwrap();
        }
        logins.failure("idle").unwrap();
        store.close().unwrap();
    }
    clock.advance_ns(MIN);
    {
        let store = open(dir.path(), &clock);
        let logins = store.lockout("login", config()).unwrap();
        assert_eq!(logins.check("alice").unwrap().retry_after, Duration::from_secs(14 * 60));
        assert_eq!(logins.check("bob").unwrap().failures, 2);
        clock.advance_ns(20 * MIN); // alice unlocked, bob and idle out of the window
        logins.failure("dave").unwrap();
        assert!(store.compact().unwrap().is_some());
        store.close().unwrap();
    }
    let store = open(dir.path(), &clock);
    assert_eq!(store.lockout_stats().resident_keys, 1, "only dave is live");
    let logins = store.lockout("login", config()).unwrap();
    assert_eq!(logins.check("dave").unwrap().failures, 1);
    assert!(!logins.check("alice").unwrap().locked);
}

#[test]
fn bad_names_keys_and_configs_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &ManualClock::new(T0));
    assert!(matches!(
        store.lockout("bad name", config()),
        Err(Error::InvalidName { what: LimitKind::LockoutName, .. })
    ));
    let zero = LockoutConfig { max_failures: 0, ..config() };
    assert!(matches!(store.lockout("l", zero), Err(Error::InvalidLockoutConfig { .. })));
    let instant = LockoutConfig { lockout: Duration::ZERO, ..config() };
    assert!(matches!(store.lockout("l", instant), Err(Error::InvalidLockoutConfig { .. })));
    let logins = store.lockout("l", config()).unwrap();
    assert!(matches!(logins.failure(""), Err(Error::InvalidName { what: LimitKind::Key, .. })));
}

#[test]
fn idle_keys_do_not_stay_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open(dir.path(), &clock);
    let short = LockoutConfig::new(3, Duration::from_secs(1), Duration::from_secs(1));
    let l = store.lockout("spray", short).unwrap();
    let mut max_resident = 0;
    for i in 0..50_000u64 {
        l.failure(&format!("user-{i}")).unwrap();
        clock.advance_ns(S / 100); // 100 keys live at any time
        max_resident = max_resident.max(store.lockout_stats().resident_keys);
    }
    assert!(max_resident <= 1_024, "max resident {max_resident}");
    clock.advance_ns(2 * S);
    store.sweep_lockouts();
    assert_eq!(store.lockout_stats().resident_keys, 0);
}
