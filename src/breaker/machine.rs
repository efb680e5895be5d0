//! The breaker state machine, free of locks and I/O: the caller logs every transition it
//! returns before applying it with [`Entry::enter`].

use std::collections::VecDeque;
use std::time::Duration;

use super::config::{BreakerConfig, CircuitState};
use crate::format::breaker::BreakerRecord;

/// What [`Entry::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// A call may proceed; its outcome counts while the generation is unchanged.
    Permit { generation: u64 },
    /// No call now; `Some(d)`: the breaker is open for `d` more.
    Reject { retry_after: Option<Duration> },
    /// The wait is over: log the transition to this state, enter it, and ask again.
    Transition(CircuitState),
}

/// What [`Entry::outcome`] did with a call's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The call started in an earlier generation (or counts are off): ignored.
    Stale,
    /// Counted; no transition.
    Counted,
    /// Counted, and it requires this transition (to be logged, then entered).
    Transition(CircuitState),
}

/// One breaker: the durable part (state, generation, deadline, transition time) and the
/// counters that live only in memory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Entry {
    pub state: CircuitState,
    pub generation: u64,
    pub open_until_unix_ns: u64,
    pub last_transition_unix_ns: u64,
    /// LSN of the record of the last transition (0: none).
    pub lsn: u64,
    pub config: BreakerConfig,
    /// Recovered in HalfOpen: probes were in flight when the process died.
    pub interrupted_probe: bool,
    pub consecutive_failures: u32,
    /// Outcomes of the last `window_calls` calls in Closed; `true` = failed.
    window: VecDeque<bool>,
    pub window_failures: u32,
    probes_issued: u32,
    probes_succeeded: u32,
}

impl Entry {
    /// Calls currently counted in the failure-rate window.
    pub fn window_calls(&self) -> usize {
        self.window.len()
    }

    /// Replaces the configuration; counters restart if it changed.
    pub fn configure(&mut self, config: BreakerConfig) {
        if self.config != config {
            self.config = config;
            self.clear_counters();
        }
    }

    fn clear_counters(&mut self) {
        self.consecutive_failures = 0;
        self.window.clear();
        self.window_failures = 0;
        self.probes_issued = 0;
        self.probes_succeeded = 0;
    }

