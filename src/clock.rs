//! Wall-clock time, injectable so tests control it.
//!
//! walden persists wall-clock nanoseconds since the Unix epoch (record timestamps, rate-limit and
//! breaker deadlines), never `Instant`, whose origin means nothing after a restart.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time.
pub trait Clock: Send + Sync + Debug {
    /// Nanoseconds since the Unix epoch.
    fn now_unix_ns(&self) -> u64;
}

/// The system's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_ns(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos().min(u128::from(u64::MAX)) as u64)
    }
}

/// A clock that moves only when told to; clones share the same time.
///
/// ```
/// use walden::{Clock, ManualClock};
/// let clock = ManualClock::new(1_000);
/// clock.advance_ns(500);
/// assert_eq!(clock.now_unix_ns(), 1_500);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now_unix_ns: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading `now_unix_ns`.
    pub fn new(now_unix_ns: u64) -> ManualClock {
        ManualClock { now_unix_ns: Arc::new(AtomicU64::new(now_unix_ns)) }
    }

    /// Sets the time (it may go backwards, as a real clock can).
    pub fn set_ns(&self, now_unix_ns: u64) {
        self.now_unix_ns.store(now_unix_ns, Ordering::SeqCst);
    }

    /// Moves the time forward.
    pub fn advance_ns(&self, delta_ns: u64) {
        self.now_unix_ns.fetch_add(delta_ns, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix_ns(&self) -> u64 {
        self.now_unix_ns.load(Ordering::SeqCst)
    }
}
