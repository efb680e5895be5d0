//! Unit tests of the pure state machine: every rule of `docs/LIMITERS.md` at exact times.

use super::*;
use crate::breaker::config::{Backoff, FailureRate, TripPredicate};

const S: u64 = 1_000_000_000;
const D: Duration = Duration::ZERO;

fn go(e: &mut Entry, to: CircuitState, now: u64) {
    let rec = e.transition_record("b", &Move::new(to, now, None));
    e.enter(&rec);
}

fn apply(e: &mut Entry, m: Move) {
    let rec = e.transition_record("b", &m);
    e.enter(&rec);
    e.reason = m.reason.or(e.reason);
}

fn permit(e: &mut Entry, now: u64) -> u64 {
    match e.admit(now) {
        Admit::Permit { generation, counted: true } => generation,
        other => panic!("expected a permit, got {other:?}"),
    }
}

fn with(config: BreakerConfig) -> Entry {
    let mut e = Entry::default();
    e.configure(config);
    e
}

fn trip_reason(o: Outcome) -> Option<TripReason> {
    match o {
        Outcome::Transition(m) if m.to == CircuitState::Open => m.reason,
        other => panic!("expected a move to Open, got {other:?}"),
    }
}

#[test]
fn opens_after_three_consecutive_failures_and_a_success_resets_the_streak() {
    let mut e = with(BreakerConfig::default());
    for ok in [false, false, true, false, false] {
        let g = permit(&mut e, 0);
        assert_eq!(e.outcome(g, ok, D, 0), Outcome::Counted);
    }
    let g = permit(&mut e, 0);
    let why = trip_reason(e.outcome(g, false, D, 0));
    assert_eq!(why, Some(TripReason::ConsecutiveFailures { failures: 3 }));
    assert_eq!(e.counters.totals.calls, 6);
    assert_eq!((e.counters.totals.failures, e.counters.totals.successes), (5, 1));
}

#[test]
fn open_rejects_until_the_deadline_then_admits_one_probe_per_period() {
    let mut e = with(BreakerConfig::default());
    go(&mut e, CircuitState::Open, 10 * S);
    assert_eq!(e.open_until_unix_ns, 70 * S);
    assert_eq!(e.admit(30 * S), Admit::Reject { retry_after: Some(Duration::from_secs(40)) });
    assert_eq!(e.counters.totals.rejected, 1);
    assert_eq!(e.view(69 * S).state, CircuitState::Open);
    assert_eq!(e.view(70 * S).state, CircuitState::HalfOpen, "effective state");
    let Admit::Transition(m) = e.admit(70 * S) else { panic!("no move") };
    assert_eq!(m.to, CircuitState::HalfOpen);
    apply(&mut e, m);
    permit(&mut e, 70 * S);
    assert_eq!(e.admit(70 * S), Admit::Reject { retry_after: None }, "one probe per period");
    let p = e.half_open_progress().unwrap();
    assert_eq!((p.issued, p.succeeded, p.permitted), (1, 0, 1));
}

#[test]
fn a_hung_probe_times_out_and_the_breaker_reopens_at_the_deadline() {
    let config =
        BreakerConfig { half_open_timeout: Some(Duration::from_secs(5)), ..Default::default() };
    let mut e = with(config);
    go(&mut e, CircuitState::HalfOpen, 100 * S);
    let hung = permit(&mut e, 100 * S);
    assert_eq!(e.admit(104 * S), Admit::Reject { retry_after: None });
    // Effective state after the timeout: open from the deadline for a full open_duration.
    let v = e.view(106 * S);
    assert_eq!((v.state, v.open_until_unix_ns), (CircuitState::Open, Some(165 * S)));
    let Admit::Transition(m) = e.admit(106 * S) else { panic!("no move") };
    assert_eq!(m, Move::new(CircuitState::Open, 105 * S, Some(TripReason::HalfOpenTimeout)));
    apply(&mut e, m);
    assert_eq!(e.open_until_unix_ns, 165 * S);
    assert_eq!(e.outcome(hung, true, D, 107 * S), Outcome::Stale, "the hung probe is stale");
}

#[test]
fn failed_probe_reopens_and_stale_outcomes_are_ignored() {
    let mut e = with(BreakerConfig::default());
    let old = permit(&mut e, 0);
    go(&mut e, CircuitState::HalfOpen, S);
    let g = permit(&mut e, S);
    assert_ne!(old, g);
    assert_eq!(e.outcome(old, true, D, S), Outcome::Stale);
    assert_eq!(trip_reason(e.outcome(g, false, D, S)), Some(TripReason::ProbeFailed));
}

