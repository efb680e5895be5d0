//! The bytes on disk, and nothing else: no I/O, no locks.
//!
//! Every structure here has a magic or a kind, a format version and a checksum. The layout is
//! documented byte by byte in `docs/FORMAT.md`; this module is its only implementation, used by the
//! store's recovery and by `walinspect` alike.

mod batch;
pub(crate) mod body;
pub mod breaker;
mod bytes;
mod corruption;
mod durable;
pub mod files;
pub mod floor;
mod identity;
pub mod ratelimit;
mod record;
mod segment;
mod snapshot;

pub use batch::{
    batch_op_encoded_len, batch_ops, decode_batch, encode_batch_op, BatchOp, BatchOpKind, BatchOps,
    BATCH_COUNT_BYTES, BATCH_OP_DELETE, BATCH_OP_PUT,
};
pub use durable::{DurableMark, DURABLE_FORMAT_VERSION, DURABLE_LEN, DURABLE_MAGIC};
pub use files::{
    parse_segment_file_name, parse_snapshot_file_name, segment_file_name, snapshot_file_name,
};
pub use identity::{StoreIdentity, IDENTITY_LEN, IDENTITY_MAGIC};
pub use record::{
    decode_frame, decode_frame_as, encode_frame, encode_frame_with, Frame, FrameError, FrameFormat,
    RecordKind, Watermark, RECORD_HEADER_LEN, RECORD_HEADER_LEN_V1,
};
pub use segment::{
    segment_salt, SegmentHeader, SEGMENT_FORMAT_VERSION, SEGMENT_HEADER_LEN, SEGMENT_MAGIC,
};
pub use snapshot::{
    snapshot_salt, SnapshotFooter, SnapshotHeader, SNAPSHOT_FOOTER_LEN, SNAPSHOT_FOOTER_MAGIC,
    SNAPSHOT_FORMAT_VERSION, SNAPSHOT_HEADER_LEN, SNAPSHOT_MAGIC,
};

pub(crate) use bytes::{le_u16, le_u32, le_u64};
pub use corruption::{CorruptionKind, DurabilityProof};
