//! The write-ahead log: segment files in `<store>/wal/`.
//!
//! [`reader`] walks and classifies the log (shared by recovery and `walinspect`); the writer
//! appends with group commit; recovery acts on the reader's verdict (the only code that
//! truncates).

pub mod reader;
pub(crate) mod recovery;
pub(crate) mod writer;

pub use reader::{
    find_next_valid, list_segment_files, scan_log, walk_segment_lenient, LenientItem,
    LogCorruption, LogScan, LogVerdict, RecordRef, SegmentInput, SegmentSummary, TornTail,
};

/// Name of the log directory inside a store.
pub const WAL_DIR: &str = "wal";
