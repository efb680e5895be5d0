//! What a breaker is configured with and the states it can be in: plain data, free of locks
//! and I/O, shared by the state machine and the handle, with validation.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::breaker::health::BreakerCounts;
use crate::error::{Error, Result};
pub use crate::format::breaker::CircuitState;
use crate::limits::MAX_QUOTA_WINDOW_NS;
use crate::wal::Durability;

pub use crate::limits::{
    DEFAULT_COUNTS_LOG_INTERVAL, MAX_BREAKER_WINDOW_CALLS, MAX_CONSECUTIVE_FAILURES,
    MAX_HALF_OPEN_PROBES,
};

/// Failure-rate trip condition over a window of the last calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRate {
    /// Opens when at least this percentage (1–100) of the window's calls failed.
    pub threshold_percent: u8,
    /// Calls in the sliding window (1–[`MAX_BREAKER_WINDOW_CALLS`]).
    pub window_calls: u32,
    /// No decision before the window holds this many calls (1–`window_calls`).
    pub minimum_calls: u32,
}

/// A growing open duration for a dependency that stays down: each reopening from HalfOpen
/// (a failed or timed-out probe) stays open `factor` times as long as the previous open
/// period, up to `max_open_duration`; closing starts again from `open_duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Growth per reopening, 2 to 16 (2 doubles).
    pub factor: u32,
    /// The cap, at least `open_duration`.
    pub max_open_duration: Duration,
    /// Each open period is shortened by a random 0 to `jitter_percent` % (0–50), so breakers
    /// that opened together do not probe together. 0: no jitter.
    pub jitter_percent: u8,
}

/// A custom trip condition, asked after every counted failure in Closed with the breaker's
/// counts (the failure included); `true` opens the breaker (gobreaker's `ReadyToTrip`). It runs
/// under the breaker's lock: keep it quick and do not call the breaker from it.
#[derive(Clone)]
pub struct TripPredicate(Arc<dyn Fn(&BreakerCounts) -> bool + Send + Sync>);

impl TripPredicate {
    /// Wraps a closure.
    pub fn new(f: impl Fn(&BreakerCounts) -> bool + Send + Sync + 'static) -> TripPredicate {
        TripPredicate(Arc::new(f))
    }

    pub(crate) fn trips(&self, counts: &BreakerCounts) -> bool {
        (self.0)(counts)
    }
}

impl fmt::Debug for TripPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TripPredicate(..)")
    }
}

/// Two predicates are equal when they are the same closure (clones of one `TripPredicate`).
impl PartialEq for TripPredicate {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TripPredicate {}

/// How a breaker trips and recovers. The default is the common setting: open after 3
/// consecutive failures, for 60 s, then admit 1 probe (for at most 60 s); transitions
/// fsynced; closed-state counts logged at most once a second.
///
/// ```
/// use std::time::Duration;
/// use walden::{Backoff, BreakerConfig, FailureRate};
/// let config = BreakerConfig {
///     failure_rate: Some(FailureRate { threshold_percent: 50, window_calls: 20, minimum_calls: 10 }),
///     failure_window: Some(Duration::from_secs(60)), // forget calls older than a minute
///     slow_call_threshold: Some(Duration::from_secs(2)),
///     open_backoff: Some(Backoff {
///         factor: 2,
///         max_open_duration: Duration::from_secs(600),
///         jitter_percent: 10,
///     }),
///     ..BreakerConfig::default()
/// };
/// assert_eq!(config.consecutive_failures, Some(3));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Opens after this many failures in a row (1–[`MAX_CONSECUTIVE_FAILURES`]; `None`: no
    /// streak condition). With `failure_window`, only failures inside the window count.
    pub consecutive_failures: Option<u32>,
    /// Opens when the failure rate over the window reaches the threshold (`None`: off).
    pub failure_rate: Option<FailureRate>,
    /// Time-based window (Resilience4j `TIME_BASED`, gobreaker `Interval`): calls older than
    /// this no longer count, neither in the streak nor in the failure-rate window. `None`:
    /// count-based only (old failures count however old they are).
    pub failure_window: Option<Duration>,
    /// A custom trip condition, checked after each failure as well as the built-in ones.
    pub trip_when: Option<TripPredicate>,
    /// How long the breaker stays open before admitting probes (the first time).
    pub open_duration: Duration,
    /// Growing open duration while probes keep failing (`None`: always `open_duration`).
    pub open_backoff: Option<Backoff>,
    /// Probes admitted per half-open period; all must succeed to close the breaker, one
    /// failure reopens it.
    pub half_open_probes: u32,
    /// A half-open period longer than this reopens the breaker (Resilience4j
    /// `maxWaitDurationInHalfOpenState`), so a hung or leaked probe cannot keep it half-open
    /// for ever. `None`: wait for the probes however long they take.
    pub half_open_timeout: Option<Duration>,
    /// A call that takes at least this long counts as a failure even if it succeeded.
    pub slow_call_threshold: Option<Duration>,
    /// Shadow (metrics-only) mode: the breaker counts, trips and logs as configured but never
    /// rejects a call; `rejected` counts the calls it would have rejected. For tuning.
    pub shadow: bool,
    /// Closed-state counters (streak, window, totals) are logged so that failures add up
    /// across restarts: at most one record per breaker per this interval, written without an
    /// fsync of its own; successes log only when they clear logged failures. `None`: memory
    /// only (the counters restart at zero with the process).
    pub counts_log_interval: Option<Duration>,
    /// When a transition's record counts as done: `Immediate` (default) waits for the fsync.
    pub durability: Durability,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: Some(3),
            failure_rate: None,
            failure_window: None,
            trip_when: None,
            open_duration: Duration::from_secs(60),
            open_backoff: None,
            half_open_probes: 1,
            half_open_timeout: Some(Duration::from_secs(60)),
            slow_call_threshold: None,
            shadow: false,
            counts_log_interval: Some(DEFAULT_COUNTS_LOG_INTERVAL),
            durability: Durability::Immediate,
        }
    }
}

