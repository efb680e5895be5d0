//! Circuit breakers against a real store, time driven by a `ManualClock`: the state machine
//! (open after the threshold, reject while open, half-open after the wait, close on a good
//! probe, reopen on a bad one), generations discarding stale outcomes, durable transitions,
//! manual overrides surviving a reopen, and the health list. The SIGKILL tests are in
//! `breaker_ratelimit_kill9.rs`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use walden::{
    Acquire, BreakerConfig, CircuitBreaker, CircuitState, Error, LimitKind, ManualClock, Options,
    Permit, Store, TripReason,
};

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * S;

fn open(dir: &Path, clock: &ManualClock) -> Store {
    let options = Options { clock: Arc::new(clock.clone()), ..Options::default() };
    Store::open_with(dir, options).unwrap()
}

/// A new store at `T0` and its default breaker `db`. The directory lives as long as the result.
fn fresh() -> (tempfile::TempDir, ManualClock, Store, CircuitBreaker) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open(dir.path(), &clock);
    let b = store.breaker("db", BreakerConfig::default()).unwrap();
    (dir, clock, store, b)
}

fn permit(b: &CircuitBreaker) -> Permit {
    match b.try_acquire().unwrap() {
        Acquire::Permitted(p) => p,
        Acquire::Rejected { retry_after } => panic!("rejected, retry after {retry_after:?}"),
    }
}

fn rejected(b: &CircuitBreaker) -> Option<Duration> {
    match b.try_acquire().unwrap() {
        Acquire::Permitted(p) => panic!("permitted in generation {}", p.generation()),
        Acquire::Rejected { retry_after } => retry_after,
    }
}

fn trip(b: &CircuitBreaker) {
    for _ in 0..3 {
        assert!(permit(b).failure().unwrap());
    }
}

#[test]
fn full_cycle_open_reject_half_open_close() {
    let (_dir, clock, _store, b) = fresh();
    assert!(permit(&b).failure().unwrap());
    assert!(permit(&b).failure().unwrap());
    assert_eq!(b.state(), CircuitState::Closed, "two failures are under the threshold");
    assert!(permit(&b).failure().unwrap());
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(b.health().open_until_unix_ns, Some(T0 + 60 * S));

    clock.advance_ns(45 * S);
    assert_eq!(rejected(&b), Some(Duration::from_secs(15)));
    clock.advance_ns(15 * S);
    let probe = permit(&b);
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert_eq!(rejected(&b), None, "one probe at a time");
    assert!(probe.success().unwrap());
    assert_eq!(b.state(), CircuitState::Closed);
    assert!(permit(&b).success().unwrap());
    assert_eq!(b.health().generation, 3, "open, half-open, closed");
}

#[test]
fn failed_probe_reopens_for_a_full_wait() {
    let (_dir, clock, _store, b) = fresh();
    trip(&b);
    clock.advance_ns(60 * S);
    assert!(permit(&b).failure().unwrap());
    assert_eq!(b.state(), CircuitState::Open);
    assert_eq!(rejected(&b), Some(Duration::from_secs(60)));
}

#[test]
fn outcomes_from_an_older_generation_are_discarded() {
    let (_dir, clock, _store, b) = fresh();
    let slow_call = permit(&b); // starts while Closed
    trip(&b);
    clock.advance_ns(60 * S);
    let probe = permit(&b);
    // The old call finishing now must neither reopen nor close the half-open breaker.
    assert!(!slow_call.failure().unwrap(), "stale outcome reported as counted");
    assert_eq!(b.state(), CircuitState::HalfOpen);
    assert!(probe.success().unwrap());
    assert_eq!(b.state(), CircuitState::Closed);
    // A permit from before a reset counts nothing afterwards either.
    let before_reset = permit(&b);
    b.reset().unwrap();
    assert!(!before_reset.failure().unwrap());
    assert_eq!(b.health().counts.consecutive_failures, 0);
}

#[test]
fn a_dropped_probe_counts_as_failed_and_reopens() {
    let (_dir, clock, _store, b) = fresh();
    trip(&b);
    clock.advance_ns(60 * S);
    let probe = permit(&b);
    clock.advance_ns(2 * S);
    drop(probe); // cancelled, panicked or forgotten: a failure
    let h = b.health();
    assert_eq!((h.state, h.reason), (CircuitState::Open, Some(TripReason::ProbeFailed)));
    assert_eq!(h.open_until_unix_ns, Some(T0 + 122 * S));
    assert_eq!(rejected(&b), Some(Duration::from_secs(60)));
}

#[test]
fn transitions_are_fsynced_before_the_call_returns_and_counters_write_nothing() {
    let (_dir, _clock, store, _) = fresh();
    let quiet = BreakerConfig { counts_log_interval: None, ..BreakerConfig::default() };
    let b = store.breaker("quiet", quiet).unwrap();
    let lsn = store.stats().last_lsn;
    for _ in 0..2 {
        permit(&b).failure().unwrap();
        permit(&b).success().unwrap();
    }
    assert_eq!(store.stats().last_lsn, lsn, "Closed counters live in memory");
    trip(&b);
    let s = store.stats();
    assert_eq!((s.last_lsn, s.durable_lsn), (lsn + 1, lsn + 1));
}

