//! Durable rate limiters (GCRA) whose state lives in the log.
//!
//! Every allowed check appends a `RateLimit` record holding the key's new theoretical arrival
//! time; recovery replays them, so a crash never hands out a fresh quota. Denials write nothing.
//! See `docs/LIMITERS.md` for the formulas, the bytes and what is durable when.

mod forget;
pub(crate) mod gcra;

pub use gcra::{Decision, Quota, MAX_QUOTA_WINDOW_NS};

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, LimitKind, Result};
use crate::format::ratelimit::RateLimitRecord;
use crate::format::RecordKind;
use crate::store::names::check_object_name;
use crate::store::{Durability, Store};

/// Counters of the rate-limiter state, from [`Store::rate_limit_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimitStats {
    /// Limiters that hold at least one resident key.
    pub limiters: usize,
    /// Keys held in memory (not idle at the last sweep).
    pub resident_keys: usize,
    /// Keys dropped as idle by sweeps since open.
    pub swept_keys: u64,
    /// Largest time any limiter has used, ns since the Unix epoch (restored from the log).
    pub high_water_unix_ns: u64,
}

/// A keyed, durable rate limiter: a handle on the store, cheap to clone.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use walden::{Quota, Store};
/// let store = Store::open(dir.path())?;
/// let login = store.rate_limiter("login", Quota::per_minute(3))?;
/// for _ in 0..3 {
///     assert!(login.check("ip:10.0.0.1")?.allowed);
/// }
/// let denied = login.check("ip:10.0.0.1")?;
/// assert!(!denied.allowed);
/// assert_eq!(denied.retry_after.as_secs_f64().round(), 20.0); // one cell per 20 s
/// assert!(login.check("ip:10.0.0.2")?.allowed); // keys are independent
/// # Ok::<(), walden::Error>(())
/// ```
#[derive(Clone)]
pub struct RateLimiter {
    store: Store,
    name: Arc<str>,
    quota: Quota,
    durability: Durability,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.name)
            .field("quota", &self.quota)
            .field("durability", &self.durability)
            .finish()
    }
}

impl Store {
    /// A rate limiter named `name` (1–64 bytes of `[A-Za-z0-9_.-]`) with a default quota.
    /// Its keys' state is shared by every handle with the same name, and survives restarts.
    /// Checks use the store's default durability (see [`RateLimiter::with_durability`]).
    pub fn rate_limiter(&self, name: &str, quota: Quota) -> Result<RateLimiter> {
        self.check_open()?;
        check_object_name(LimitKind::LimiterName, name)?;
        quota.validate()?;
        Ok(RateLimiter {
            store: self.clone(),
            name: Arc::from(name),
            quota,
            durability: self.inner.options.durability,
        })
    }

    /// Counters of the rate-limiter state (resident keys, sweeps, high-water mark).
    pub fn rate_limit_stats(&self) -> RateLimitStats {
        let st = self.inner.ratelimits.lock();
        RateLimitStats {
            limiters: st.limiters.len(),
            resident_keys: st.resident_keys,
            swept_keys: st.swept_keys,
            high_water_unix_ns: st.high_water_unix_ns,
        }
    }

    /// Drops every idle rate-limit key now (sweeps also run on their own as keys are added)
    /// and returns how many were dropped. Nothing is written: an idle key needs no record.
    pub fn sweep_rate_limits(&self) -> usize {
        let clock_ns = self.inner.options.clock.now_unix_ns();
        let mut st = self.inner.ratelimits.lock();
        let now = st.observe(clock_ns);
        st.sweep(now)
    }
}

impl RateLimiter {
    /// The limiter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The default quota of [`check`](Self::check), [`check_n`](Self::check_n) and
    /// [`peek`](Self::peek).
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The same limiter with another durability for its allowed checks:
    /// [`Durability::Immediate`] returns only after the record is fsynced;
    /// [`Durability::Buffered`] after it is written to the OS (a power loss may forget the
    /// checks of the last flush interval; a process crash forgets nothing).
    pub fn with_durability(self, durability: Durability) -> RateLimiter {
        RateLimiter { durability, ..self }
    }

    /// Spends one cell of `key`'s quota if available.
    pub fn check(&self, key: &str) -> Result<Decision> {
        self.check_with(key, 1, &self.quota)
    }

    /// Spends one cell of `key`'s quota like [`check`](Self::check), but a denial is
    /// `Err(`[`Error::RateLimited`]`)` with its `retry_after`, for code that stops at the
    /// first `?` (governor's habit). An allowed check returns its [`Decision`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// use walden::{Error, Quota, Store};
    /// let store = Store::open(dir.path())?;
    /// let api = store.rate_limiter("api", Quota::per_minute(1))?;
    /// api.enforce("client-7")?;
    /// match api.enforce("client-7") {
    ///     Err(Error::RateLimited { retry_after, .. }) => assert!(retry_after.as_secs() > 0),
    ///     other => panic!("expected RateLimited, got {other:?}"),
    /// }
    /// # Ok::<(), walden::Error>(())
    /// ```
    ///
    /// The habit this replaces does not compile silently any more: [`Decision`] is
    /// `#[must_use]`, so a `check` whose answer is dropped is a warning (an error here):
    ///
    /// ```compile_fail
    /// #![deny(unused_must_use)]
    /// fn handle(limiter: &walden::RateLimiter, ip: &str) -> walden::Result<()> {
    ///     limiter.check(ip)?; // lets every request through: the denial is dropped
    ///     Ok(())
    /// }
    /// ```
    pub fn enforce(&self, key: &str) -> Result<Decision> {
        let d = self.check(key)?;
        if !d.allowed {
            return Err(Error::RateLimited {
                limiter: self.name.to_string(),
                key: key.to_owned(),
                retry_after: d.retry_after,
            });
        }
        Ok(d)
    }

    /// Spends `n` cells at once (weighted request), all or nothing. `n = 0` is a
    /// [`peek`](Self::peek); `n` above the burst fails with [`Error::InvalidQuota`](crate::Error::InvalidQuota), since it
    /// could never be allowed.
    pub fn check_n(&self, key: &str, n: u32) -> Result<Decision> {
        self.check_with(key, n, &self.quota)
    }

    /// Whether a check of one cell would be allowed now, and how many cells are available
    /// (`remaining`), consuming nothing and writing nothing.
    pub fn peek(&self, key: &str) -> Result<Decision> {
        self.check_with(key, 0, &self.quota)
    }

    /// Spends `n` cells of `key` under a per-call `quota` (for keys with their own limits,
    /// e.g. per plan). The key's state is its TAT alone, so quotas may differ between calls.
    pub fn check_with(&self, key: &str, n: u32, quota: &Quota) -> Result<Decision> {
        self.store.check_key(key)?;
        quota.validate_cost(n)?;
        let inner = &self.store.inner;
        let clock_ns = inner.options.clock.now_unix_ns();
        let mut st = inner.ratelimits.lock();
        let now = st.observe(clock_ns);
        let (decision, new_tat) = gcra::decide(quota, st.tat(&self.name, key), now, n);
        let Some(tat_unix_ns) = new_tat else { return Ok(decision) };
        let body =
            RateLimitRecord { now_unix_ns: now, tat_unix_ns, limiter: &self.name, key }.encode();
        // Enqueued under our lock, so LSN order is the order of TAT updates.
        let ticket = self.store.append_record(RecordKind::RateLimit, body)?;
        st.note_record(ticket.lsn, now);
        st.set(&self.name, key, tat_unix_ns, now);
        drop(st);
        self.store.wait_for(ticket, self.durability)?;
        Ok(decision)
    }
}
