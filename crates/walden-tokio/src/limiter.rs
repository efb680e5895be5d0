//! [`AsyncLimiter`]: a durable rate limiter whose checks are futures.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use walden::{Decision, Quota, RateLimiter, Result, Store};

/// How much random delay [`AsyncLimiter::until_ready`] adds to each wait, so callers denied
/// at the same moment do not all come back at the same moment (a thundering herd).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jitter {
    /// Every wait is lengthened by a uniformly random amount up to this.
    pub max: Duration,
}

impl Jitter {
    /// No jitter: retry exactly when a cell is due.
    pub const NONE: Jitter = Jitter { max: Duration::ZERO };

    /// Up to `max` of random extra delay per wait.
    pub fn up_to(max: Duration) -> Jitter {
        Jitter { max }
    }

    /// A random delay in `[0, max]`.
    fn sample(&self) -> Duration {
        if self.max.is_zero() {
            return Duration::ZERO;
        }
        // RandomState is seeded per process and per instance: enough to spread retries.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(self.max.as_nanos() as u64);
        let nanos = u64::try_from(self.max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(h.finish() % nanos.saturating_add(1))
    }
}

impl Default for Jitter {
    /// Up to 10 ms.
    fn default() -> Jitter {
        Jitter::up_to(Duration::from_millis(10))
    }
}

/// A durable, keyed GCRA rate limiter whose checks are futures (see
/// [`walden::RateLimiter`]): an allowed check resolves once its record is acknowledged; a
/// denial writes nothing and resolves at once. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AsyncLimiter {
    store: Store,
    limiter: RateLimiter,
}

impl AsyncLimiter {
    pub(crate) fn new(store: Store, limiter: RateLimiter) -> AsyncLimiter {
        AsyncLimiter { store, limiter }
    }

    /// The blocking limiter underneath.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// The limiter's name.
    pub fn name(&self) -> &str {
        self.limiter.name()
    }

    /// Its default quota.
    pub fn quota(&self) -> Quota {
        self.limiter.quota()
    }

    /// Spends one cell of `key` if available.
    pub async fn check(&self, key: &str) -> Result<Decision> {
        self.store.submit(|| self.limiter.check(key))?.await
    }

    /// Spends `n` cells of `key` at once, all or nothing.
    pub async fn check_n(&self, key: &str, n: u32) -> Result<Decision> {
        self.store.submit(|| self.limiter.check_n(key, n))?.await
    }

    /// Spends `n` cells of `key` under a per-call `quota` (see [`RateLimiter::check_with`]).
    pub async fn check_with(&self, key: &str, n: u32, quota: Quota) -> Result<Decision> {
        self.store.submit(|| self.limiter.check_with(key, n, &quota))?.await
    }

    /// Forgets `key`'s state: its next check sees the full burst. Resolves to whether the key
    /// had spent cells.
    pub async fn reset(&self, key: &str) -> Result<bool> {
        self.store.submit(|| walden::api::Limiter::reset(&self.limiter, key))?.await
    }

    /// Whether one cell is available now, consuming and writing nothing (synchronous).
    pub fn peek(&self, key: &str) -> Result<Decision> {
        self.limiter.peek(key)
    }

    /// Waits until one cell of `key` is available and spends it, sleeping (on tokio's timer,
    /// with [`Jitter::default`]) between denials. Dropping the future while it sleeps
    /// spends nothing; the allowing check is, like every write, complete once submitted.
    pub async fn until_ready(&self, key: &str) -> Result<Decision> {
        self.until_ready_with_jitter(key, Jitter::default()).await
    }

    /// [`until_ready`](Self::until_ready) with an explicit jitter.
    pub async fn until_ready_with_jitter(&self, key: &str, jitter: Jitter) -> Result<Decision> {
        loop {
            let d = self.check(key).await?;
            if d.allowed {
                return Ok(d);
            }
            tokio::time::sleep(d.retry_after + jitter.sample()).await;
        }
    }
}
