//! How a store is opened: [`Options`] and their defaults.

use std::sync::Arc;
use std::time::Duration;

#[cfg(doc)]
use super::Batch;
use crate::clock::{Clock, SystemClock};
use crate::io::{Io, RealIo};
use crate::limits::{
    DEFAULT_BUFFERED_FLUSH_INTERVAL_MS, DEFAULT_COMPACTION_CHECK_INTERVAL_MS,
    DEFAULT_COMPACTION_MIN_WAL_BYTES, DEFAULT_COMPACTION_WAL_TO_SNAPSHOT_RATIO,
    DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_MAX_KEY_BYTES, DEFAULT_SEGMENT_TARGET_BYTES,
};
#[cfg(doc)]
use crate::limits::{MAX_KEY_BYTES_LIMIT, MAX_RECORD_BODY_BYTES};
use crate::wal::Durability;

/// A validator: `Err(message)` rejects a document before anything is logged.
pub type Validator =
    Arc<dyn Fn(&serde_json::Value) -> std::result::Result<(), String> + Send + Sync>;

/// How a store is opened. Start from [`Options::default`] and change the fields you need.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use std::time::Duration;
/// use walden::{Durability, Options, Store};
/// let options = Options {
///     // Acknowledge once the OS has the bytes; fsync every 50 ms in the background.
///     durability: Durability::Buffered,
///     buffered_flush_interval_ms: 50,
///     // Wait up to 5 s for a previous process to release the store.
///     lock_timeout: Some(Duration::from_secs(5)),
///     max_document_bytes: 1 << 20,
///     ..Options::default()
/// };
/// let store = Store::open_with(dir.path(), options)?;
/// store.put("jobs", "nightly", &"queued")?;
/// store.sync()?; // make the buffered write durable now
/// # Ok::<(), walden::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    /// Default durability of writes (a [`Batch`] may override it).
    pub durability: Durability,
    /// Largest key, in bytes (at most [`MAX_KEY_BYTES_LIMIT`]).
    pub max_key_bytes: usize,
    /// Largest document (its JSON), in bytes (below [`MAX_RECORD_BODY_BYTES`]).
    pub max_document_bytes: usize,
    /// Size at which the log moves on to a new segment file.
    pub segment_target_bytes: u64,
    /// How often the background flusher fsyncs `Buffered` writes, in milliseconds.
    pub buffered_flush_interval_ms: u64,
    /// How long `open` waits for another opener to release the lock; `None` fails at once.
    pub lock_timeout: Option<Duration>,
    /// The file-system seam (replace it to inject faults in tests).
    pub io: Arc<dyn Io>,
    /// The wall clock (replace it to control time in tests).
    pub clock: Arc<dyn Clock>,
    /// Whether a background thread compacts the log when it grows (see the two thresholds).
    pub auto_compact: bool,
    /// Background compaction waits until the log holds at least this many bytes...
    pub compaction_min_wal_bytes: u64,
    /// ...and at least this multiple of the newest snapshot's size.
    pub compaction_wal_to_snapshot_ratio: f64,
    /// How often the background compactor checks the two thresholds, in milliseconds.
    pub compaction_check_interval_ms: u64,
    /// Group commit: how long a leader waits, when other writers are active, before taking
    /// the queue, so more commits share one fsync. `None` (the default): no wait; groups form
    /// from whatever queued during the previous fsync. A single writer never waits.
    pub max_commit_delay: Option<Duration>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            durability: Durability::Immediate,
            max_key_bytes: DEFAULT_MAX_KEY_BYTES,
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
            segment_target_bytes: DEFAULT_SEGMENT_TARGET_BYTES,
            buffered_flush_interval_ms: DEFAULT_BUFFERED_FLUSH_INTERVAL_MS,
            lock_timeout: None,
            io: Arc::new(RealIo),
            clock: Arc::new(SystemClock),
            auto_compact: true,
            compaction_min_wal_bytes: DEFAULT_COMPACTION_MIN_WAL_BYTES,
            compaction_wal_to_snapshot_ratio: DEFAULT_COMPACTION_WAL_TO_SNAPSHOT_RATIO,
            compaction_check_interval_ms: DEFAULT_COMPACTION_CHECK_INTERVAL_MS,
            max_commit_delay: None,
        }
    }
}
