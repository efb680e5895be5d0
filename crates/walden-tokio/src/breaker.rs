//! [`AsyncBreaker`]: a durable circuit breaker whose transitions are awaited, not blocked on.

use std::time::{Duration, Instant};

use walden::{Acquire, BreakerHealth, CircuitBreaker, CircuitState, Permit, Result, Store};

/// A durable circuit breaker (see [`walden::CircuitBreaker`]) whose calls that log a
/// transition are futures. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AsyncBreaker {
    store: Store,
    breaker: CircuitBreaker,
}

/// The answer of [`AsyncBreaker::acquire`].
#[derive(Debug)]
#[must_use = "a permit must be finished with success() or failure()"]
pub enum AsyncAcquire {
    /// The call may proceed; report its outcome through the permit.
    Permitted(AsyncPermit),
    /// The call must not be made.
    Rejected {
        /// `Some`: the breaker is open for this much longer. `None`: unknown (forced open, or
        /// half-open with every probe slot taken).
        retry_after: Option<Duration>,
    },
}

impl AsyncBreaker {
    pub(crate) fn new(store: Store, breaker: CircuitBreaker) -> AsyncBreaker {
        AsyncBreaker { store, breaker }
    }

    /// The blocking breaker underneath.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The breaker's state now (synchronous).
    pub fn state(&self) -> CircuitState {
        self.breaker.state()
    }

    /// The breaker's state and counters (synchronous).
    pub fn health(&self) -> BreakerHealth {
        self.breaker.health()
    }

    /// Asks to make one call. If this turns an open breaker half-open, the transition is
    /// durable before the permit is handed out.
    pub async fn acquire(&self) -> Result<AsyncAcquire> {
        // The permit is wrapped inside the submitted closure, so a future dropped before it
        // resolves drops an `AsyncPermit`: a failed call, queued without blocking.
        let started = Instant::now();
        let wrap = |acquired| match acquired {
            Acquire::Permitted(permit) => AsyncAcquire::Permitted(AsyncPermit {
                store: self.store.clone(),
                permit: Some(permit),
                started,
            }),
            Acquire::Rejected { retry_after } => AsyncAcquire::Rejected { retry_after },
        };
        self.store.submit(|| self.breaker.try_acquire().map(wrap))?.await
    }

    /// Closes the breaker with fresh counters (durably).
    pub async fn reset(&self) -> Result<()> {
        self.store.submit(|| self.breaker.reset())?.await
    }

    /// Opens the breaker until [`reset`](Self::reset) (durably).
    pub async fn force_open(&self) -> Result<()> {
        self.store.submit(|| self.breaker.force_open())?.await
    }

    /// Lets every call through until [`reset`](Self::reset) (durably).
    pub async fn disable(&self) -> Result<()> {
        self.store.submit(|| self.breaker.disable())?.await
    }
}

/// Permission for one call. Report its outcome with [`success`](Self::success),
/// [`failure`](Self::failure) or [`finish`](Self::finish); a transition the outcome causes is
/// durable when the future resolves.
///
/// A permit dropped without an outcome (a request cancelled by a timeout, a panic, a forgotten
/// permit) counts as a **failed** call with its elapsed time, so it is also a slow call if it
/// took longer than the slow-call threshold: a call that never reported is no evidence that the
/// dependency is healthy. Its record is queued without blocking the dropping thread.
#[must_use = "report the call's outcome with success() or failure()"]
pub struct AsyncPermit {
    store: Store,
    permit: Option<Permit>,
    started: Instant,
}

impl std::fmt::Debug for AsyncPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncPermit").field("generation", &self.generation()).finish()
    }
}

impl AsyncPermit {
    /// The breaker generation this call started in.
    pub fn generation(&self) -> u64 {
        self.permit.as_ref().map_or(0, Permit::generation)
    }

    /// The call succeeded. Resolves to whether the outcome counted.
    pub async fn success(mut self) -> Result<bool> {
        let permit = self.take();
        self.store.submit(|| permit.success())?.await
    }

    /// The call failed. Resolves to whether the outcome counted.
    pub async fn failure(mut self) -> Result<bool> {
        let permit = self.take();
        self.store.submit(|| permit.failure())?.await
    }

    /// Reports the outcome with an explicit duration (checked against the slow-call
    /// threshold).
    pub async fn finish(mut self, ok: bool, duration: Duration) -> Result<bool> {
        let permit = self.take();
        self.store.submit(|| permit.finish(ok, duration))?.await
    }

    fn take(&mut self) -> Permit {
        self.permit.take().expect("a permit is finished once, by value")
    }
}

impl Drop for AsyncPermit {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            // Unreported: a failed call with its elapsed time, queued without waiting. There
            // is no caller to return an error to; a poisoned store fails the next call.
            let elapsed = self.started.elapsed();
            let _ = self.store.submit(|| permit.finish(false, elapsed));
        }
    }
}
