//! The generic cell rate algorithm: quotas, decisions and the pure arithmetic.
//!
//! With emission interval `T` (period ÷ count) and burst `B`, the whole state of a key is its
//! theoretical arrival time `TAT` (wall-clock ns). A check of cost `n` at time `now`:
//!
//! ```text
//! tat'    = max(TAT, now) + n·T
//! allowed ⇔ tat' − now ≤ B·T            (i.e. τ + T with τ = (B − 1)·T)
//! ```
//! and only an allowed check stores `TAT := tat'`.

use std::time::Duration;

use crate::error::{Error, Result};

pub use crate::limits::MAX_QUOTA_WINDOW_NS;

/// How many cells a key may spend, how fast they come back, and how many may be spent at once.
///
/// ```
/// use std::time::Duration;
/// use walden::Quota;
/// let q = Quota::per_minute(60).with_burst(10);
/// assert_eq!((q.interval(), q.burst()), (Duration::from_secs(1), 10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    interval_ns: u64,
    burst: u32,
}

impl Quota {
    /// `count` cells per `period`, all of which may be spent at once (burst = `count`).
    /// A zero `count` or a period shorter than `count` nanoseconds is rejected when used.
    pub fn per_period(count: u32, period: Duration) -> Quota {
        let period_ns = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        let interval_ns = period_ns.checked_div(u64::from(count)).unwrap_or(0);
        Quota { interval_ns, burst: count }
    }

    /// `count` cells per second, burst `count`.
    pub fn per_second(count: u32) -> Quota {
        Quota::per_period(count, Duration::from_secs(1))
    }

    /// `count` cells per minute, burst `count`.
    pub fn per_minute(count: u32) -> Quota {
        Quota::per_period(count, Duration::from_secs(60))
    }

    /// `count` cells per hour, burst `count`.
    pub fn per_hour(count: u32) -> Quota {
        Quota::per_period(count, Duration::from_secs(3600))
    }

    /// The same rate with a different burst: at most `burst` cells at once.
    pub fn with_burst(self, burst: u32) -> Quota {
        Quota { burst, ..self }
    }

    /// Time for one cell to come back (`T`).
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns)
    }

    /// Most cells that may be spent at once (`B`).
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Fails with [`Error::InvalidQuota`] unless the quota can admit anything at all.
    pub(crate) fn validate(&self) -> Result<()> {
        let reason = if self.burst == 0 {
            "burst (or count) is zero"
        } else if self.interval_ns == 0 {
            "interval is zero: count is zero or exceeds the period in nanoseconds"
        } else if self.window_ns() > u128::from(MAX_QUOTA_WINDOW_NS) {
            "burst × interval exceeds the longest supported window"
        } else {
            return Ok(());
        };
        Err(Error::InvalidQuota { reason })
    }

    /// [`validate`](Self::validate)s the quota and the cost `n` of one check against it: a
    /// cost above the burst could never be allowed.
    pub(crate) fn validate_cost(&self, n: u32) -> Result<()> {
        self.validate()?;
        if n > self.burst {
            return Err(Error::InvalidQuota { reason: "cost exceeds the burst: never allowed" });
        }
        Ok(())
    }

    fn window_ns(&self) -> u128 {
        u128::from(self.interval_ns) * u128::from(self.burst)
    }
}

/// The answer to a check: what an HTTP `RateLimit`/`Retry-After` header needs.
///
/// A denial is a `Decision` with `allowed: false`, not an error: `limiter.check(key)?;` lets
/// every request through. Read `allowed`, or use `RateLimiter::enforce`, which returns
/// `Err(Error::RateLimited { .. })` on a denial for code that wants `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a denied check is Ok(Decision { allowed: false, .. }): read `allowed`, or call `enforce` to get an Err on denial"]
pub struct Decision {
    /// Whether the request may proceed (its cells were consumed).
    pub allowed: bool,
    /// The burst `B`: most cells available at once.
    pub limit: u32,
    /// Cells still available right now, after this check.
    pub remaining: u32,
    /// When denied: how long until the same check would be allowed. Zero when allowed.
    pub retry_after: Duration,
    /// How long until the key is back to its full burst (idle).
    pub reset_after: Duration,
}

fn ns(d: u128) -> Duration {
    Duration::from_nanos(u64::try_from(d).unwrap_or(u64::MAX))
}