#[test]
fn failure_rate_needs_the_minimum_calls() {
    let rate = FailureRate { threshold_percent: 50, window_calls: 4, minimum_calls: 4 };
    let mut e = with(BreakerConfig {
        consecutive_failures: None,
        failure_rate: Some(rate),
        ..BreakerConfig::default()
    });
    for ok in [false, true, false] {
        assert_eq!(e.outcome(0, ok, D, 0), Outcome::Counted);
    }
    assert_eq!(e.outcome(0, true, D, 0), Outcome::Counted, "2/4 but the last call succeeded");
    let why = trip_reason(e.outcome(0, false, D, 0));
    assert_eq!(why, Some(TripReason::FailureRate { failures: 2, calls: 4 }));
    assert_eq!(e.counters.failure_rate_percent(), Some(50));
}

#[test]
fn a_time_window_forgets_old_failures() {
    let rate = FailureRate { threshold_percent: 50, window_calls: 100, minimum_calls: 2 };
    let mut e = with(BreakerConfig {
        consecutive_failures: Some(3),
        failure_rate: Some(rate),
        failure_window: Some(Duration::from_secs(60)),
        ..BreakerConfig::default()
    });
    // Two failures an hour ago, then successes: the streak and the window forget them.
    assert_eq!(e.outcome(0, false, D, 0), Outcome::Counted, "1 call is under the minimum");
    for ok in [true, true, true] {
        assert_eq!(e.outcome(0, ok, D, S), Outcome::Counted);
    }
    assert_eq!(e.outcome(0, false, D, 3600 * S), Outcome::Counted);
    assert_eq!(e.counters.totals.window_calls, 1, "calls older than 60 s left the window");
    // The streak: failures at 3600, 3630, then 3700: the first is out of the window.
    assert_eq!(
        e.outcome(0, false, D, 3630 * S),
        Outcome::Transition(Move::new(
            CircuitState::Open,
            3630 * S,
            Some(TripReason::FailureRate { failures: 2, calls: 2 })
        ))
    );
    let mut e =
        with(BreakerConfig { failure_window: Some(Duration::from_secs(60)), ..Default::default() });
    for t in [0, 30, 70] {
        assert_eq!(e.outcome(0, false, D, t * S), Outcome::Counted, "failure at {t} s");
    }
    assert_eq!(e.counters.totals.consecutive_failures, 2, "the failure at 0 s aged out");
    let why = trip_reason(e.outcome(0, false, D, 80 * S));
    assert_eq!(why, Some(TripReason::ConsecutiveFailures { failures: 3 }));
}

#[test]
fn slow_successes_count_as_failures() {
    let mut e = with(BreakerConfig {
        consecutive_failures: Some(1),
        slow_call_threshold: Some(Duration::from_secs(2)),
        ..BreakerConfig::default()
    });
    assert_eq!(e.outcome(0, true, Duration::from_secs(1), 0), Outcome::Counted);
    assert!(trip_reason(e.outcome(0, true, Duration::from_secs(2), 0)).is_some());
    assert_eq!(e.counters.totals.slow_calls, 1);
}

#[test]
fn a_custom_predicate_trips_on_the_counts() {
    let mut e = with(BreakerConfig {
        consecutive_failures: None,
        trip_when: Some(TripPredicate::new(|c| c.failures >= 2 && c.failures * 2 > c.calls)),
        ..BreakerConfig::default()
    });
    assert_eq!(e.outcome(0, false, D, 0), Outcome::Counted);
    assert_eq!(e.outcome(0, true, D, 0), Outcome::Counted);
    assert_eq!(trip_reason(e.outcome(0, false, D, 0)), Some(TripReason::Predicate));
}

#[test]
fn backoff_grows_the_open_period_up_to_the_cap_and_closing_resets_it() {
    let mut e = with(BreakerConfig {
        open_duration: Duration::from_secs(10),
        open_backoff: Some(Backoff {
            factor: 3,
            max_open_duration: Duration::from_secs(100),
            jitter_percent: 0,
        }),
        ..BreakerConfig::default()
    });
    let mut t = 0;
    let mut periods = Vec::new();
    go(&mut e, CircuitState::Open, t);
    for _ in 0..4 {
        periods.push((e.open_until_unix_ns - t) / S);
        t = e.open_until_unix_ns;
        go(&mut e, CircuitState::HalfOpen, t);
        go(&mut e, CircuitState::Open, t);
    }
    assert_eq!(periods, [10, 30, 90, 100]);
    go(&mut e, CircuitState::Closed, t);
    go(&mut e, CircuitState::Open, t);
    assert_eq!(e.open_until_unix_ns - t, 10 * S, "closing starts again from open_duration");
}

