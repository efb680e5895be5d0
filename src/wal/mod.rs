//! The write-ahead log: segment files in `<store>/wal/`.
//!
//! [`reader`] walks and classifies the log (shared by recovery and `walinspect`), judging
//! damage by the proofs of durability in `proof`; `commit`
//! queues records and group-commits them through the segment writer; recovery acts on the
//! reader's verdict (the only code that truncates). The log knows record kinds and bytes, never
//! what a record means: the layer above plugs in through `commit::CommitHook`.

pub(crate) mod commit;
pub(crate) mod committer;
pub(crate) mod completion;
pub(crate) mod counters;
pub(crate) mod durable_mark;
mod lead;
mod proof;
pub mod reader;
pub(crate) mod recovery;
mod resync;
pub(crate) mod segment_writer;

pub use commit::Durability;
pub use completion::Completion;
pub use reader::{
    find_next_valid, find_next_valid_as, list_segment_files, scan_log, walk_segment_lenient,
    LenientItem, LogCorruption, LogScan, LogVerdict, RecordRef, SegmentInput, SegmentSummary,
    TornTail,
};

pub use crate::format::files::WAL_DIR;
