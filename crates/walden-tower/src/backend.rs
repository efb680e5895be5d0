//! The async seam between the layers and whatever keeps limiter and breaker state.
//!
//! walden's handles block the calling thread until their record is durable, so the
//! implementations here run them on tokio's blocking pool (`spawn_blocking`): for the embedded
//! handles ([`walden::RateLimiter`], [`walden::CircuitBreaker`]) and for the shared interface's
//! (`Arc<dyn walden::api::Limiter>`, `Arc<dyn walden::api::Breaker>`, from the embedded store or
//! from Redis alike). Another backend (an async handle) implements the same two traits and the
//! layers do not change.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use walden::api::{self, CallPermit};
use walden::{Acquire, CircuitBreaker, Decision, Permit, RateLimiter};

/// A boxed, sendable future: what the backends and the layers' services return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Something that spends rate-limit cells per key.
pub trait RateLimitBackend: Clone + Send + Sync + 'static {
    /// Spends one cell of `key`'s quota if one is available and says how it went.
    fn check(&self, key: String) -> BoxFuture<walden::Result<Decision>>;
}

/// The answer of [`BreakerBackend::acquire`].
#[derive(Debug)]
pub enum Admission<P> {
    /// The call may run; report its outcome with [`BreakerBackend::finish`].
    Permitted(P),
    /// The breaker is open.
    Rejected {
        /// How long it stays open, if known (not for a forced-open breaker, nor a half-open
        /// one whose probe slots are taken).
        retry_after: Option<Duration>,
    },
}

/// Something that admits calls and counts their outcomes: a circuit breaker.
pub trait BreakerBackend: Clone + Send + Sync + 'static {
    /// Permission for one call.
    type Permit: Send + 'static;

    /// The breaker's name (for logs and health reports).
    fn name(&self) -> &str;

    /// Asks to make one call.
    fn acquire(&self) -> BoxFuture<walden::Result<Admission<Self::Permit>>>;

    /// Reports how a permitted call went: `ok` and how long it took. Returns whether the
    /// outcome counted (see [`walden::Permit::finish`]).
    fn finish(
        &self,
        permit: Self::Permit,
        ok: bool,
        elapsed: Duration,
    ) -> BoxFuture<walden::Result<bool>>;
}

/// Runs a blocking walden call on tokio's blocking pool.
async fn blocking<T, F>(f: F) -> walden::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> walden::Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime is shutting down and dropped the task before it ran.
        Err(_) => Err(walden::Error::Closed),
    }
}

/// A permit that, if dropped without an outcome, is dropped on the blocking pool: a breaker
/// records a dropped permit as a failed call, which may wait for an fsync, and that must not
/// happen on an executor worker.
#[derive(Debug)]
pub struct BlockingDrop<P: Send + 'static>(Option<P>);

impl<P: Send + 'static> BlockingDrop<P> {
    fn new(permit: P) -> Self {
        BlockingDrop(Some(permit))
    }

    fn take(mut self) -> P {
        self.0.take().expect("taken once, by value")
    }
}

impl<P: Send + 'static> Drop for BlockingDrop<P> {
    fn drop(&mut self) {
        let Some(permit) = self.0.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(move || drop(permit))),
            Err(_) => drop(permit), // not on a runtime: this thread may block
        }
    }
}

impl RateLimitBackend for RateLimiter {
    fn check(&self, key: String) -> BoxFuture<walden::Result<Decision>> {
        let limiter = self.clone();
        Box::pin(blocking(move || limiter.check(&key)))
    }
}

impl BreakerBackend for CircuitBreaker {
    type Permit = BlockingDrop<Permit>;

    fn name(&self) -> &str {
        CircuitBreaker::name(self)
    }

    fn acquire(&self) -> BoxFuture<walden::Result<Admission<Self::Permit>>> {
        let breaker = self.clone();
        Box::pin(blocking(move || {
            Ok(match breaker.try_acquire()? {
                Acquire::Permitted(permit) => Admission::Permitted(BlockingDrop::new(permit)),
                Acquire::Rejected { retry_after } => Admission::Rejected { retry_after },
            })
        }))
    }

    fn finish(
        &self,
        permit: Self::Permit,
        ok: bool,
        elapsed: Duration,
    ) -> BoxFuture<walden::Result<bool>> {
        let permit = permit.take();
        Box::pin(blocking(move || permit.finish(ok, elapsed)))
    }
}

impl RateLimitBackend for Arc<dyn api::Limiter> {
    fn check(&self, key: String) -> BoxFuture<walden::Result<Decision>> {
        let limiter = Arc::clone(self);
        Box::pin(blocking(move || api::Limiter::check(&*limiter, &key)))
    }
}

impl BreakerBackend for Arc<dyn api::Breaker> {
    type Permit = BlockingDrop<CallPermit>;

    fn name(&self) -> &str {
        api::Breaker::name(&**self)
    }

    fn acquire(&self) -> BoxFuture<walden::Result<Admission<Self::Permit>>> {
        let breaker = Arc::clone(self);
        Box::pin(blocking(move || {
            Ok(match breaker.try_acquire()? {
                api::Admission::Permitted(permit) => {
                    Admission::Permitted(BlockingDrop::new(permit))
                }
                api::Admission::Rejected { retry_after } => Admission::Rejected { retry_after },
            })
        }))
    }

    fn finish(
        &self,
        permit: Self::Permit,
        ok: bool,
        elapsed: Duration,
    ) -> BoxFuture<walden::Result<bool>> {
        let permit = permit.take();
        Box::pin(blocking(move || permit.finish(ok, elapsed)))
    }
}