#[test]
fn open_state_and_manual_overrides_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    {
        let store = open(dir.path(), &clock);
        trip(&store.breaker("open", BreakerConfig::default()).unwrap());
        store.breaker("forced", BreakerConfig::default()).unwrap().force_open().unwrap();
        store.breaker("off", BreakerConfig::default()).unwrap().disable().unwrap();
    }
    clock.advance_ns(3600 * S);
    let store = open(dir.path(), &clock);
    let forced = store.breaker("forced", BreakerConfig::default()).unwrap();
    assert_eq!(forced.state(), CircuitState::ForcedOpen);
    assert_eq!(rejected(&forced), None, "forced open ignores the clock");
    let off = store.breaker("off", BreakerConfig::default()).unwrap();
    assert_eq!(off.state(), CircuitState::Disabled);
    for _ in 0..10 {
        assert!(!permit(&off).failure().unwrap(), "disabled counts nothing");
    }
    assert_eq!(off.state(), CircuitState::Disabled);
    forced.reset().unwrap();
    assert!(permit(&forced).success().unwrap());
    drop((store, forced, off)); // handles share the store: all must go to release its lock
    let store = open(dir.path(), &clock);
    let states: Vec<_> = store.breakers().into_iter().map(|h| (h.name, h.state)).collect();
    assert_eq!(
        states,
        [
            ("forced".to_owned(), CircuitState::Closed),
            ("off".to_owned(), CircuitState::Disabled),
            ("open".to_owned(), CircuitState::HalfOpen),
        ]
    );
    let open = &store.breakers()[2];
    assert_eq!(open.logged_state, CircuitState::Open, "effective HalfOpen: the wait is over");
}

#[test]
fn health_lists_every_breaker_with_its_counters() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let store = open(dir.path(), &clock);
    let a = store.breaker("a", BreakerConfig::default()).unwrap();
    let b = store.breaker("b", BreakerConfig::default()).unwrap();
    permit(&a).failure().unwrap();
    clock.advance_ns(S);
    trip(&b);
    let h = store.breakers();
    assert_eq!(h.len(), 2);
    assert_eq!(
        (h[0].name.as_str(), h[0].state, h[0].counts.consecutive_failures),
        ("a", CircuitState::Closed, 1)
    );
    assert_eq!(
        (h[0].generation, h[0].last_transition_unix_ns, h[0].open_until_unix_ns),
        (0, 0, None)
    );
    assert_eq!((h[1].state, h[1].generation), (CircuitState::Open, 1));
    assert_eq!(h[1].last_transition_unix_ns, T0 + S);
    assert_eq!(h[1].open_until_unix_ns, Some(T0 + 61 * S));
}

#[test]
fn invalid_names_and_configs_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), &ManualClock::new(T0));
    assert!(matches!(
        store.breaker("", BreakerConfig::default()),
        Err(Error::InvalidName { what: LimitKind::BreakerName, .. })
    ));
    let zero = BreakerConfig { half_open_probes: 0, ..BreakerConfig::default() };
    assert!(matches!(store.breaker("b", zero), Err(Error::InvalidBreakerConfig { .. })));
    let never = BreakerConfig { open_duration: Duration::ZERO, ..BreakerConfig::default() };
    assert!(matches!(store.breaker("b", never), Err(Error::InvalidBreakerConfig { .. })));
}

#[test]
fn closed_counts_are_logged_at_most_once_per_interval_and_never_on_the_success_path() {
    let (_dir, clock, store, _) = fresh();
    // No trip condition: it counts for ever.
    let config = BreakerConfig { consecutive_failures: None, ..BreakerConfig::default() };
    let b = store.breaker("flood", config.clone()).unwrap();
    let (lsn, fsyncs) = (store.stats().last_lsn, store.stats().fsyncs);
    for _ in 0..100 {
        assert!(permit(&b).success().unwrap());
    }
    assert_eq!(store.stats().last_lsn, lsn, "successes write nothing");
    // A flood: 900 failures within one second, then 900 in the next.
    for _ in 0..900 {
        assert!(permit(&b).failure().unwrap());
    }
    assert_eq!(store.stats().last_lsn, lsn + 1, "one record for the first second");
    clock.advance_ns(S);
    for _ in 0..900 {
        assert!(permit(&b).failure().unwrap());
    }
    let s = store.stats();
    assert_eq!(s.last_lsn, lsn + 2, "one more for the next second");
    // The background flusher may sync the two records (a few times at most, every 100 ms);
    // no failure waits for an fsync of its own.
    assert!(s.fsyncs - fsyncs < 100, "{} fsyncs for 1,800 failures", s.fsyncs - fsyncs);
    drop(b);
    // The last 899 failures are held back until the interval passes or the store closes.
    let dir = _dir.path().to_path_buf();
    store.close().unwrap();
    let store = open(&dir, &clock);
    let h = store.breaker("flood", config).unwrap().health();
    assert_eq!((h.counts.calls, h.counts.failures), (1900, 1800));
    assert_eq!(h.counts.consecutive_failures, 1800);
}
