//! Permits and the closure wrapper: how a call's outcome reaches the breaker.
//!
//! A permit dropped without an outcome (an async caller cancelled by a timeout, a panic, a
//! forgotten permit) counts as a **failed** call with its elapsed time, so it is also a slow
//! call past the slow-call threshold. The same rule holds for every breaker in walden.

use std::fmt;
use std::time::Duration;

use super::{Acquire, CircuitBreaker};
use crate::error::{Error, Result};

/// Permission for one call. Report its outcome with [`success`](Self::success),
/// [`failure`](Self::failure) or [`finish`](Self::finish); dropping it unreported counts as
/// a failure that took the time since the permit was issued.
#[must_use = "report the call's outcome with success() or failure()"]
pub struct Permit {
    breaker: CircuitBreaker,
    generation: u64,
    /// `false` for a call a shadow breaker would have rejected: its outcome counts nothing.
    counted: bool,
    started_unix_ns: u64,
    reported: bool,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name)
            .field("generation", &self.generation)
            .field("counted", &self.counted)
            .finish_non_exhaustive()
    }
}

impl Permit {
    pub(crate) fn new(
        breaker: CircuitBreaker,
        generation: u64,
        counted: bool,
        started_unix_ns: u64,
    ) -> Permit {
        Permit { breaker, generation, counted, started_unix_ns, reported: false }
    }

    /// The breaker generation this call started in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the outcome will count: `false` for a call a shadow breaker lets through
    /// although it would have rejected it.
    pub fn is_counted(&self) -> bool {
        self.counted
    }

    /// The call succeeded; its duration is measured with the store's clock. Returns whether
    /// the outcome counted (`false`: the breaker changed generation since the call started,
    /// it is disabled or forced open, states that count nothing, or the permit is a shadow
    /// one).
    pub fn success(self) -> Result<bool> {
        let elapsed = self.elapsed();
        self.finish(true, elapsed)
    }

    /// The call failed. Returns whether the outcome counted (see [`success`](Self::success)).
    pub fn failure(self) -> Result<bool> {
        let elapsed = self.elapsed();
        self.finish(false, elapsed)
    }

    fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.breaker.now().saturating_sub(self.started_unix_ns))
    }

    /// Reports the outcome with an explicit duration (checked against the slow-call
    /// threshold). A transition it causes is durable before this returns.
    pub fn finish(mut self, ok: bool, duration: Duration) -> Result<bool> {
        self.reported = true;
        if !self.counted {
            return Ok(false);
        }
        self.breaker.report(self.generation, ok, duration, true)
    }
}

impl Drop for Permit {
    /// No outcome: a failed call of the elapsed time. A transition it causes is logged and
    /// written before the drop returns, but not waited for to be fsynced (the store's
    /// flusher syncs it within `buffered_flush_interval_ms`): a drop may run on an async
    /// executor's thread, and it has nobody to acknowledge to.
    fn drop(&mut self) {
        if self.reported || !self.counted {
            return;
        }
        let elapsed = self.elapsed();
        if let Err(error) = self.breaker.report(self.generation, false, elapsed, false) {
            tracing::warn!(
                target: "walden::breaker",
                breaker = %self.breaker.name, %error,
                "could not record a permit dropped without an outcome"
            );
        }
    }
}

/// Why [`CircuitBreaker::call`] did not return the call's value.
#[derive(Debug)]
pub enum CallError<E> {
    /// The breaker rejected the call; it was not made. `retry_after` as in
    /// [`Acquire::Rejected`].
    Rejected {
        /// How long the breaker stays open, if known.
        retry_after: Option<Duration>,
    },
    /// The call was made and returned this error.
    Failed(E),
    /// The store could not decide (poisoned or closed); the call was not made.
    Store(Error),
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Rejected { retry_after: Some(d) } => {
                write!(f, "circuit breaker open, retry after {d:?}")
            }
            CallError::Rejected { retry_after: None } => write!(f, "circuit breaker open"),
            CallError::Failed(e) => e.fmt(f),
            CallError::Store(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CallError::Failed(e) => Some(e),
            CallError::Store(e) => Some(e),
            CallError::Rejected { .. } => None,
        }
    }
}

impl CircuitBreaker {
    /// Makes `f` through the breaker: rejected without calling it when the breaker is open,
    /// otherwise its `Ok` counts as a success and its `Err` as a failure (a slow `Ok` counts
    /// as a failure too). A panic in `f` counts as a failure and propagates.
    pub fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, CallError<E>> {
        self.call_with(|_| true, f)
    }

    /// Like [`call`](Self::call), but an `Err` counts as a failure only if `is_failure`
    /// says so (e.g. a timeout does, a "not found" does not: that call succeeded as far as
    /// the dependency's health is concerned).
    ///
    /// The call's own result always comes back. If recording its outcome fails (the store
    /// was poisoned meanwhile), that is reported as a `tracing` warning; the next call
    /// returns the store's error.
    pub fn call_with<T, E>(
        &self,
        is_failure: impl FnOnce(&E) -> bool,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, CallError<E>> {
        let permit = match self.try_acquire().map_err(CallError::Store)? {
            Acquire::Permitted(p) => p,
            Acquire::Rejected { retry_after } => return Err(CallError::Rejected { retry_after }),
        };
        let result = f();
        let ok = match &result {
            Ok(_) => true,
            Err(e) => !is_failure(e),
        };
        let outcome = if ok { permit.success() } else { permit.failure() };
        if let Err(error) = outcome {
            tracing::warn!(
                target: "walden::breaker",
                breaker = %self.name, %error,
                "could not record a call's outcome"
            );
        }
        result.map_err(CallError::Failed)
    }
}
