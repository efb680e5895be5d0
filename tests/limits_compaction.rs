//! The state added beside limiter TATs and breaker transitions, folded into a snapshot by
//! compaction: after the segments holding its records are deleted, a reopen finds breaker
//! counters (streak, totals, why it opened, the last open period that the backoff grows from),
//! violation histories and lockouts as they were — and nothing idle or expired.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use walden::{
    Backoff, BreakerConfig, CallError, CircuitState, ManualClock, Options, Quota, Store, TripReason,
};

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * S;

fn open(dir: &Path, clock: &ManualClock) -> Store {
    let options =
        Options { clock: Arc::new(clock.clone()), auto_compact: false, ..Options::default() };
    Store::open_with(dir, options).unwrap()
}

fn fail(b: &walden::CircuitBreaker) {
    let r: Result<(), CallError<&str>> = b.call(|| Err("down"));
    assert!(matches!(r, Err(CallError::Failed(_)) | Err(CallError::Rejected { .. })));
}

#[test]
fn counters_histories_and_backoff_survive_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let backoff = BreakerConfig {
        open_duration: Duration::from_secs(10),
        open_backoff: Some(Backoff {
            factor: 2,
            max_open_duration: Duration::from_secs(600),
            jitter_percent: 0,
        }),
        ..BreakerConfig::default()
    };
    {
        let store = open(dir.path(), &clock);
        let counted = store.breaker("counted", BreakerConfig::default()).unwrap();
        fail(&counted);
        clock.advance_ns(S);
        fail(&counted);
        let growing = store.breaker("growing", backoff.clone()).unwrap();
        for _ in 0..3 {
            fail(&growing);
        }
        clock.advance_ns(10 * S);
        fail(&growing); // the probe fails: open for 20 s
        clock.advance_ns(20 * S);
        assert_eq!(growing.state(), CircuitState::HalfOpen, "effective: the wait is over");
        let l = store.rate_limiter("api", Quota::per_hour(1)).unwrap();
        for _ in 0..3 {
            let _ = l.check("mallory").unwrap();
        }
        let short = l.clone().with_violation_retention(Duration::from_secs(1));
        let _ = short.check("brief").unwrap();
        let _ = short.check("brief").unwrap();
        clock.advance_ns(2 * S); // brief's history has expired
        assert!(store.compact().unwrap().is_some());
        store.close().unwrap();
    }
    let store = open(dir.path(), &clock);
    let counted = store.breaker("counted", BreakerConfig::default()).unwrap().health();
    assert_eq!((counted.state, counted.counts.consecutive_failures), (CircuitState::Closed, 2));
    assert_eq!(counted.counts.failures, 2);
    let growing = store.breaker("growing", backoff).unwrap();
    let h = growing.health();
    assert_eq!(h.reason, Some(TripReason::ProbeFailed));
    assert_eq!((h.counts.calls, h.counts.failures), (4, 4));
    // The next probe fails: the open period doubles from the 20 s the snapshot remembers.
    fail(&growing);
    let h = growing.health();
    assert_eq!(h.open_until_unix_ns.unwrap() - h.last_transition_unix_ns, 40 * S);
    let l = store.rate_limiter("api", Quota::per_hour(1)).unwrap();
    assert_eq!(l.violations("mallory").unwrap().denials, 2);
    assert_eq!(l.violations("brief"), None);
    assert_eq!(store.rate_limit_stats().violation_keys, 1, "expired histories are not kept");
}