/// A duration in ns, or `None` if it is zero or longer than the longest supported window.
fn window_ns(d: Duration) -> Option<u64> {
    let ns = u64::try_from(d.as_nanos()).ok()?;
    (ns > 0 && ns <= MAX_QUOTA_WINDOW_NS).then_some(ns)
}

/// A duration in ns, saturating (validated configs keep it under `MAX_QUOTA_WINDOW_NS`).
pub(crate) fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl BreakerConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |reason| Err(Error::InvalidBreakerConfig { reason });
        if self.consecutive_failures.is_some_and(|n| !(1..=MAX_CONSECUTIVE_FAILURES).contains(&n)) {
            return bad("consecutive_failures must be 1 to MAX_CONSECUTIVE_FAILURES");
        }
        if let Some(r) = &self.failure_rate {
            if !(1..=100).contains(&r.threshold_percent) {
                return bad("failure_rate.threshold_percent must be 1 to 100");
            }
            if !(1..=MAX_BREAKER_WINDOW_CALLS).contains(&r.window_calls) {
                return bad("failure_rate.window_calls must be 1 to MAX_BREAKER_WINDOW_CALLS");
            }
            if !(1..=r.window_calls).contains(&r.minimum_calls) {
                return bad("failure_rate.minimum_calls must be 1 to window_calls");
            }
        }
        let positive = |d: Option<Duration>| d.is_none_or(|d| window_ns(d).is_some());
        if !positive(self.failure_window) {
            return bad("failure_window must be positive and at most MAX_QUOTA_WINDOW_NS");
        }
        if window_ns(self.open_duration).is_none() {
            return bad("open_duration must be positive and at most MAX_QUOTA_WINDOW_NS");
        }
        if let Some(b) = &self.open_backoff {
            if !(2..=16).contains(&b.factor) {
                return bad("open_backoff.factor must be 2 to 16");
            }
            if b.max_open_duration < self.open_duration || window_ns(b.max_open_duration).is_none()
            {
                return bad(
                    "open_backoff.max_open_duration must be open_duration to MAX_QUOTA_WINDOW_NS",
                );
            }
            if b.jitter_percent > 50 {
                return bad("open_backoff.jitter_percent must be 0 to 50");
            }
        }
        if !(1..=MAX_HALF_OPEN_PROBES).contains(&self.half_open_probes) {
            return bad("half_open_probes must be 1 to MAX_HALF_OPEN_PROBES");
        }
        if !positive(self.half_open_timeout) {
            return bad("half_open_timeout must be positive and at most MAX_QUOTA_WINDOW_NS");
        }
        if !positive(self.slow_call_threshold) {
            return bad("slow_call_threshold must be positive and at most MAX_QUOTA_WINDOW_NS");
        }
        if !positive(self.counts_log_interval) {
            return bad("counts_log_interval must be positive and at most MAX_QUOTA_WINDOW_NS");
        }
        Ok(())
    }
}
