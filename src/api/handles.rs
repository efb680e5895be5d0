//! Rate limiters and circuit breakers behind traits.

use std::fmt;
use std::time::Duration;

use crate::error::Result;
use crate::{BreakerHealth, CircuitState, Decision, Quota};

/// A keyed GCRA rate limiter: what every backend's limiter implements.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use walden::api::{Backend, Limiter};
/// use walden::{Quota, Store};
/// let backend: std::sync::Arc<dyn Backend> = std::sync::Arc::new(Store::open(dir.path())?);
/// let api = backend.rate_limiter("api", Quota::per_second(2))?;
/// assert!(api.check("client-1")?.allowed);
/// assert_eq!(api.peek("client-1")?.remaining, 1);
/// api.reset("client-1")?;
/// assert_eq!(api.peek("client-1")?.remaining, 2);
/// # Ok::<(), walden::Error>(())
/// ```
pub trait Limiter: Send + Sync {
    /// The limiter's name.
    fn name(&self) -> &str;

    /// The quota of [`check`](Self::check), [`check_n`](Self::check_n) and
    /// [`peek`](Self::peek).
    fn quota(&self) -> Quota;

    /// Spends `n` cells of `key` under `quota`, all or nothing. A cost the quota can never
    /// allow (above its burst) is refused with the same error on every backend.
    fn check_with(&self, key: &str, n: u32, quota: &Quota) -> Result<Decision>;

    /// Whether one cell of `key` is available and how many are, consuming nothing.
    fn peek(&self, key: &str) -> Result<Decision>;

    /// Forgives `key`: its next check sees the full burst. Returns whether the key had spent
    /// cells.
    fn reset(&self, key: &str) -> Result<bool>;

    /// Spends one cell of `key` if available.
    fn check(&self, key: &str) -> Result<Decision> {
        self.check_with(key, 1, &self.quota())
    }

    /// Spends `n` cells of `key` at once, all or nothing.
    fn check_n(&self, key: &str, n: u32) -> Result<Decision> {
        self.check_with(key, n, &self.quota())
    }
}

/// A circuit breaker: what every backend's breaker implements.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use walden::api::{Admission, Backend};
/// use walden::{BreakerConfig, CircuitState, Store};
/// let backend: std::sync::Arc<dyn Backend> = std::sync::Arc::new(Store::open(dir.path())?);
/// let db = backend.breaker("db", BreakerConfig::default())?;
/// for _ in 0..3 {
///     if let Admission::Permitted(permit) = db.try_acquire()? {
///         permit.failure()?;
///     }
/// }
/// assert_eq!(db.state()?, CircuitState::Open);
/// assert!(matches!(db.try_acquire()?, Admission::Rejected { .. }));
/// # Ok::<(), walden::Error>(())
/// ```
pub trait Breaker: Send + Sync {
    /// The breaker's name.
    fn name(&self) -> &str;

    /// Asks to make one call: a [`CallPermit`] to report its outcome through, or a rejection.
    fn try_acquire(&self) -> Result<Admission>;

    /// The breaker's state now.
    fn state(&self) -> Result<CircuitState>;

    /// The breaker's state and counters.
    fn health(&self) -> Result<BreakerHealth>;

    /// Closes the breaker with fresh counters (from any state, manual ones included).
    fn reset(&self) -> Result<()>;

    /// Opens the breaker until [`reset`](Self::reset).
    fn force_open(&self) -> Result<()>;

    /// Lets every call through, counting nothing, until [`reset`](Self::reset).
    fn disable(&self) -> Result<()>;
}

/// The answer of [`Breaker::try_acquire`].
#[derive(Debug)]
#[must_use = "a permit must be finished with success() or failure()"]
pub enum Admission {
    /// The call may proceed; report its outcome through the permit.
    Permitted(CallPermit),
    /// The call must not be made.
    Rejected {
        /// `Some`: the breaker is open for this much longer. `None`: unknown (forced open, or
        /// half-open with every probe slot taken).
        retry_after: Option<Duration>,
    },
}

/// A backend's side of a permit (implemented by each backend; applications use
/// [`CallPermit`]).
pub trait PermitBackend: Send {
    /// The breaker generation the call started in.
    fn generation(&self) -> u64;

    /// Reports the outcome: `duration` `None` measures the call from the acquire. Returns
    /// whether it counted (`false`: stale generation, or a state that counts nothing).
    fn finish(self: Box<Self>, ok: bool, duration: Option<Duration>) -> Result<bool>;
}

/// Permission for one call from [`Breaker::try_acquire`]. Report the outcome with
/// [`success`](Self::success), [`failure`](Self::failure) or [`finish`](Self::finish).
///
/// A permit dropped without an outcome (a cancelled future, a panic, a forgotten permit)
/// counts as a **failed** call with its elapsed time, on every backend: a call that never
/// reported is not evidence that the dependency is healthy.
#[must_use = "report the call's outcome with success() or failure()"]
pub struct CallPermit {
    inner: Option<Box<dyn PermitBackend>>,
}

impl fmt::Debug for CallPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallPermit").field("generation", &self.generation()).finish()
    }
}

impl CallPermit {
    /// Wraps a backend's permit.
    pub fn new(inner: Box<dyn PermitBackend>) -> CallPermit {
        CallPermit { inner: Some(inner) }
    }

    /// The breaker generation this call started in.
    pub fn generation(&self) -> u64 {
        self.inner.as_ref().map_or(0, |p| p.generation())
    }

    /// The call succeeded. Returns whether the outcome counted.
    pub fn success(mut self) -> Result<bool> {
        self.take().finish(true, None)
    }

    /// The call failed. Returns whether the outcome counted.
    pub fn failure(mut self) -> Result<bool> {
        self.take().finish(false, None)
    }

    /// Reports the outcome with an explicit duration (checked against the slow-call
    /// threshold).
    pub fn finish(mut self, ok: bool, duration: Duration) -> Result<bool> {
        self.take().finish(ok, Some(duration))
    }

    fn take(&mut self) -> Box<dyn PermitBackend> {
        self.inner.take().expect("a permit is finished once, by value")
    }
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        if let Some(p) = self.inner.take() {
            // Dropped unreported: a failed call. There is no caller to return an error to;
            // the breaker's next call meets the same backend error.
            let _ = p.finish(false, None);
        }
    }
}
