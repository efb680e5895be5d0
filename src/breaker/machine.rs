//! The breaker state machine, free of locks and I/O: the caller logs every transition it
//! returns before applying it with [`Entry::enter`].

use std::time::Duration;

use crate::breaker::config::{ns, BreakerConfig, CircuitState};
use crate::breaker::counters::{Counters, CountsSnapshot};
use crate::breaker::health::{HalfOpenProgress, TripReason};
use crate::format::breaker::BreakerRecord;

/// A transition to make: its record is logged, then it is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Move {
    pub to: CircuitState,
    /// When it happens (a half-open timeout happens at its deadline, not when noticed).
    pub at_unix_ns: u64,
    pub reason: Option<TripReason>,
}

impl Move {
    fn new(to: CircuitState, at_unix_ns: u64, reason: Option<TripReason>) -> Move {
        Move { to, at_unix_ns, reason }
    }
}

/// What [`Entry::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// A call may proceed; its outcome counts while the generation is unchanged, and only if
    /// `counted` (a shadow breaker lets calls it would reject through uncounted).
    Permit { generation: u64, counted: bool },
    /// No call now; `Some(d)`: the breaker is open for `d` more.
    Reject { retry_after: Option<Duration> },
    /// Log this transition, enter it, and ask again.
    Transition(Move),
}

/// What [`Entry::outcome`] did with a call's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The call started in an earlier generation (or counts are off): ignored.
    Stale,
    /// Counted; no transition.
    Counted,
    /// Counted, and it requires this transition (to be logged, then entered).
    Transition(Move),
}

/// The state a breaker is in now, derived from the logged state and the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct View {
    pub state: CircuitState,
    pub open_until_unix_ns: Option<u64>,
}

/// One breaker: the durable part (state, generation, deadline, transition time) and its
/// counters (logged at most once per `counts_log_interval`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Entry {
    pub state: CircuitState,
    pub generation: u64,
    pub open_until_unix_ns: u64,
    pub last_transition_unix_ns: u64,
    /// LSN of the record of the last transition (0: none).
    pub lsn: u64,
    pub config: BreakerConfig,
    /// A handle was opened in this process (`config` is the caller's, not the default).
    pub registered: bool,
    /// Recovered in HalfOpen: probes were in flight when the process died.
    pub interrupted_probe: bool,
    /// Why the breaker last opened (kept through HalfOpen, cleared by Closed).
    pub reason: Option<TripReason>,
    /// Length of the last open period (0 once closed): the base of the next one's backoff.
    pub last_open_ns: u64,
    pub counters: Counters,
    probes_issued: u32,
    probes_succeeded: u32,
    /// Counters changed since the last counts record.
    pub counts_dirty: bool,
    /// Time of the last counts record (0: none since the last transition).
    pub counts_logged_unix_ns: u64,
    /// The last counts record held a failure in the streak or window.
    counts_logged_failures: bool,
    /// The counters of the last replayed counts record, until a handle's configuration
    /// says how to read them.
    logged_counts: Option<CountsSnapshot>,
    /// LSN of the last counts record of the current generation (0: none).
    pub counts_lsn: u64,
}

impl Entry {
    /// Replaces the configuration; the current period's counters restart if it changed
    /// (except for a breaker recovered from the log, whose counters were logged under an
    /// unknown configuration and are re-read under this one).
    pub fn configure(&mut self, config: BreakerConfig) {
        if self.config != config || !self.registered {
            let logged = if self.registered { None } else { self.logged_counts.take() };
            self.config = config;
            self.registered = true;
            match logged {
                Some(s) => {
                    self.counters.restore(&self.config, &s);
                    self.counts_logged_failures = self.counters.has_failures();
                }
                None => self.counters.clear_period(),
            }
        }
    }