#[test]
fn jitter_shortens_within_bounds_and_is_deterministic() {
    let config = BreakerConfig {
        open_backoff: Some(Backoff {
            factor: 2,
            max_open_duration: Duration::from_secs(600),
            jitter_percent: 20,
        }),
        ..BreakerConfig::default()
    };
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..200u64 {
        let e = with(config.clone());
        let m = Move::new(CircuitState::Open, i * 7 * S, None);
        let a = e.transition_record("b", &m).open_until_unix_ns - m.at_unix_ns;
        assert_eq!(a, e.transition_record("b", &m).open_until_unix_ns - m.at_unix_ns);
        assert!((48 * S..=60 * S).contains(&a), "{a}");
        seen.insert(a);
    }
    assert!(seen.len() > 100, "jitter spreads: {} distinct", seen.len());
}

#[test]
fn shadow_mode_never_rejects_and_counts_what_it_would_have() {
    let mut e = with(BreakerConfig { shadow: true, ..BreakerConfig::default() });
    for _ in 0..2 {
        let g = permit(&mut e, 0);
        assert_eq!(e.outcome(g, false, D, 0), Outcome::Counted);
    }
    let g = permit(&mut e, 0);
    let Outcome::Transition(m) = e.outcome(g, false, D, 0) else { panic!("no trip") };
    apply(&mut e, m);
    assert_eq!(e.admit(S), Admit::Permit { generation: 1, counted: false });
    assert_eq!(e.counters.totals.rejected, 1);
}

#[test]
fn manual_states_ignore_outcomes() {
    let mut e = with(BreakerConfig::default());
    go(&mut e, CircuitState::ForcedOpen, 0);
    assert_eq!(e.admit(u64::MAX), Admit::Reject { retry_after: None });
    go(&mut e, CircuitState::Disabled, 0);
    let g = permit(&mut e, 0);
    for _ in 0..10 {
        assert_eq!(e.outcome(g, false, D, 0), Outcome::Stale);
    }
}

#[test]
fn counts_are_due_once_per_interval_and_successes_log_only_to_clear_failures() {
    let mut e = with(BreakerConfig::default());
    assert_eq!(e.outcome(0, true, D, S), Outcome::Counted);
    assert!(e.counts_due(S, false).is_none(), "successes alone never log");
    e.outcome(0, false, D, 2 * S);
    let c = e.counts_due(2 * S, false).expect("first failure logs at once");
    assert_eq!((c.counts.consecutive_failures, c.streak_unix_ns.clone()), (1, vec![2 * S]));
    e.outcome(0, false, D, 2 * S + 1);
    assert!(e.counts_due(2 * S + 1, false).is_none(), "within the interval");
    assert!(e.counts_due(3 * S, false).is_some(), "after the interval");
    e.outcome(0, true, D, 4 * S);
    let c = e.counts_due(4 * S, false).expect("a success clearing logged failures logs");
    assert_eq!(c.counts.consecutive_failures, 0);
    e.outcome(0, true, D, 6 * S);
    assert!(e.counts_due(6 * S, false).is_none(), "nothing logged to clear any more");
}

#[test]
fn logged_counts_rebuild_the_streak_and_the_window() {
    let rate = FailureRate { threshold_percent: 60, window_calls: 10, minimum_calls: 5 };
    let config = BreakerConfig {
        consecutive_failures: Some(3),
        failure_rate: Some(rate),
        ..BreakerConfig::default()
    };
    let mut a = with(config.clone());
    for ok in [true, false, true, false, false] {
        a.outcome(0, ok, D, S);
    }
    let logged = a.counts_due(S, true).unwrap();
    // A new process: the record is replayed before a handle sets the configuration.
    let mut b = Entry::default();
    b.restore_counts(0, None, 0, &logged, S);
    b.configure(config);
    assert_eq!(b.counters.totals, a.counters.totals);
    let why = trip_reason(b.outcome(0, false, D, 2 * S));
    assert_eq!(why, Some(TripReason::ConsecutiveFailures { failures: 3 }));
}
