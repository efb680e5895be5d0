//! The closure wrapper: a call made through the breaker, its `Err` classified as a failure.

use std::fmt;
use std::time::Duration;

use super::{Acquire, CircuitBreaker};
use crate::error::Error;

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
