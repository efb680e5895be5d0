//! What a breaker is configured with and the states it can be in: plain data, free of locks
//! and I/O, shared by the state machine and the handle.

use std::time::Duration;

use crate::error::{Error, Result};
pub use crate::format::breaker::CircuitState;
use crate::limits::MAX_BREAKER_OPEN_NS;
use crate::wal::Durability;

pub use crate::limits::{MAX_BREAKER_WINDOW_CALLS, MAX_HALF_OPEN_PROBES};

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

/// How a breaker trips and recovers. The default is the common setting: open after 3
/// consecutive failures, for 60 s, then admit 1 probe; transitions fsynced.
///
/// ```
/// use std::time::Duration;
/// use walden::{BreakerConfig, FailureRate};
/// let config = BreakerConfig {
///     failure_rate: Some(FailureRate { threshold_percent: 50, window_calls: 20, minimum_calls: 10 }),
///     slow_call_threshold: Some(Duration::from_secs(2)),
///     ..BreakerConfig::default()
/// };
/// assert_eq!(config.consecutive_failures, Some(3));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Opens after this many failures in a row (`None`: no streak condition).
    pub consecutive_failures: Option<u32>,
    /// Opens when the failure rate over the window reaches the threshold (`None`: off).
    pub failure_rate: Option<FailureRate>,
    /// How long the breaker stays open before admitting probes.
    pub open_duration: Duration,
    /// Probes admitted in HalfOpen; all must succeed to close the breaker, one failure reopens.
    pub half_open_probes: u32,
    /// A call that takes at least this long counts as a failure even if it succeeded.
    pub slow_call_threshold: Option<Duration>,
    /// When a transition's record counts as done: `Immediate` (default) waits for the fsync.
    pub durability: Durability,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: Some(3),
            failure_rate: None,
            open_duration: Duration::from_secs(60),
            half_open_probes: 1,
            slow_call_threshold: None,
            durability: Durability::Immediate,
        }
    }
}

impl BreakerConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |reason| Err(Error::InvalidBreakerConfig { reason });
        if self.consecutive_failures == Some(0) {
            return bad("consecutive_failures must be at least 1");
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
        if self.open_duration.is_zero()
            || self.open_duration.as_nanos() > u128::from(MAX_BREAKER_OPEN_NS)
        {
            return bad("open_duration must be positive and at most MAX_BREAKER_OPEN_NS");
        }
        if !(1..=MAX_HALF_OPEN_PROBES).contains(&self.half_open_probes) {
            return bad("half_open_probes must be 1 to MAX_HALF_OPEN_PROBES");
        }
        Ok(())
    }
}