    /// The length of the open period a move to Open at `at` starts.
    fn open_ns(&self, at: u64, from: CircuitState) -> u64 {
        let base = ns(self.config.open_duration);
        let Some(b) = &self.config.open_backoff else { return base };
        let grown = if from == CircuitState::HalfOpen && self.last_open_ns > 0 {
            self.last_open_ns.saturating_mul(u64::from(b.factor)).min(ns(b.max_open_duration))
        } else {
            base
        };
        let jitter = grown / 100 * u64::from(b.jitter_percent);
        if jitter == 0 {
            return grown;
        }
        // Deterministic per transition, so a replayed decision is the logged one.
        grown - mix(self.generation.wrapping_add(1) ^ at) % (jitter + 1)
    }

    /// The record of `m` (not yet applied).
    pub fn transition_record<'a>(&self, name: &'a str, m: &Move) -> BreakerRecord<'a> {
        let open_until_unix_ns = if m.to == CircuitState::Open {
            m.at_unix_ns.saturating_add(self.open_ns(m.at_unix_ns, self.state))
        } else {
            0
        };
        BreakerRecord {
            state: m.to,
            generation: self.generation + 1,
            open_until_unix_ns,
            transition_unix_ns: m.at_unix_ns,
            name,
        }
    }

    /// Applies a logged (or replayed) transition: a new generation, the period's counters
    /// from zero (totals kept).
    pub fn enter(&mut self, rec: &BreakerRecord<'_>) {
        self.state = rec.state;
        self.generation = rec.generation;
        self.open_until_unix_ns = rec.open_until_unix_ns;
        self.last_transition_unix_ns = rec.transition_unix_ns;
        self.interrupted_probe = false;
        match rec.state {
            CircuitState::Open => {
                self.last_open_ns = rec.open_until_unix_ns.saturating_sub(rec.transition_unix_ns);
            }
            CircuitState::HalfOpen => {}
            _ => {
                self.last_open_ns = 0;
                self.reason = None;
            }
        }
        self.counters.clear_period();
        self.probes_issued = 0;
        self.probes_succeeded = 0;
        self.counts_logged_unix_ns = 0;
        self.counts_logged_failures = false;
        self.logged_counts = None;
        self.counts_lsn = 0;
    }

    /// The end of the current half-open period, if it has a timeout.
    fn half_open_deadline(&self) -> Option<u64> {
        let t = self.config.half_open_timeout?;
        Some(self.last_transition_unix_ns.saturating_add(ns(t)))
    }

    /// Whether a call may start at `now`.
    pub fn admit(&mut self, now: u64) -> Admit {
        let decision = self.decide_admission(now);
        if let Admit::Reject { .. } = decision {
            self.counters.totals.rejected += 1;
            if self.config.shadow {
                return Admit::Permit { generation: self.generation, counted: false };
            }
        }
        decision
    }

    fn decide_admission(&mut self, now: u64) -> Admit {
        let permit = Admit::Permit { generation: self.generation, counted: true };
        match self.state {
            CircuitState::Closed | CircuitState::Disabled => permit,
            CircuitState::ForcedOpen => Admit::Reject { retry_after: None },
            CircuitState::Open if now < self.open_until_unix_ns => Admit::Reject {
                retry_after: Some(Duration::from_nanos(self.open_until_unix_ns - now)),
            },
            CircuitState::Open => Admit::Transition(Move::new(CircuitState::HalfOpen, now, None)),
            CircuitState::HalfOpen => match self.half_open_deadline() {
                Some(deadline) if now >= deadline => Admit::Transition(Move::new(
                    CircuitState::Open,
                    deadline,
                    Some(TripReason::HalfOpenTimeout),
                )),
                _ if self.probes_issued < self.config.half_open_probes => {
                    self.probes_issued += 1;
                    permit
                }
                _ => Admit::Reject { retry_after: None },
            },
        }
    }

    /// Counts the outcome of a call that started in `generation`, took `duration` and
    /// ended at `now`.
    pub fn outcome(&mut self, generation: u64, ok: bool, duration: Duration, now: u64) -> Outcome {
        if generation != self.generation {
            return Outcome::Stale;
        }
        let slow = self.config.slow_call_threshold.is_some_and(|t| duration >= t);
        let failed = !ok || slow;
        match self.state {
            CircuitState::Closed => {
                self.counters.count_total(failed, slow);
                let counted = self.counters.count_closed(&self.config, failed, now);
                if failed || self.counts_logged_failures {
                    self.counts_dirty = true;
                }
                match counted.trip {
                    Some(reason) => {
                        Outcome::Transition(Move::new(CircuitState::Open, now, Some(reason)))
                    }
                    None => Outcome::Counted,
                }
            }
            CircuitState::HalfOpen => {
                self.counters.count_total(failed, slow);
                self.counts_dirty = true;
                if failed {
                    let reason = Some(TripReason::ProbeFailed);
                    return Outcome::Transition(Move::new(CircuitState::Open, now, reason));
                }
                self.probes_succeeded += 1;
                if self.probes_succeeded >= self.config.half_open_probes {
                    Outcome::Transition(Move::new(CircuitState::Closed, now, None))
                } else {
                    Outcome::Counted
                }
            }
            CircuitState::Open | CircuitState::ForcedOpen | CircuitState::Disabled => {
                Outcome::Stale
            }
        }
    }

    /// The effective state at `now` (what the next call would meet), without changing it.
    pub fn view(&self, now: u64) -> View {
        let open = |until| View { state: CircuitState::Open, open_until_unix_ns: Some(until) };
        let half_open = View { state: CircuitState::HalfOpen, open_until_unix_ns: None };
        if self.interrupted_probe {
            return View { state: CircuitState::Open, open_until_unix_ns: None };
        }
        match self.state {
            CircuitState::Open if now >= self.open_until_unix_ns => half_open,
            CircuitState::Open => open(self.open_until_unix_ns),
            CircuitState::HalfOpen => match self.half_open_deadline() {
                Some(deadline) if now >= deadline => {
                    let until = deadline.saturating_add(self.open_ns(deadline, self.state));
                    if now >= until {
                        half_open
                    } else {
                        open(until)
                    }
                }
                _ => half_open,
            },
            state => View { state, open_until_unix_ns: None },
        }
    }

    /// Probes of the current half-open period, if the breaker is half-open.
    pub fn half_open_progress(&self) -> Option<HalfOpenProgress> {
        (self.state == CircuitState::HalfOpen).then_some(HalfOpenProgress {
            issued: self.probes_issued,
            succeeded: self.probes_succeeded,
            permitted: self.config.half_open_probes,
        })
    }

    /// The counters to log, if they changed and the last counts record is at least
    /// `counts_log_interval` old at `now` (or unconditionally with `force`, after a
    /// transition); they count as logged from here on. `None` when counts are not logged.
    pub fn counts_due(&mut self, now: u64, force: bool) -> Option<CountsSnapshot> {
        let interval = ns(self.config.counts_log_interval?);
        let due = self.counts_logged_unix_ns == 0
            || now >= self.counts_logged_unix_ns.saturating_add(interval);
        if !(force || self.counts_dirty && due) {
            return None;
        }
        self.counts_dirty = false;
        self.counts_logged_unix_ns = now.max(1);
        self.counts_logged_failures = self.counters.has_failures();
        Some(self.counters.snapshot())
    }

    /// Replays a logged counts record of `generation` (ignored if the breaker has moved on).
    pub fn restore_counts(
        &mut self,
        generation: u64,
        reason: Option<TripReason>,
        last_open_ns: u64,
        s: &CountsSnapshot,
        logged_unix_ns: u64,
    ) -> bool {
        if generation != self.generation {
            return false;
        }
        self.reason = reason;
        self.last_open_ns = last_open_ns;
        self.counters.restore(&self.config, s);
        if !self.registered {
            self.logged_counts = Some(s.clone());
        }
        self.counts_logged_unix_ns = logged_unix_ns.max(1);
        self.counts_logged_failures = self.counters.has_failures();
        self.counts_dirty = false;
        true
    }

    /// The counters as last logged or replayed (exactly as in the record when the breaker
    /// has no handle in this process), for a snapshot.
    pub fn logged_snapshot(&self) -> CountsSnapshot {
        self.logged_counts.clone().unwrap_or_else(|| self.counters.snapshot())
    }
}

/// A 64-bit mix (splitmix64's finalizer): spreads jitter over its range.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
