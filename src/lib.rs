//! walden: an embedded key/document store for application state that must never be lost.
//!
//! Documents are JSON, grouped in named collections, addressed by string keys, and versioned
//! (compare-and-set, conflicts as typed errors). Every mutation is appended to a CRC-framed
//! write-ahead log and acknowledged only once an fsync covering it has returned; concurrent
//! writers share fsyncs (group commit). Opening a store replays the log, cuts a torn tail and
//! refuses, naming file and offset, to open a log damaged anywhere else.
//!
//! See `docs/FORMAT.md` for the bytes on disk and `docs/ARCHITECTURE.md` for the life of a write.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use walden::{Error, Store};
//! let store = Store::open(dir.path())?;
//! let v = store.put("settings", "theme", &"dark")?;
//! match store.put_if_version("settings", "theme", &"light", v + 5) {
//!     Err(Error::Conflict { current, .. }) => assert_eq!(current, Some(v)),
//!     other => panic!("expected a conflict, got {other:?}"),
//! }
//! # Ok::<(), walden::Error>(())
//! ```

#![deny(missing_docs)]

pub mod api;
mod breaker;
mod clock;
mod error;
pub mod format;
pub mod io;
pub mod limits;
mod ratelimit;
pub mod snapshot;
mod state;
mod store;
pub mod wal;

pub use breaker::{
    Acquire, Backoff, BreakerConfig, BreakerCounts, BreakerHealth, CallError, CircuitBreaker,
    CircuitState, FailureRate, HalfOpenProgress, Lockout, LockoutConfig, LockoutStats, Permit,
    StateChange, TripPredicate, TripReason, MAX_BREAKER_WINDOW_CALLS, MAX_HALF_OPEN_PROBES,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, IoOp, LimitKind, PoisonCause, Result};
pub use limits::MAX_OBJECT_NAME_BYTES;
pub use ratelimit::{
    Decision, Quota, RateLimitStats, RateLimiter, ViolationHistory, MAX_QUOTA_WINDOW_NS,
};
pub use state::lockout::LockoutStatus;
pub use store::{
    prune_backups, BackupReport, Batch, CompactionReport, Durability, ImportMode, ImportReport,
    Options, RecoveryStats, Retention, Scan, Stats, Store, Validator, Versioned, BACKUP_DIR_PREFIX,
};

/// The README's examples, compiled as doctests so they cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
