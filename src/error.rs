//! The one error type of walden.
//!
//! Every condition a caller may want to act on is its own variant with typed fields; free text
//! appears only as a human explanation next to them (a validator's message, a body decode detail).

use std::fmt;
use std::io;
use std::path::PathBuf;

pub use crate::format::CorruptionKind;
use crate::io::IoError;
pub use crate::io::IoOp;
use crate::io::LockHolder;

/// Result alias with walden's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which name or value broke a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitKind {
    /// A document key.
    Key,
    /// A collection name.
    CollectionName,
    /// A document's JSON encoding.
    Document,
    /// A whole record (a batch's encoding).
    Record,
    /// The number of operations in a batch.
    BatchOps,
    /// A rate limiter's name.
    LimiterName,
    /// A circuit breaker's name.
    BreakerName,
}

impl LimitKind {
    /// The unit the limit is counted in: `"operations"` for [`LimitKind::BatchOps`], `"bytes"`
    /// for every other kind.
    pub fn unit(self) -> &'static str {
        match self {
            LimitKind::BatchOps => "operations",
            _ => "bytes",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::Key => "key",
            LimitKind::CollectionName => "collection name",
            LimitKind::Document => "document",
            LimitKind::Record => "record",
            LimitKind::BatchOps => "batch operation count",
            LimitKind::LimiterName => "rate limiter name",
            LimitKind::BreakerName => "circuit breaker name",
        })
    }
}

/// The write or fsync failure that poisoned a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoisonCause {
    /// What failed.
    pub op: IoOp,
    /// The file it failed on.
    pub path: PathBuf,
    /// The error kind the OS reported.
    pub kind: io::ErrorKind,
    /// The raw OS error number, if any (`EIO` = 5, `ENOSPC` = 28).
    pub raw_os_error: Option<i32>,
}

impl fmt::Display for PoisonCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} failed ({:?}", self.op, self.path.display(), self.kind)?;
        if let Some(code) = self.raw_os_error {
            write!(f, ", os error {code}")?;
        }
        write!(f, ")")
    }
}

