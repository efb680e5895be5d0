//! Every limit walden enforces, in one place.
//!
//! Defaults can be changed through [`Options`](crate::Options) up to the hard limits here; the hard
//! limits follow from the width of the on-disk field that stores the value, and are checked against
//! those widths at compile time. A new limit goes here, named with its unit last.
//!
//! What is deliberately not here: the layout of the bytes on disk (offsets, lengths, magics and
//! format versions live beside their encoders in `format/`, and the 20 digits of a file name in
//! `format/files.rs`), and the number of buckets of the commit-latency histogram (a property of
//! the histogram, `wal/counters.rs`).

/// Default largest key, in bytes (`Options::max_key_bytes`).
pub const DEFAULT_MAX_KEY_BYTES: usize = 1024;
/// Hard upper bound for `Options::max_key_bytes`: keys are stored with a `u16` length.
pub const MAX_KEY_BYTES_LIMIT: usize = u16::MAX as usize;

/// Largest collection name, in bytes. Names are `[A-Za-z0-9_.-]`, non-empty.
pub const MAX_COLLECTION_NAME_BYTES: usize = 64;

/// Longest rate-limiter or circuit-breaker name, in bytes. Names are stored with a `u16`
/// length.
pub const MAX_OBJECT_NAME_BYTES: usize = 64;

/// Longest burst window `B·T` a rate-limit quota may span, in ns (about 146 years): keeps
/// every sum of a wall-clock time and a window far below `u64::MAX`.
pub const MAX_QUOTA_WINDOW_NS: u64 = 1 << 62;

/// Longest time a circuit breaker may stay open, in ns (the same bound as a quota window, for
/// the same reason: a deadline `now + open_duration` never comes near `u64::MAX`).
pub const MAX_BREAKER_OPEN_NS: u64 = MAX_QUOTA_WINDOW_NS;

/// Largest failure-rate window of a circuit breaker, in calls.
pub const MAX_BREAKER_WINDOW_CALLS: u32 = 100_000;

/// Most probes a half-open circuit breaker may admit at once.
pub const MAX_HALF_OPEN_PROBES: u32 = 1_000;

/// Resident rate-limit keys below which no automatic sweep of idle keys runs.
pub const MIN_SWEEP_KEYS: usize = 1024;

/// Bytes a snapshot writer buffers before one `write`.
pub const SNAPSHOT_WRITE_CHUNK_BYTES: usize = 1 << 20;

/// Above this capacity, in bytes, the log's group buffer is released after a write, so one
/// large group does not pin its memory for the life of the store.
pub const MAX_RETAINED_GROUP_BUF_BYTES: usize = 4 << 20;

/// How often an opener waiting for another opener's `LOCK` tries again, in ms.
pub const LOCK_POLL_INTERVAL_MS: u64 = 10;

/// Default largest document (its JSON encoding), in bytes (`Options::max_document_bytes`).
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 16 << 20;

/// Largest record body, in bytes, accepted on write and on read. A length field above this is
/// corruption, never an allocation request: a garbage length cannot make the reader allocate more.
pub const MAX_RECORD_BODY_BYTES: usize = 64 << 20;

/// Most operations one batch record may carry.
pub const MAX_BATCH_OPS: usize = 100_000;

/// Most record bytes one group commit writes with a single `write` call; a leader leaves the
/// rest of the queue to the next group. Bounds the leader's buffer whatever the queue holds.
pub const MAX_GROUP_BYTES: usize = 8 << 20;

/// Default size at which the writer starts a new WAL segment, in bytes.
pub const DEFAULT_SEGMENT_TARGET_BYTES: u64 = 64 << 20;

/// Default log size before background compaction considers running (`Options`).
pub const DEFAULT_COMPACTION_MIN_WAL_BYTES: u64 = 64 << 20;

/// Default ratio of log bytes to snapshot bytes before background compaction runs.
pub const DEFAULT_COMPACTION_WAL_TO_SNAPSHOT_RATIO: f64 = 1.0;

/// Default interval at which the background compactor checks its thresholds.
pub const DEFAULT_COMPACTION_CHECK_INTERVAL_MS: u64 = 100;

/// Default interval at which the background flusher fsyncs `Durability::Buffered` writes.
pub const DEFAULT_BUFFERED_FLUSH_INTERVAL_MS: u64 = 100;

/// Longest interval of a background thread (`Options::buffered_flush_interval_ms`,
/// `Options::compaction_check_interval_ms`), in ms: one day. A longer flush interval would
/// make `Durability::Buffered` a promise of nothing.
pub const MAX_BACKGROUND_INTERVAL_MS: u64 = 24 * 60 * 60 * 1000;

/// Longest group-commit delay (`Options::max_commit_delay`), in ms. Every concurrent writer
/// may wait this long for its acknowledgement; a larger value is a hang, not a tuning.
pub const MAX_COMMIT_DELAY_MS: u64 = 1000;

/// Bytes of a batch body around one document that are not the document: the op count (4),
/// the op's fixed fields (op 1, collection length 1, key length 2, version 8, value length 4).
const BATCH_OP_FIXED_BYTES: usize = 4 + 1 + 1 + 2 + 8 + 4;

/// Hard upper bound for `Options::max_document_bytes`: a document of this size with the
/// longest key and collection name still fits one record.
pub const MAX_DOCUMENT_BYTES_LIMIT: usize =
    MAX_RECORD_BODY_BYTES - MAX_KEY_BYTES_LIMIT - MAX_COLLECTION_NAME_BYTES - BATCH_OP_FIXED_BYTES;

/// Most bytes scanned past a bad record while looking for a later valid one (resync). A tail
/// larger than this that holds no valid record is still a torn tail; the bound keeps the scan
/// cost fixed.
pub const MAX_RESYNC_SCAN_BYTES: usize = MAX_RECORD_BODY_BYTES + 4096;

// The document limit must fit in a record, and the record length in its u32 field.
const _: () = assert!(DEFAULT_MAX_DOCUMENT_BYTES <= MAX_DOCUMENT_BYTES_LIMIT);
const _: () = assert!(MAX_RECORD_BODY_BYTES <= u32::MAX as usize);
const _: () = assert!(DEFAULT_MAX_KEY_BYTES <= MAX_KEY_BYTES_LIMIT);
const _: () = assert!(MAX_COLLECTION_NAME_BYTES <= u8::MAX as usize);
const _: () = assert!(MAX_BATCH_OPS <= u32::MAX as usize);
const _: () = assert!(MAX_OBJECT_NAME_BYTES <= u16::MAX as usize);
const _: () = assert!(MAX_QUOTA_WINDOW_NS < u64::MAX / 2);

/// Most bytes a follower reads from a segment with one `pread` (a larger record is read whole).
pub const FOLLOWER_READ_CHUNK_BYTES: usize = 1 << 20;

/// How often a following [`Follower`](crate::Follower) polls the writer's durable position, in
/// microseconds, by default.
pub const DEFAULT_FOLLOW_POLL_INTERVAL_US: u64 = 1_000;

/// How many times one refresh re-lists the directory when compaction removes files under it
/// before it gives up until the next refresh.
pub const MAX_FOLLOWER_RELOAD_ATTEMPTS: u32 = 8;
