//! Circuit-breaker features against a real store, time driven by a `ManualClock`: the closure
//! wrapper with its error predicate and slow-call threshold, a dropped permit counted as a
//! failure, the half-open timeout, time-based windows, the growing open duration, shadow mode,
//! a custom trip predicate, state-change listeners, and what `health()`/`store.breakers()`
//! report (effective state, reason, counts, half-open progress).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use walden::{
    Acquire, Backoff, BreakerConfig, CallError, CircuitBreaker, CircuitState, FailureRate,
    ManualClock, Options, Permit, StateChange, Store, TripPredicate, TripReason,
};

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * S;

fn open(dir: &Path, clock: &ManualClock) -> Store {
    let options = Options { clock: Arc::new(clock.clone()), ..Options::default() };
    Store::open_with(dir, options).unwrap()
}

fn fresh(config: BreakerConfig) -> (tempfile::TempDir, ManualClock, Store, CircuitBreaker) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open(dir.path(), &clock);
    let b = store.breaker("dep", config).unwrap();
    (dir, clock, store, b)
}

fn permit(b: &CircuitBreaker) -> Permit {
    match b.try_acquire().unwrap() {
        Acquire::Permitted(p) => p,
        Acquire::Rejected { retry_after } => panic!("rejected, retry after {retry_after:?}"),
    }
}

fn fail(b: &CircuitBreaker) -> Result<(), CallError<&'static str>> {
    b.call(|| Err("down"))
}

#[derive(Debug, PartialEq)]
enum AppError {
    NotFound,
    Timeout,
}

#[test]
fn call_counts_errors_by_predicate_and_slow_successes_as_failures() {
    let config = BreakerConfig {
        slow_call_threshold: Some(Duration::from_secs(2)),
        ..BreakerConfig::default()
    };
    let (_dir, clock, _store, b) = fresh(config);
    let counts = |e: &AppError| *e == AppError::Timeout;
    for _ in 0..5 {
        let r: Result<(), _> = b.call_with(counts, || Err(AppError::NotFound));
        assert!(matches!(r, Err(CallError::Failed(AppError::NotFound))));
    }
    assert_eq!(b.health().counts.failures, 0, "a not-found is a healthy answer");
    assert_eq!(b.call(|| Ok::<_, AppError>(7)).unwrap(), 7);
    let slow = || {
        clock.advance_ns(3 * S);
        Ok::<_, AppError>(())
    };
    b.call(slow).unwrap();
    b.call(slow).unwrap();
    let r: Result<(), _> = b.call_with(counts, || Err(AppError::Timeout));
    assert!(matches!(r, Err(CallError::Failed(AppError::Timeout))));
    let h = b.health();
    assert_eq!(h.state, CircuitState::Open);
    assert_eq!(h.reason, Some(TripReason::ConsecutiveFailures { failures: 3 }));
    assert_eq!((h.counts.calls, h.counts.failures, h.counts.slow_calls), (9, 3, 2));
    let r = b.call(|| -> Result<(), AppError> { panic!("must not run") });
    assert!(matches!(r, Err(CallError::Rejected { retry_after: Some(_) })));
    assert_eq!(b.health().counts.rejected, 1);
}

#[test]
fn a_panicking_call_counts_as_a_failure_with_its_elapsed_time() {
    let config = BreakerConfig { consecutive_failures: Some(1), ..BreakerConfig::default() };
    let (_dir, _clock, _store, b) = fresh(config);
    let b2 = b.clone();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        b2.call(|| -> Result<(), ()> { panic!("boom") })
    }));
    assert!(r.is_err());
    assert_eq!(b.state(), CircuitState::Open, "the unwound permit counted as a failure");
}

