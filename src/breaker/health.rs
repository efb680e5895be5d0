//! What a breaker reports: its counts, why it opened, its health, and its state changes.

use crate::breaker::config::CircuitState;

/// A breaker's counters (gobreaker's `Counts`, Resilience4j's `Metrics`). Totals cover the
/// breaker's whole life in the log (restored at open as of its last counts record); streak
/// and window counts are those of the current Closed period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BreakerCounts {
    /// Outcomes counted (Closed and HalfOpen calls of the current generation).
    pub calls: u64,
    /// Counted calls that succeeded (and were not slow).
    pub successes: u64,
    /// Counted calls that failed, slow ones included.
    pub failures: u64,
    /// Counted calls at least as slow as `slow_call_threshold` (counted as failures too).
    pub slow_calls: u64,
    /// Calls rejected (in shadow mode: calls that would have been).
    pub rejected: u64,
    /// Failures in a row in Closed (inside `failure_window`, if set).
    pub consecutive_failures: u32,
    /// Successes in a row.
    pub consecutive_successes: u32,
    /// Calls in the failure-rate window (0 without a rate condition).
    pub window_calls: u32,
    /// Failed calls in the failure-rate window.
    pub window_failures: u32,
}

/// Why a breaker opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TripReason {
    /// The streak reached `consecutive_failures`.
    ConsecutiveFailures {
        /// Failures in the streak.
        failures: u32,
    },
    /// The window's failure rate reached the threshold.
    FailureRate {
        /// Failed calls in the window.
        failures: u32,
        /// Calls in the window.
        calls: u32,
    },
    /// The custom `trip_when` predicate returned true.
    Predicate,
    /// A half-open probe failed (or was dropped without an outcome).
    ProbeFailed,
    /// The half-open period outlasted `half_open_timeout`.
    HalfOpenTimeout,
    /// The process died while probes were in flight.
    ProbeInterrupted,
}

impl TripReason {
    /// `(code, a, b)` for the log; see [`from_parts`](Self::from_parts).
    pub(crate) fn to_parts(self) -> (u8, u32, u32) {
        match self {
            TripReason::ConsecutiveFailures { failures } => (1, failures, 0),
            TripReason::FailureRate { failures, calls } => (2, failures, calls),
            TripReason::Predicate => (3, 0, 0),
            TripReason::ProbeFailed => (4, 0, 0),
            TripReason::HalfOpenTimeout => (5, 0, 0),
            TripReason::ProbeInterrupted => (6, 0, 0),
        }
    }

    /// The reason for a logged code (0: none), or `Err` for an unknown code.
    pub(crate) fn from_parts(code: u8, a: u32, b: u32) -> Result<Option<TripReason>, u8> {
        Ok(Some(match code {
            0 => return Ok(None),
            1 => TripReason::ConsecutiveFailures { failures: a },
            2 => TripReason::FailureRate { failures: a, calls: b },
            3 => TripReason::Predicate,
            4 => TripReason::ProbeFailed,
            5 => TripReason::HalfOpenTimeout,
            6 => TripReason::ProbeInterrupted,
            other => return Err(other),
        }))
    }
}

/// Progress of a half-open period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HalfOpenProgress {
    /// Probes admitted so far in this period.
    pub issued: u32,
    /// Probes that succeeded.
    pub succeeded: u32,
    /// Probes the period admits (`half_open_probes`); all must succeed to close.
    pub permitted: u32,
}

/// One breaker's state and counters, from [`Store::breakers`](crate::Store::breakers) or
/// [`CircuitBreaker::health`](crate::CircuitBreaker::health).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerHealth {
    /// The breaker's name.
    pub name: String,
    /// The effective state now: an Open breaker past `open_until` is reported HalfOpen (the
    /// next call probes), a half-open period past its timeout as Open, and a breaker
    /// recovered with probes in flight as Open (it reopens when first used).
    pub state: CircuitState,
    /// The state of the last transition in the log (what `state` was derived from).
    pub logged_state: CircuitState,
    /// Transitions so far (+1 on each); outcomes of older generations are ignored.
    pub generation: u64,
    /// Why it opened, when `state` is Open or HalfOpen (or it is a shadow breaker that would
    /// be). `None` when Closed or manually set.
    pub reason: Option<TripReason>,
    /// Counters (see [`BreakerCounts`]).
    pub counts: BreakerCounts,
    /// Failed share of the failure-rate window in percent (`None`: empty window or no rate
    /// condition).
    pub failure_rate_percent: Option<u8>,
    /// When Open: the time probes may start, ns since the Unix epoch (`None` also for a
    /// breaker recovered with probes in flight, until it reopens).
    pub open_until_unix_ns: Option<u64>,
    /// When HalfOpen: the probes of this period.
    pub half_open: Option<HalfOpenProgress>,
    /// Time of the last transition, ns since the Unix epoch (0: never left Closed).
    pub last_transition_unix_ns: u64,
    /// Whether it runs in shadow (metrics-only) mode; `false` for a breaker not opened with
    /// [`Store::breaker`](crate::Store::breaker) in this process.
    pub shadow: bool,
    /// Whether a handle was opened in this process (its configuration is known).
    pub registered: bool,
}

/// A transition, as given to state-change listeners and to the `tracing` event
/// `walden::breaker` (level INFO, WARN when opening).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The breaker's name.
    pub breaker: String,
    /// The state left.
    pub from: CircuitState,
    /// The state entered.
    pub to: CircuitState,
    /// The generation after the transition.
    pub generation: u64,
    /// When it happened, ns since the Unix epoch.
    pub at_unix_ns: u64,
    /// When the new Open period ends, if `to` is Open.
    pub open_until_unix_ns: Option<u64>,
    /// Why it opened, if `to` is Open.
    pub reason: Option<TripReason>,
}
