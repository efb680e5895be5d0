#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod api;
mod breaker;
mod clock;
mod error;
mod follower;
// Internal, public only for walinspect (it reads stores with the library's own parser): the
// on-disk format, snapshot files and the log reader. Hidden from the API docs; no stability
// promise. `CorruptionKind`, which `Error::Corruption` carries, is re-exported below.
#[doc(hidden)]
pub mod format;
pub mod io;
pub mod limits;
mod ratelimit;
#[doc(hidden)]
pub mod snapshot;
mod state;
mod store;
#[doc(hidden)]
pub mod wal;

pub use breaker::{
    Acquire, BreakerConfig, BreakerHealth, CircuitBreaker, CircuitState, FailureRate, Permit,
    MAX_BREAKER_WINDOW_CALLS, MAX_HALF_OPEN_PROBES,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{CorruptionKind, Error, IoOp, LimitKind, PoisonCause, Result};
pub use follower::{Follower, FollowerOptions, FollowerStats, LogTail, TailPoll};
pub use limits::MAX_OBJECT_NAME_BYTES;
pub use ratelimit::{Decision, Quota, RateLimitStats, RateLimiter, MAX_QUOTA_WINDOW_NS};
pub use store::{
    BackupReport, Batch, CommitStatus, CompactionReport, Completion, Durability, ImportMode,
    ImportReport, Options, RecoveryStats, Retention, Scan, Stats, Store, Submitted, Validator,
    Versioned, BACKUP_DIR_PREFIX,
};