/// Everything that can go wrong in walden.
///
/// Match on the variants you act on; show the others with `Display` (`{}`), which is written
/// for the person reading it (`Debug` is for bug reports).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use walden::{Error, LimitKind, Store};
/// let store = Store::open(dir.path())?;
/// store.insert("users", "ada", &"Ada")?;
/// match store.insert("users", "ada", &"Ada again") {
///     Err(Error::AlreadyExists { version, .. }) => assert_eq!(version, 1),
///     other => panic!("expected AlreadyExists, got {other:?}"),
/// }
/// let long_key = "k".repeat(5000);
/// match store.put("users", &long_key, &1) {
///     Err(e @ Error::TooLarge { what: LimitKind::Key, .. }) => {
///         assert_eq!(e.to_string(), "key is 5000 bytes, over the limit of 1024 bytes");
///     }
///     other => panic!("expected TooLarge, got {other:?}"),
/// }
/// # Ok::<(), walden::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another opener (this process or another) holds the store's `LOCK`.
    #[error("store {} is locked by another opener: {}", path.display(), holder_display(holder))]
    Locked {
        /// The store directory.
        path: PathBuf,
        /// Who holds it, as it wrote in `LOCK` (`None`: it has not yet, or is an older build).
        holder: Option<LockHolder>,
    },
    /// The directory exists, is not empty and is not a walden store (no `STORE`, or a `STORE`
    /// that is not walden's); nothing was created or written in it. An empty file system's
    /// `lost+found` alone does not count.
    #[error("{} is not a walden store: it holds {found}; open an empty or new directory", path.display())]
    NotAStore {
        /// The directory.
        path: PathBuf,
        /// What in it is not walden's (the first few names, or what is wrong with `STORE`).
        found: String,
    },
    /// Opening the store had to write (a torn tail's copy before cutting it, the identity of a
    /// new store, the segment this open appends to) and the file system is full. Nothing the
    /// store held was lost or changed; free space on that file system and open again. (Reading
    /// a store without writing anything is a read-only follower's job, not an open's.)
    #[error(
        "no space left on the file system of {}: opening the store needs space for {needed_for} ({op} {}); free space there and open again",
        dir.display(),
        path.display()
    )]
    NoSpaceAtOpen {
        /// The store directory.
        dir: PathBuf,
        /// The operation that failed with ENOSPC.
        op: IoOp,
        /// The file it failed on.
        path: PathBuf,
        /// What the open was writing.
        needed_for: &'static str,
    },
    /// The path given to open names no directory (it is empty); nothing was created.
    #[error("invalid store path {path:?}: {reason}")]
    InvalidPath {
        /// The path given.
        path: PathBuf,
        /// Why it cannot be a store directory.
        reason: &'static str,
    },
    /// A version precondition did not hold; nothing was written.
    #[error("version conflict on {collection}/{key}: expected {expected:?}, current {current:?}")]
    Conflict {
        /// Collection of the document.
        collection: String,
        /// Key of the document.
        key: String,
        /// The version the caller expected (`None`: expected absent).
        expected: Option<u64>,
        /// The version the document has (`None`: it does not exist).
        current: Option<u64>,
    },
    /// `insert` found a document under the key; nothing was written.
    #[error("{collection}/{key} already exists at version {version}")]
    AlreadyExists {
        /// Collection of the document.
        collection: String,
        /// Key of the document.
        key: String,
        /// Its current version.
        version: u64,
    },
    /// The collection's validator rejected the document; nothing was written.
    #[error("{collection}/{key} rejected by validator: {message}")]
    Invalid {
        /// Collection of the document.
        collection: String,
        /// Key of the document.
        key: String,
        /// The validator's explanation.
        message: String,
    },
    /// A key or collection name is empty or holds characters that are not allowed.
    #[error("invalid {what} {name:?}: {reason}")]
    InvalidName {
        /// Which kind of name.
        what: LimitKind,
        /// The offending name (lossy for display).
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A key, name, document or record is over its limit; nothing was written.
    #[error("{what} is {size} {unit}, over the limit of {limit} {unit}", unit = what.unit())]
    TooLarge {
        /// What was too large.
        what: LimitKind,
        /// Its size.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// An [`ImportMode::Atomic`](crate::ImportMode::Atomic) import does not fit in one batch;
    /// nothing was written. [`ImportMode::Chunked`](crate::ImportMode::Chunked) commits it in
    /// several batches.
    #[error(
        "an atomic import of {documents} documents is {size} {unit}, over the limit of {limit} \
         {unit} for one batch; nothing was written: import it with \
         ImportMode::Chunked {{ documents_per_batch }} to commit it in several batches",
        unit = what.unit()
    )]
    AtomicImportTooLarge {
        /// Documents in the input.
        documents: usize,
        /// Which limit it broke: [`LimitKind::BatchOps`] or [`LimitKind::Record`].
        what: LimitKind,
        /// The import's size, in the limit's unit ([`LimitKind::unit`]).
        size: usize,
        /// The limit, in the same unit.
        limit: usize,
    },
    /// An argument is outside the range it accepts; nothing was done.
    #[error("invalid {argument} {value}: {accepted}")]
    InvalidArgument {
        /// The argument, as its type and field (`ImportMode::Chunked::documents_per_batch`).
        argument: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        accepted: String,
    },
    /// A file on disk failed its checks. The store refuses to open rather than drop data.
    #[error("corruption in {file} at byte {offset}: {kind}")]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damage in that file.
        offset: u64,
        /// LSN of the last valid record before the damage, if any.
        last_good_lsn: Option<u64>,
        /// What is wrong.
        kind: CorruptionKind,
    },
    /// An earlier write or fsync failed; the store accepts no more writes (reads still work).
    /// Reopen it to replay the log. After a failed fsync the kernel may have dropped the dirty
    /// pages, so retrying could report success for data that is gone.
    #[error("store is poisoned: {cause}; reopen it")]
    Poisoned {
        /// The failure that poisoned the store.
        cause: PoisonCause,
    },
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: IoOp,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A document did not serialize to, or deserialize from, JSON.
    #[error("document {collection}/{key} does not convert to or from JSON: {source}")]
    Json {
        /// Collection of the document.
        collection: String,
        /// Key of the document.
        key: String,
        /// The serde_json error.
        #[source]
        source: serde_json::Error,
    },
    /// A document holds NaN or an infinity, which JSON cannot hold (serde_json would write
    /// `null`, and the document read back would not be the one written); nothing was written.
    #[error(
        "document {collection}/{key} holds a non-finite number (NaN or infinity) at {}: JSON cannot store it",
        pointer_display(path)
    )]
    NonFiniteNumber {
        /// Collection of the document.
        collection: String,
        /// Key of the document.
        key: String,
        /// Where, as a JSON Pointer (`/readings/3/celsius`); empty: the document itself.
        path: String,
    },
    /// A backup's destination directory exists and is not empty; nothing was written.
    #[error("backup destination {} is not empty", path.display())]
    DestinationNotEmpty {
        /// The destination.
        path: PathBuf,
    },
    /// Input to an import is not valid JSON (or not of the expected shape); nothing was written.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    InvalidJson {
        /// 1-based line of the error in the input.
        line: usize,
        /// 1-based column of the error in that line (0: the line as a whole).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The store was closed (through this handle or any clone of it); nothing was read or
    /// written. Open the directory again for a fresh handle.
    #[error("store is closed")]
    Closed,
    /// An [`Options`](crate::Options) field is outside the range walden accepts; the store
    /// was not opened and nothing was written. Nothing is ever clamped silently instead.
    #[error("invalid option {field} = {value}: accepted {accepted}")]
    InvalidOption {
        /// The `Options` field.
        field: &'static str,
        /// The value given, as `Debug` prints it.
        value: String,
        /// The accepted range, in the field's unit.
        accepted: String,
    },
    /// A rate-limit quota (or the cost of one check against it) can never be satisfied or
    /// does not fit the limiter's arithmetic; nothing was consumed or written.
    #[error("invalid rate-limit quota: {reason}")]
    InvalidQuota {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A rate-limit check was denied (from `RateLimiter::enforce`; `check` returns the denial
    /// as a `Decision` instead). Nothing was consumed or written.
    #[error("rate limited: {limiter}/{key}, retry after {retry_after:?}")]
    RateLimited {
        /// The limiter's name.
        limiter: String,
        /// The limited key.
        key: String,
        /// How long until the same check would be allowed.
        retry_after: std::time::Duration,
    },
    /// A circuit breaker's configuration is inconsistent; nothing was written.
    #[error("invalid circuit breaker configuration: {reason}")]
    InvalidBreakerConfig {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A remote backend (Redis) cannot be reached: connection refused or lost, or the server
    /// is loading or restarting. Whether a write sent just before the loss was applied is
    /// unknown; read it back (versions tell) before retrying a non-idempotent change.
    #[error("{backend} is unavailable: {message}")]
    Unavailable {
        /// Which backend (`"redis"`).
        backend: &'static str,
        /// What the client library reported.
        message: String,
    },
    /// A remote backend did not answer within the configured timeout. As with
    /// [`Error::Unavailable`], a write may or may not have been applied.
    #[error("{backend} did not answer within {timeout:?}")]
    Timeout {
        /// Which backend (`"redis"`).
        backend: &'static str,
        /// The timeout in force.
        timeout: std::time::Duration,
    },
    /// The backend is configured so that it cannot keep what the caller asked for (for Redis:
    /// `Durability::Immediate` without `appendfsync always`, or a `maxmemory-policy` that may
    /// evict keys). Refused at connect unless the caller opts out explicitly.
    #[error("{backend} cannot provide the requested durability: {reason}")]
    DurabilityUnavailable {
        /// Which backend (`"redis"`).
        backend: &'static str,
        /// The setting at fault and its value, e.g. `appendfsync everysec`.
        reason: String,
    },
    /// A batch's keys live on different Redis Cluster slots (different collections), so it
    /// cannot be applied atomically; nothing was written.
    #[error("batch spans collections {first} and {second}, which live on different cluster slots")]
    CrossSlot {
        /// A collection in the batch.
        first: String,
        /// Another collection in the batch, on another slot.
        second: String,
    },
    /// The backend answered with something walden did not expect (a script error, a reply of
    /// the wrong shape, data not written by walden under its keys). Nothing is assumed written.
    #[error("{backend} error: {message}")]
    Backend {
        /// Which backend (`"redis"`).
        backend: &'static str,
        /// The reply or the problem with it.
        message: String,
    },
}

fn holder_display(holder: &Option<LockHolder>) -> String {
    match holder {
        Some(h) => h.to_string(),
        None => "holder unknown (it has not written LOCK yet, or is an older build)".to_owned(),
    }
}

fn pointer_display(path: &str) -> String {
    if path.is_empty() {
        "the top level".to_owned()
    } else {
        format!("field {path}")
    }
}

impl Error {
    pub(crate) fn io(op: IoOp, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io { op, path: path.into(), source }
    }
}

impl From<IoError> for Error {
    fn from(e: IoError) -> Error {
        Error::Io { op: e.op, path: e.path, source: e.source }
    }
}

impl PoisonCause {
    /// The cause of a poisoning by a failed write-path step.
    pub(crate) fn from_step(e: &IoError) -> PoisonCause {
        PoisonCause {
            op: e.op,
            path: e.path.clone(),
            kind: e.source.kind(),
            raw_os_error: e.source.raw_os_error(),
        }
    }
}