    /// The record of a transition to `to` at `now` (not yet applied).
    pub fn transition_record<'a>(
        &self,
        name: &'a str,
        to: CircuitState,
        now: u64,
    ) -> BreakerRecord<'a> {
        let open_ns = u64::try_from(self.config.open_duration.as_nanos()).unwrap_or(u64::MAX);
        BreakerRecord {
            state: to,
            generation: self.generation + 1,
            open_until_unix_ns: if to == CircuitState::Open {
                now.saturating_add(open_ns)
            } else {
                0
            },
            transition_unix_ns: now,
            name,
        }
    }

    /// Applies a logged (or replayed) transition: a new generation, counters from zero.
    pub fn enter(&mut self, rec: &BreakerRecord<'_>) {
        self.state = rec.state;
        self.generation = rec.generation;
        self.open_until_unix_ns = rec.open_until_unix_ns;
        self.last_transition_unix_ns = rec.transition_unix_ns;
        self.interrupted_probe = false;
        self.clear_counters();
    }

    /// Whether a call may start at `now`.
    pub fn admit(&mut self, now: u64) -> Admit {
        let permit = Admit::Permit { generation: self.generation };
        match self.state {
            CircuitState::Closed | CircuitState::Disabled => permit,
            CircuitState::ForcedOpen => Admit::Reject { retry_after: None },
            CircuitState::Open if now < self.open_until_unix_ns => Admit::Reject {
                retry_after: Some(Duration::from_nanos(self.open_until_unix_ns - now)),
            },
            CircuitState::Open => Admit::Transition(CircuitState::HalfOpen),
            CircuitState::HalfOpen if self.probes_issued < self.config.half_open_probes => {
                self.probes_issued += 1;
                permit
            }
            CircuitState::HalfOpen => Admit::Reject { retry_after: None },
        }
    }

    /// A permit of `generation` was dropped without an outcome: frees its probe slot.
    pub fn release(&mut self, generation: u64) {
        if generation == self.generation && self.state == CircuitState::HalfOpen {
            self.probes_issued = self.probes_issued.saturating_sub(1);
        }
    }

    /// Counts the outcome of a call that started in `generation` and took `duration`.
    pub fn outcome(&mut self, generation: u64, ok: bool, duration: Duration) -> Outcome {
        if generation != self.generation {
            return Outcome::Stale;
        }
        let failed = !ok || self.config.slow_call_threshold.is_some_and(|t| duration >= t);
        match self.state {
            CircuitState::Closed => self.count_closed(failed),
            CircuitState::HalfOpen if failed => Outcome::Transition(CircuitState::Open),
            CircuitState::HalfOpen => {
                self.probes_succeeded += 1;
                if self.probes_succeeded >= self.config.half_open_probes {
                    Outcome::Transition(CircuitState::Closed)
                } else {
                    Outcome::Counted
                }
            }
            CircuitState::Open | CircuitState::ForcedOpen | CircuitState::Disabled => {
                Outcome::Stale
            }
        }
    }

    fn count_closed(&mut self, failed: bool) -> Outcome {
        self.consecutive_failures = if failed { self.consecutive_failures + 1 } else { 0 };
        let mut rate_tripped = false;
        if let Some(rate) = &self.config.failure_rate {
            if self.window.len() >= rate.window_calls as usize
                && self.window.pop_front() == Some(true)
            {
                self.window_failures -= 1;
            }
            self.window.push_back(failed);
            self.window_failures += u32::from(failed);
            let calls = self.window.len() as u64;
            rate_tripped = calls >= u64::from(rate.minimum_calls)
                && u64::from(self.window_failures) * 100
                    >= u64::from(rate.threshold_percent) * calls;
        }
        let streak_tripped =
            self.config.consecutive_failures.is_some_and(|n| self.consecutive_failures >= n);
        if failed && (streak_tripped || rate_tripped) {
            Outcome::Transition(CircuitState::Open)
        } else {
            Outcome::Counted
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::config::FailureRate;

    const S: u64 = 1_000_000_000;
    const D: Duration = Duration::ZERO;

    fn go(e: &mut Entry, to: CircuitState, now: u64) {
        let rec = e.transition_record("b", to, now);
        e.enter(&rec);
    }

    fn permit(e: &mut Entry, now: u64) -> u64 {
        match e.admit(now) {
            Admit::Permit { generation } => generation,
            other => panic!("expected a permit, got {other:?}"),
        }
    }

    #[test]
    fn opens_after_three_consecutive_failures_and_a_success_resets_the_streak() {
        let mut e = Entry::default();
        for ok in [false, false, true, false, false] {
            let g = permit(&mut e, 0);
            assert_eq!(e.outcome(g, ok, D), Outcome::Counted);
        }
        let g = permit(&mut e, 0);
        assert_eq!(e.outcome(g, false, D), Outcome::Transition(CircuitState::Open));
    }

    #[test]
    fn open_rejects_until_the_deadline_then_admits_one_probe() {
        let mut e = Entry::default();
        go(&mut e, CircuitState::Open, 10 * S);
        assert_eq!(e.open_until_unix_ns, 70 * S);
        assert_eq!(e.admit(30 * S), Admit::Reject { retry_after: Some(Duration::from_secs(40)) });
        assert_eq!(e.admit(70 * S), Admit::Transition(CircuitState::HalfOpen));
        go(&mut e, CircuitState::HalfOpen, 70 * S);
        let g = permit(&mut e, 70 * S);
        assert_eq!(e.admit(70 * S), Admit::Reject { retry_after: None }, "one probe only");
        e.release(g);
        let g = permit(&mut e, 70 * S);
        assert_eq!(e.outcome(g, true, D), Outcome::Transition(CircuitState::Closed));
    }

    #[test]
    fn failed_probe_reopens_and_stale_outcomes_are_ignored() {
        let mut e = Entry::default();
        let old = permit(&mut e, 0);
        go(&mut e, CircuitState::HalfOpen, S);
        let g = permit(&mut e, S);
        assert_ne!(old, g);
        assert_eq!(e.outcome(old, true, D), Outcome::Stale);
        assert_eq!(e.outcome(g, false, D), Outcome::Transition(CircuitState::Open));
    }

    #[test]
    fn failure_rate_needs_the_minimum_calls() {
        let rate = FailureRate { threshold_percent: 50, window_calls: 4, minimum_calls: 4 };
        let config = BreakerConfig {
            consecutive_failures: None,
            failure_rate: Some(rate),
            ..BreakerConfig::default()
        };
        let mut e = Entry::default();
        e.configure(config);
        for ok in [false, true, false] {
            assert_eq!(e.outcome(0, ok, D), Outcome::Counted);
        }
        assert_eq!(e.outcome(0, true, D), Outcome::Counted, "2/4 but the last call succeeded");
        assert_eq!(e.outcome(0, false, D), Outcome::Transition(CircuitState::Open));
        assert_eq!((e.window_calls(), e.window_failures), (4, 2));
    }

    #[test]
    fn slow_successes_count_as_failures() {
        let config = BreakerConfig {
            consecutive_failures: Some(1),
            slow_call_threshold: Some(Duration::from_secs(2)),
            ..BreakerConfig::default()
        };
        let mut e = Entry::default();
        e.configure(config);
        assert_eq!(e.outcome(0, true, Duration::from_secs(1)), Outcome::Counted);
        assert_eq!(
            e.outcome(0, true, Duration::from_secs(2)),
            Outcome::Transition(CircuitState::Open)
        );
    }

    #[test]
    fn manual_states_ignore_outcomes() {
        let mut e = Entry::default();
        go(&mut e, CircuitState::ForcedOpen, 0);
        assert_eq!(e.admit(u64::MAX), Admit::Reject { retry_after: None });
        go(&mut e, CircuitState::Disabled, 0);
        let g = permit(&mut e, 0);
        for _ in 0..10 {
            assert_eq!(e.outcome(g, false, D), Outcome::Stale);
        }
    }
}
