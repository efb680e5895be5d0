//! Limiter and breaker state folded into a snapshot by compaction: after the records are gone
//! from the log (segments deleted), a reopen rebuilds the same state from the snapshot entries
//! — a spent key is still denied with the exact `retry_after`, the high-water mark still holds
//! time back, idle keys are not carried over, and an open and a forced-open breaker stay so.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use walden::{Acquire, BreakerConfig, CircuitState, ManualClock, Options, Quota, Store};

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * S;

fn open(dir: &Path, clock: &ManualClock) -> Store {
    let options =
        Options { clock: Arc::new(clock.clone()), auto_compact: false, ..Options::default() };
    Store::open_with(dir, options).unwrap()
}

#[test]
fn limiter_and_breaker_state_survive_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let quota = Quota::per_minute(5); // T = 12 s
    {
        let store = open(dir.path(), &clock);
        let l = store.rate_limiter("login", quota).unwrap();
        assert!(l.check("idle-soon").unwrap().allowed);
        clock.advance_ns(20 * S); // idle-soon is idle from T0 + 12 s
        for _ in 0..5 {
            assert!(l.check("mallory").unwrap().allowed);
        }
        let b = store.breaker("upstream", BreakerConfig::default()).unwrap();
        for _ in 0..3 {
            let Acquire::Permitted(p) = b.try_acquire().unwrap() else { panic!("rejected") };
            p.failure().unwrap();
        }
        store.breaker("manual", BreakerConfig::default()).unwrap().force_open().unwrap();
        let report = store.compact().unwrap().expect("there was something to compact");
        assert!(report.segments_deleted >= 1, "the records must be gone from the log: {report:?}");
    }
    clock.set_ns(T0 + 10 * S); // the clock steps back 11 s across the restart
    let store = open(dir.path(), &clock);
    let stats = store.rate_limit_stats();
    assert_eq!(stats.resident_keys, 1, "only mallory is live: {stats:?}");
    assert_eq!(stats.high_water_unix_ns, T0 + 20 * S, "mark kept by the snapshot");
    let l = store.rate_limiter("login", quota).unwrap();
    let d = l.check("mallory").unwrap();
    assert!(!d.allowed);
    assert_eq!(
        d.retry_after,
        Duration::from_secs(12),
        "measured from the mark, not the stepped-back clock"
    );
    let b = store.breaker("upstream", BreakerConfig::default()).unwrap();
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(b.health().open_until_unix_ns, Some(T0 + 80 * S));
    let manual = store.breaker("manual", BreakerConfig::default()).unwrap();
    assert_eq!((manual.state(), manual.health().generation), (CircuitState::ForcedOpen, 1));
}