#[test]
fn a_hung_probe_cannot_keep_the_breaker_half_open() {
    let config =
        BreakerConfig { half_open_timeout: Some(Duration::from_secs(10)), ..Default::default() };
    let (_dir, clock, _store, b) = fresh(config);
    for _ in 0..3 {
        let _ = fail(&b);
    }
    clock.advance_ns(60 * S);
    let hung = permit(&b); // never returns
    assert_eq!(b.state(), CircuitState::HalfOpen);
    clock.advance_ns(11 * S);
    let h = b.health();
    assert_eq!((h.state, h.logged_state), (CircuitState::Open, CircuitState::HalfOpen));
    assert_eq!(h.reason, Some(TripReason::ConsecutiveFailures { failures: 3 }));
    // The next call makes it so: open from the deadline (T0 + 70 s) for a full minute.
    assert!(
        matches!(b.try_acquire().unwrap(), Acquire::Rejected { retry_after: Some(d) } if d == Duration::from_secs(59))
    );
    let h = b.health();
    assert_eq!((h.logged_state, h.reason), (CircuitState::Open, Some(TripReason::HalfOpenTimeout)));
    assert_eq!(h.open_until_unix_ns, Some(T0 + 130 * S));
    assert!(!hung.success().unwrap(), "the hung probe belongs to an old generation");
}

#[test]
fn a_time_window_forgets_failures_from_hours_ago() {
    let config =
        BreakerConfig { failure_window: Some(Duration::from_secs(60)), ..BreakerConfig::default() };
    let (_dir, clock, _store, b) = fresh(config);
    for _ in 0..2 {
        let _ = fail(&b);
        clock.advance_ns(3600 * S);
    }
    let _ = fail(&b);
    assert_eq!(b.state(), CircuitState::Closed, "three failures, hours apart");
    assert_eq!(b.health().counts.consecutive_failures, 1);
    let _ = fail(&b);
    let _ = fail(&b);
    assert_eq!(b.state(), CircuitState::Open);
}

#[test]
fn failure_rate_window_reports_its_rate() {
    let rate = FailureRate { threshold_percent: 50, window_calls: 10, minimum_calls: 10 };
    let config = BreakerConfig {
        consecutive_failures: None,
        failure_rate: Some(rate),
        ..Default::default()
    };
    let (_dir, _clock, _store, b) = fresh(config);
    for i in 0..9 {
        if i % 3 == 2 {
            let _ = fail(&b);
        } else {
            b.call(|| Ok::<_, ()>(())).unwrap();
        }
    }
    let h = b.health();
    assert_eq!((h.counts.window_calls, h.counts.window_failures), (9, 3));
    assert_eq!(h.failure_rate_percent, Some(33));
    let _ = fail(&b); // 4 of 10
    let _ = fail(&b); // the oldest call, a success, slides out: 5 of 10
    let h = b.health();
    assert_eq!(h.state, CircuitState::Open);
    assert_eq!(h.reason, Some(TripReason::FailureRate { failures: 5, calls: 10 }));
}

#[test]
fn open_duration_grows_while_probes_fail_and_resets_after_closing() {
    let config = BreakerConfig {
        open_duration: Duration::from_secs(10),
        open_backoff: Some(Backoff {
            factor: 2,
            max_open_duration: Duration::from_secs(35),
            jitter_percent: 0,
        }),
        ..BreakerConfig::default()
    };
    let (dir, clock, store, b) = fresh(config.clone());
    for _ in 0..3 {
        let _ = fail(&b);
    }
    let mut waits = Vec::new();
    for _ in 0..4 {
        let h = b.health();
        let until = h.open_until_unix_ns.unwrap();
        waits.push((until - h.last_transition_unix_ns) / S);
        clock.set_ns(until);
        assert!(permit(&b).failure().unwrap());
    }
    assert_eq!(waits, [10, 20, 35, 35]);
    // The growth survives a restart: the last open period is in the log.
    drop((store, b));
    let store = open(dir.path(), &clock);
    let b = store.breaker("dep", config).unwrap();
    clock.set_ns(b.health().open_until_unix_ns.unwrap());
    assert!(permit(&b).failure().unwrap());
    let h = b.health();
    assert_eq!(h.open_until_unix_ns.unwrap() - h.last_transition_unix_ns, 35 * S);
    clock.set_ns(h.open_until_unix_ns.unwrap());
    assert!(permit(&b).success().unwrap());
    for _ in 0..3 {
        let _ = fail(&b);
    }
    let h = b.health();
    assert_eq!(h.open_until_unix_ns.unwrap() - h.last_transition_unix_ns, 10 * S);
}