/// Decides a check of cost `n` (0 = peek: is one cell available, how many are) for a key whose stored TAT is `tat`
/// (0 when absent) at `now`. Returns the decision and, when cells were consumed, the new TAT.
///
/// The quota is valid and `n ≤ burst`. `now` is at most a few centuries past the epoch, so no
/// sum below overflows `u128`, and the new TAT (≤ now + window) fits `u64`.
pub(crate) fn decide(quota: &Quota, tat: u64, now: u64, n: u32) -> (Decision, Option<u64>) {
    let t = u128::from(quota.interval_ns);
    let window = quota.window_ns();
    let now_w = u128::from(now);
    let tat = u128::from(tat.max(now));
    let cost = u128::from(n.max(1));
    let new_tat = tat + cost * t;
    let limit_at = now_w + window;
    let cells = |from: u128| u32::try_from(limit_at.saturating_sub(from) / t).unwrap_or(u32::MAX);
    if new_tat <= limit_at {
        let consumed = n > 0;
        let after = if consumed { new_tat } else { tat };
        let d = Decision {
            allowed: true,
            limit: quota.burst,
            remaining: cells(after),
            retry_after: Duration::ZERO,
            reset_after: ns(after - now_w),
        };
        (d, consumed.then(|| u64::try_from(new_tat).unwrap_or(u64::MAX)))
    } else {
        let d = Decision {
            allowed: false,
            limit: quota.burst,
            remaining: cells(tat),
            retry_after: ns(new_tat - limit_at),
            reset_after: ns(tat - now_w),
        };
        (d, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn quota_builders_compute_interval_and_burst() {
        assert_eq!(Quota::per_second(4).interval(), Duration::from_millis(250));
        assert_eq!(Quota::per_hour(60).interval(), Duration::from_secs(60));
        assert_eq!(Quota::per_minute(6).with_burst(2).burst(), 2);
        assert!(Quota::per_second(0).validate().is_err());
        assert!(Quota::per_second(5).with_burst(0).validate().is_err());
        assert!(Quota::per_period(10, Duration::from_nanos(5)).validate().is_err());
        assert!(Quota::per_hour(1).with_burst(u32::MAX).validate().is_err());
        assert!(Quota::per_second(1).with_burst(u32::MAX).validate().is_ok());
    }

    #[test]
    fn burst_then_deny_with_exact_retry_after() {
        // 10 per minute: T = 6 s, burst 10.
        let q = Quota::per_minute(10);
        let now = 1_000 * S;
        let mut tat = 0;
        for i in 0..10 {
            let (d, new) = decide(&q, tat, now, 1);
            assert!(d.allowed, "check {i}");
            assert_eq!(d.remaining, 9 - i);
            tat = new.unwrap();
        }
        assert_eq!(tat, now + 60 * S);
        let (d, new) = decide(&q, tat, now, 1);
        assert_eq!((d.allowed, new, d.remaining), (false, None, 0));
        assert_eq!(d.retry_after, Duration::from_secs(6));
        assert_eq!(d.reset_after, Duration::from_secs(60));
        // 6 s later exactly one cell is back.
        let (d, new) = decide(&q, tat, now + 6 * S, 1);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(new, Some(now + 66 * S));
    }

    #[test]
    fn weighted_checks_and_peeks() {
        let q = Quota::per_second(10); // T = 100 ms
        let now = 50 * S;
        let (d, tat) = decide(&q, 0, now, 7);
        assert_eq!((d.allowed, d.remaining), (true, 3));
        let tat = tat.unwrap();
        let (d, none) = decide(&q, tat, now, 4);
        assert_eq!((d.allowed, none, d.remaining), (false, None, 3));
        assert_eq!(d.retry_after, Duration::from_millis(100));
        // A peek reports whether one cell is available, and how many are, consuming nothing.
        let (d, none) = decide(&q, tat, now, 0);
        assert_eq!((d.allowed, none, d.remaining), (true, None, 3));
        assert_eq!(d.reset_after, Duration::from_millis(700));
    }

    #[test]
    fn idle_key_equals_fresh_key() {
        let q = Quota::per_second(2);
        let now = 10 * S;
        assert_eq!(decide(&q, now - 1, now, 1), decide(&q, 0, now, 1));
        assert_eq!(decide(&q, now, now, 1), decide(&q, 0, now, 1));
    }

    #[test]
    fn sustained_rate_matches_the_quota() {
        // One check every 10 ms for 10 s against 5/s burst 5: allowed = 5 + 10·5 (±1).
        let q = Quota::per_second(5);
        let (mut tat, mut allowed) = (0, 0);
        for i in 0..1_000u64 {
            let (d, new) = decide(&q, tat, S + i * 10_000_000, 1);
            if d.allowed {
                allowed += 1;
                tat = new.unwrap();
            }
        }
        assert!((54..=56).contains(&allowed), "allowed {allowed}");
    }
}
