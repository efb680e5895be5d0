//! The counters of a Closed breaker (the failure streak and the failure-rate window, both
//! optionally time-based) and the lifetime totals, free of locks and I/O.

use std::collections::VecDeque;

use crate::breaker::config::BreakerConfig;
use crate::breaker::health::{BreakerCounts, TripReason};

/// Everything of the counters that the log keeps (a `BreakerCounts` record); replaying it
/// rebuilds the counters, approximately for the window (see [`Counters::restore`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CountsSnapshot {
    /// Lifetime totals (and the current streak/window sizes, for reporting).
    pub counts: BreakerCounts,
    /// Times of the failures of the current streak, oldest first (at most the threshold).
    pub streak_unix_ns: Vec<u64>,
    /// Time of the newest call in the window (0: empty).
    pub window_newest_unix_ns: u64,
}

/// Streak, window and totals.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub totals: BreakerCounts,
    /// Failure times of the current streak, oldest first, capped at the threshold (kept only
    /// when a `consecutive_failures` threshold is set).
    streak: VecDeque<u64>,
    /// The last calls in Closed, oldest first: `(time, failed)`.
    window: VecDeque<(u64, bool)>,
}

/// What counting one outcome in Closed decided.
pub(crate) struct Counted {
    /// The condition that trips the breaker, if the outcome was a failure that reached one.
    pub trip: Option<TripReason>,
}

impl Counters {
    /// Forgets the streak and the window (a transition), keeping the totals.
    pub fn clear_period(&mut self) {
        self.streak.clear();
        self.window.clear();
        self.totals.consecutive_failures = 0;
        self.totals.consecutive_successes = 0;
        self.totals.window_calls = 0;
        self.totals.window_failures = 0;
    }

    /// Counts one call's outcome in the totals (any state that counts outcomes).
    pub fn count_total(&mut self, failed: bool, slow: bool) {
        let t = &mut self.totals;
        t.calls += 1;
        t.slow_calls += u64::from(slow);
        if failed {
            t.failures += 1;
            t.consecutive_successes = 0;
        } else {
            t.successes += 1;
            t.consecutive_successes = t.consecutive_successes.saturating_add(1);
        }
    }

    /// Drops streak failures and window calls older than `failure_window` at `now`.
    pub fn prune(&mut self, config: &BreakerConfig, now: u64) {
        let Some(w) = config.failure_window else { return };
        let oldest = now.saturating_sub(crate::breaker::config::ns(w));
        let streak_before = self.streak.len();
        while self.streak.front().is_some_and(|&t| t < oldest) {
            self.streak.pop_front();
        }
        if self.streak.len() != streak_before {
            self.totals.consecutive_failures = self.streak.len() as u32;
        }
        while self.window.front().is_some_and(|&(t, _)| t < oldest) {
            let (_, failed) = self.window.pop_front().expect("front exists");
            self.totals.window_failures -= u32::from(failed);
        }
        self.totals.window_calls = self.window.len() as u32;
    }

    /// Counts an outcome in Closed at `now` (after [`count_total`](Self::count_total)).
    pub fn count_closed(&mut self, config: &BreakerConfig, failed: bool, now: u64) -> Counted {
        self.prune(config, now);
        let t = &mut self.totals;
        if failed {
            t.consecutive_failures = t.consecutive_failures.saturating_add(1);
            if let Some(n) = config.consecutive_failures {
                self.streak.push_back(now);
                while self.streak.len() > n as usize {
                    self.streak.pop_front();
                }
                t.consecutive_failures = self.streak.len() as u32;
            }
        } else {
            t.consecutive_failures = 0;
            self.streak.clear();
        }
        let mut trip = None;
        if let Some(rate) = &config.failure_rate {
            if self.window.len() >= rate.window_calls as usize {
                let (_, old) = self.window.pop_front().expect("window is full");
                t.window_failures -= u32::from(old);
            }
            self.window.push_back((now, failed));
            t.window_failures += u32::from(failed);
            t.window_calls = self.window.len() as u32;
            let calls = u64::from(t.window_calls);
            if calls >= u64::from(rate.minimum_calls)
                && u64::from(t.window_failures) * 100 >= u64::from(rate.threshold_percent) * calls
            {
                trip = Some(TripReason::FailureRate {
                    failures: t.window_failures,
                    calls: t.window_calls,
                });
            }
        }
        if config.consecutive_failures.is_some_and(|n| t.consecutive_failures >= n) {
            trip = Some(TripReason::ConsecutiveFailures { failures: t.consecutive_failures });
        }
        if trip.is_none() && failed && config.trip_when.as_ref().is_some_and(|p| p.trips(t)) {
            trip = Some(TripReason::Predicate);
        }
        Counted { trip: trip.filter(|_| failed) }
    }

    /// The failed share of the window in percent, if it holds calls.
    pub fn failure_rate_percent(&self) -> Option<u8> {
        let t = &self.totals;
        (t.window_calls > 0)
            .then(|| (u64::from(t.window_failures) * 100 / u64::from(t.window_calls)) as u8)
    }

    /// Whether the streak or window holds a failure (worth a record when it changes).
    pub fn has_failures(&self) -> bool {
        self.totals.consecutive_failures > 0 || self.totals.window_failures > 0
    }

    /// The state to log.
    pub fn snapshot(&self) -> CountsSnapshot {
        CountsSnapshot {
            counts: self.totals,
            streak_unix_ns: self.streak.iter().copied().collect(),
            window_newest_unix_ns: self.window.back().map_or(0, |&(t, _)| t),
        }
    }

    /// Rebuilds the counters from a logged snapshot under `config`. The streak comes back
    /// exactly; the window as its logged counts, every call dated at the window's newest
    /// call, failures after successes (so the failures are the last to slide out: the
    /// direction that trips sooner, never later).
    pub fn restore(&mut self, config: &BreakerConfig, s: &CountsSnapshot) {
        self.totals = s.counts;
        self.streak = s.streak_unix_ns.iter().copied().collect();
        if let Some(n) = config.consecutive_failures {
            while self.streak.len() > n as usize {
                self.streak.pop_front();
            }
            self.totals.consecutive_failures = self.streak.len() as u32;
        } else {
            self.streak.clear();
        }
        self.window.clear();
        if let Some(rate) = &config.failure_rate {
            let failures = s.counts.window_failures.min(rate.window_calls);
            let calls = s.counts.window_calls.clamp(failures, rate.window_calls);
            let t = s.window_newest_unix_ns;
            self.window.extend((0..calls - failures).map(|_| (t, false)));
            self.window.extend((0..failures).map(|_| (t, true)));
            self.totals.window_calls = calls;
            self.totals.window_failures = failures;
        } else {
            self.totals.window_calls = 0;
            self.totals.window_failures = 0;
        }
    }
}