#[test]
fn shadow_mode_lets_everything_through_and_counts_what_it_would_reject() {
    let config = BreakerConfig { shadow: true, ..BreakerConfig::default() };
    let (_dir, _clock, _store, b) = fresh(config);
    for _ in 0..10 {
        let _ = fail(&b);
    }
    let h = b.health();
    assert!(h.shadow);
    assert_eq!(h.state, CircuitState::Open, "what it would be");
    assert_eq!(h.counts.rejected, 7, "calls it would have rejected");
    assert_eq!(h.counts.failures, 3, "calls it let through in Open count nothing");
}

#[test]
fn a_custom_predicate_trips_the_breaker() {
    let config = BreakerConfig {
        consecutive_failures: None,
        trip_when: Some(TripPredicate::new(|c| c.failures >= 4 && c.failures * 4 >= c.calls)),
        ..BreakerConfig::default()
    };
    let (_dir, _clock, _store, b) = fresh(config);
    for i in 0..13 {
        if i % 4 == 0 {
            let _ = fail(&b);
        } else {
            b.call(|| Ok::<_, ()>(())).unwrap();
        }
    }
    // The fourth failure, call 13: 4 of 13 calls.
    let h = b.health();
    assert_eq!((h.state, h.reason), (CircuitState::Open, Some(TripReason::Predicate)));
    assert_eq!((h.counts.calls, h.counts.failures), (13, 4));
}

#[test]
fn listeners_hear_every_transition_in_order_once_durable() {
    let (_dir, clock, store, b) = fresh(BreakerConfig::default());
    let heard: Arc<Mutex<Vec<StateChange>>> = Arc::default();
    let sink = heard.clone();
    let durable = store.clone();
    b.on_state_change(move |c| {
        let s = durable.stats();
        assert_eq!(s.durable_lsn, s.last_lsn, "told before the record was durable");
        sink.lock().unwrap().push(c.clone());
    });
    for _ in 0..3 {
        let _ = fail(&b);
    }
    clock.advance_ns(60 * S);
    b.call(|| Ok::<_, ()>(())).unwrap();
    b.force_open().unwrap();
    let heard = heard.lock().unwrap();
    let moves: Vec<_> = heard.iter().map(|c| (c.from, c.to, c.generation)).collect();
    assert_eq!(
        moves,
        [
            (CircuitState::Closed, CircuitState::Open, 1),
            (CircuitState::Open, CircuitState::HalfOpen, 2),
            (CircuitState::HalfOpen, CircuitState::Closed, 3),
            (CircuitState::Closed, CircuitState::ForcedOpen, 4),
        ]
    );
    assert_eq!(heard[0].reason, Some(TripReason::ConsecutiveFailures { failures: 3 }));
    assert_eq!(heard[0].open_until_unix_ns, Some(T0 + 60 * S));
}

#[test]
fn health_reports_half_open_progress_and_the_effective_state() {
    let config = BreakerConfig { half_open_probes: 2, ..BreakerConfig::default() };
    let (_dir, clock, store, b) = fresh(config);
    for _ in 0..3 {
        let _ = fail(&b);
    }
    clock.advance_ns(60 * S);
    assert_eq!(store.breakers()[0].state, CircuitState::HalfOpen, "open_until has passed");
    assert_eq!(store.breakers()[0].logged_state, CircuitState::Open);
    let p1 = permit(&b);
    assert!(p1.success().unwrap());
    let h = b.health();
    let progress = h.half_open.unwrap();
    assert_eq!((progress.issued, progress.succeeded, progress.permitted), (1, 1, 2));
    assert!(permit(&b).success().unwrap());
    assert_eq!(b.state(), CircuitState::Closed);
    assert_eq!(b.health().reason, None);
}
