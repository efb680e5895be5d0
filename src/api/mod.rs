//! The interface an application codes against, whatever holds its state.
//!
//! An embedded [`Store`](crate::Store) keeps documents, rate limiters and circuit breakers for
//! one process. A service that runs as several processes or machines needs one place of truth
//! for them instead: the `walden-redis` crate keeps the same things in Redis. Both implement
//! the traits here, so an application written against them picks its backend by configuration
//! alone:
//!
//! - [`Documents`]: JSON documents with exact versions — reads, batches with version
//!   preconditions, scans in key order, counts, JSON export and import, validators. Its methods
//!   speak JSON text ([`RawValue`]) so the trait is object-safe; [`DocumentsExt`] adds the typed
//!   (`serde`) methods for every implementation, `dyn Documents` included.
//! - [`Limiter`]: a keyed GCRA rate limiter — `check`, `check_n`, `peek`, `reset`, answering
//!   with the same [`Decision`](crate::Decision) everywhere.
//! - [`Breaker`]: a circuit breaker — [`try_acquire`](Breaker::try_acquire) a [`CallPermit`],
//!   report the outcome through it; `state`, `health` and the manual overrides.
//! - [`Backend`]: all three from one connection, plus what an acknowledged write survives
//!   ([`Guarantees`]).
//!
//! Every method returns the one error type, [`crate::Error`]. Rules on names, keys and sizes
//! are the same code on every backend ([`rules`]), so bad input gets the same error wherever it
//! is sent.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use std::sync::Arc;
//! use walden::api::{Backend, DocumentsExt};
//! use walden::{Quota, Store};
//!
//! // What configuration decides; a Redis backend is one more arm of this match.
//! fn open_backend(path: &std::path::Path) -> walden::Result<Arc<dyn Backend>> {
//!     Ok(Arc::new(Store::open(path)?))
//! }
//!
//! let backend = open_backend(dir.path())?;
//! let v = backend.put("settings", "theme", &"dark")?;
//! assert_eq!(backend.get::<String>("settings", "theme")?.unwrap().version, v);
//! let login = backend.rate_limiter("login", Quota::per_minute(3))?;
//! assert!(login.check("ip:10.0.0.1")?.allowed);
//! # Ok::<(), walden::Error>(())
//! ```

mod documents;
mod embedded;
mod handles;
mod import;
pub mod rules;

pub use documents::{
    copy_all, copy_collection, Attempt, CasStep, Documents, DocumentsExt, KeyRange, RawDoc,
    COPY_BATCH_DOCUMENTS,
};
pub use handles::{Admission, Breaker, CallPermit, Limiter, PermitBackend};
pub use import::{import_chunk_len, parse_import_object};
pub use rules::{gcra_decide, Operation, OperationKind, Precondition, Rules, Validators};

use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::{BreakerConfig, Quota};

pub use serde_json::value::RawValue;

/// What a write the backend acknowledged survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteGuarantee {
    /// On stable storage before it was acknowledged: survives a crash of the process or of the
    /// backend's server, and a power loss.
    Fsynced,
    /// Handed to the OS before it was acknowledged and fsynced within `interval`: survives a
    /// process crash; a power loss or kernel crash may lose the last `interval` of writes.
    FsyncedWithin {
        /// Longest time between an acknowledgement and the fsync that covers it.
        interval: Duration,
    },
    /// Handed to the OS, fsynced whenever the OS decides: survives a crash of the server
    /// process, not a power loss.
    OsBuffered,
    /// Kept in the server's memory only (periodic snapshots at best): a crash of the server
    /// loses writes.
    Memory,
}

/// What a backend promises for the writes it acknowledges, as read from its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guarantees {
    /// Which backend: `"embedded"` or `"redis"`.
    pub backend: &'static str,
    /// What an acknowledged write survives on the primary.
    pub write: WriteGuarantee,
    /// Replicas that acknowledged each write before it was acknowledged to the caller (Redis
    /// `WAIT`); 0 for the embedded store.
    pub replicas: u32,
    /// The backend's own words for the settings behind this (e.g. `appendfsync always`).
    pub detail: String,
}

/// Documents, rate limiters and circuit breakers from one place: what an application holds as
/// `Arc<dyn Backend>` and opens from its configuration.
///
/// Implemented by [`Store`](crate::Store) (one process) and by `walden_redis::RedisBackend`
/// (any number of processes and machines).
pub trait Backend: Documents {
    /// The rate limiter `name` with a default `quota`. Every handle with the same name on the
    /// same backend shares its keys' state.
    fn rate_limiter(&self, name: &str, quota: Quota) -> Result<Arc<dyn Limiter>>;

    /// The circuit breaker `name` with `config`. Every handle with the same name on the same
    /// backend shares its state: a trip seen by one is seen by all.
    fn breaker(&self, name: &str, config: BreakerConfig) -> Result<Arc<dyn Breaker>>;

    /// What an acknowledged write survives with this backend as configured.
    fn guarantees(&self) -> Guarantees;

    /// Makes every write acknowledged so far as durable as the backend can (the embedded
    /// store fsyncs its `Buffered` writes; Redis has already done what its `appendfsync`
    /// setting does before acknowledging, so it only checks the connection).
    fn sync(&self) -> Result<()>;
}
