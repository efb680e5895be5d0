//! How a store is opened: [`Options`] and their defaults.

use std::sync::Arc;
use std::time::Duration;

#[cfg(doc)]
use super::Batch;
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::io::{GroupReadableIo, Io, RealIo};
use crate::limits::{
    DEFAULT_BUFFERED_FLUSH_INTERVAL_MS, DEFAULT_COMPACTION_CHECK_INTERVAL_MS,
    DEFAULT_COMPACTION_MIN_WAL_BYTES, DEFAULT_COMPACTION_WAL_TO_SNAPSHOT_RATIO,
    DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_MAX_KEY_BYTES, DEFAULT_SEGMENT_TARGET_BYTES,
};
use crate::limits::{
    MAX_BACKGROUND_INTERVAL_MS, MAX_COMMIT_DELAY_MS, MAX_DOCUMENT_BYTES_LIMIT, MAX_KEY_BYTES_LIMIT,
};
use crate::wal::Durability;

/// A validator: `Err(message)` rejects a document before anything is logged.
pub type Validator =
    Arc<dyn Fn(&serde_json::Value) -> std::result::Result<(), String> + Send + Sync>;

/// How a store is opened. Start from [`Options::default`] and change the fields you need.
/// Every field is checked when the store opens: a value outside its documented range is
/// [`Error::InvalidOption`] naming the field and the range, never clamped.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use std::time::Duration;
/// use walden::{Durability, Error, Options, Store};
/// let options = Options {
///     // Acknowledge once the OS has the bytes; fsync every 50 ms in the background.
///     durability: Durability::Buffered,
///     buffered_flush_interval_ms: 50,
///     // Wait up to 5 s for a previous process to release the store.
///     lock_timeout: Some(Duration::from_secs(5)),
///     max_document_bytes: 1 << 20,
///     ..Options::default()
/// };
/// let store = Store::open_with(dir.path(), options.clone())?;
/// store.put("jobs", "nightly", &"queued")?;
/// store.sync()?; // make the buffered write durable now
/// store.close()?;
///
/// let zero = Options { segment_target_bytes: 0, ..options };
/// match Store::open_with(dir.path(), zero) {
///     Err(Error::InvalidOption { field, .. }) => assert_eq!(field, "segment_target_bytes"),
///     other => panic!("expected InvalidOption, got {other:?}"),
/// }
/// # Ok::<(), walden::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    /// Default durability of writes (a [`Batch`] may override it).
    pub durability: Durability,
    /// Largest key, in bytes: 1 to [`MAX_KEY_BYTES_LIMIT`].
    pub max_key_bytes: usize,
    /// Largest document (its JSON), in bytes: 1 to [`MAX_DOCUMENT_BYTES_LIMIT`].
    pub max_document_bytes: usize,
    /// Size at which the log moves on to a new segment file, in bytes: at least 1.
    pub segment_target_bytes: u64,
    /// How often the background flusher fsyncs `Buffered` writes, in milliseconds: 1 to
    /// [`MAX_BACKGROUND_INTERVAL_MS`].
    pub buffered_flush_interval_ms: u64,
    /// How long `open` waits for another opener to release the lock; `None` fails at once.
    /// Any duration is accepted; one too long to add to the current time (such as
    /// `Duration::MAX`) waits forever.
    pub lock_timeout: Option<Duration>,
    /// The file-system seam (replace it to inject faults in tests).
    pub io: Arc<dyn Io>,
    /// The wall clock (replace it to control time in tests).
    pub clock: Arc<dyn Clock>,
    /// Whether a background thread compacts the log when it grows (see the two thresholds).
    pub auto_compact: bool,
    /// Background compaction waits until the log holds at least this many bytes...
    pub compaction_min_wal_bytes: u64,
    /// ...and at least this multiple of the newest snapshot's size: a finite number ≥ 0.
    pub compaction_wal_to_snapshot_ratio: f64,
    /// How often the background compactor checks the two thresholds, in milliseconds: 1 to
    /// [`MAX_BACKGROUND_INTERVAL_MS`].
    pub compaction_check_interval_ms: u64,
    /// Group commit: how long a leader waits, when other writers are active, before taking
    /// the queue, so more commits share one fsync. `None` (the default): no wait; groups form
    /// from whatever queued during the previous fsync. A single writer never waits. At most
    /// [`MAX_COMMIT_DELAY_MS`].
    pub max_commit_delay: Option<Duration>,
    /// Create directories 0750 and files 0640 (instead of 0700 and 0600), so other users of
    /// the store's group can follow it read-only ([`Follower`](crate::Follower)). Off by default.
    pub group_readable: bool,
}

impl Options {
    /// Checks every field against its documented range (`Store::open_with` does this first).
    pub fn validate(&self) -> Result<()> {
        fn range<T: PartialOrd + std::fmt::Debug>(
            field: &'static str,
            value: T,
            min: T,
            max: T,
            unit: &str,
        ) -> Result<()> {
            if value < min || value > max {
                return Err(Error::InvalidOption {
                    field,
                    value: format!("{value:?}"),
                    accepted: format!("{min:?} to {max:?} {unit}"),
                });
            }
            Ok(())
        }
        range("max_key_bytes", self.max_key_bytes, 1, MAX_KEY_BYTES_LIMIT, "bytes")?;
        range("max_document_bytes", self.max_document_bytes, 1, MAX_DOCUMENT_BYTES_LIMIT, "bytes")?;
        range("segment_target_bytes", self.segment_target_bytes, 1, u64::MAX, "bytes")?;
        let interval = MAX_BACKGROUND_INTERVAL_MS;
        range("buffered_flush_interval_ms", self.buffered_flush_interval_ms, 1, interval, "ms")?;
        range(
            "compaction_check_interval_ms",
            self.compaction_check_interval_ms,
            1,
            interval,
            "ms",
        )?;
        let ratio = self.compaction_wal_to_snapshot_ratio;
        if !ratio.is_finite() || ratio < 0.0 {
            return Err(Error::InvalidOption {
                field: "compaction_wal_to_snapshot_ratio",
                value: format!("{ratio:?}"),
                accepted: "a finite number, 0.0 or more".into(),
            });
        }
        if let Some(delay) = self.max_commit_delay {
            let max = Duration::from_millis(MAX_COMMIT_DELAY_MS);
            range("max_commit_delay", delay, Duration::ZERO, max, "")?;
        }
        Ok(())
    }
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
            group_readable: false,
        }
    }
}

impl Options {
    /// The options an open works with: with [`Options::group_readable`], the seam wrapped so
    /// that what it creates is group-readable.
    pub(crate) fn with_group_mode(mut self) -> Options {
        if self.group_readable {
            self.io = Arc::new(GroupReadableIo(self.io.clone()));
        }
        self
    }
}
