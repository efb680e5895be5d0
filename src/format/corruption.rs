//! Why a structure on disk was rejected.

use std::fmt;
use std::path::PathBuf;

use super::{FrameError, Watermark};

/// Why a structure on disk was rejected. Carried by [`Error::Corruption`](crate::Error::Corruption)
/// together with the file and byte offset.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// The file does not start with the expected magic bytes.
    BadMagic,
    /// The file was written by a format version this build does not read.
    UnsupportedVersion {
        /// The version found on disk.
        found: u32,
    },
    /// A header's checksum does not match its contents.
    HeaderChecksum {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed over the header.
        computed: u32,
    },
    /// A header is shorter than its fixed length.
    ShortHeader,
    /// A snapshot is too short to hold its footer after its header (cut short).
    ShortFooter,
    /// A snapshot footer's checksum does not match its contents.
    FooterChecksum {
        /// Checksum stored in the footer.
        stored: u32,
        /// Checksum computed over the footer.
        computed: u32,
    },
    /// A record failed its checks in a version-1 log that cannot tell whether it was durable,
    /// with records after it that an open cannot drop.
    BadRecord(FrameError),
    /// A record failed its checks although it was durable: damage in synced data, not a power
    /// cut. `proof` says what shows it was durable.
    DurableRecordDamaged {
        /// LSN the damaged record had to carry.
        lsn: u64,
        /// Why its bytes are not a valid record.
        error: FrameError,
        /// What shows it had been made durable (boxed: it names a file, and errors stay small).
        proof: Box<DurabilityProof>,
    },
    /// A valid record follows a close marker in its segment (walden writes nothing there).
    AfterClose {
        /// Offset of the close marker.
        close_offset: u64,
    },
    /// A record's body does not decode although its checksum matched (a writer bug or a future
    /// format).
    BadBody(String),
    /// The record kind is not one this build knows.
    UnknownRecordKind(u8),
    /// The LSN chain is broken: a record or segment does not carry the LSN that must come next.
    LsnGap {
        /// The LSN that had to come next.
        expected: u64,
        /// The LSN found.
        found: u64,
    },
    /// A segment number is missing from the sequence.
    MissingSegment {
        /// The segment number that is absent.
        segment_no: u64,
    },
    /// A segment's header names a different segment number than its file name.
    SegmentNumberMismatch {
        /// Number in the file name.
        expected: u64,
        /// Number in the header.
        found: u64,
    },
    /// A file belongs to another store (its store id differs).
    ForeignStore,
    /// A segment's epoch is older than the one before it.
    EpochRegression {
        /// Epoch of the previous segment.
        previous: u64,
        /// Epoch found.
        found: u64,
    },
    /// WAL segments exist but the store's identity file is missing.
    MissingIdentity,
    /// A file that must not be empty is.
    Empty,
}

impl fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptionKind::BadMagic => write!(f, "bad magic bytes"),
            CorruptionKind::UnsupportedVersion { found } => {
                write!(f, "unsupported format version {found}")
            }
            CorruptionKind::HeaderChecksum { stored, computed } => write!(
                f,
                "header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            CorruptionKind::ShortHeader => write!(f, "header is truncated"),
            CorruptionKind::ShortFooter => write!(f, "footer is missing or truncated"),
            CorruptionKind::FooterChecksum { stored, computed } => write!(
                f,
                "footer checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            CorruptionKind::BadRecord(e) => {
                write!(f, "bad record followed by records of later epochs (version-1 log): {e}")
            }
            CorruptionKind::DurableRecordDamaged { lsn, error, proof } => {
                write!(f, "record LSN {lsn} is damaged although it was durable ({error}): {proof}")
            }
            CorruptionKind::AfterClose { close_offset } => {
                write!(f, "a record follows the close marker at offset {close_offset}")
            }
            CorruptionKind::BadBody(why) => write!(f, "record body does not decode: {why}"),
            CorruptionKind::UnknownRecordKind(k) => write!(f, "unknown record kind {k}"),
            CorruptionKind::LsnGap { expected, found } => {
                write!(f, "LSN gap: expected {expected}, found {found}")
            }
            CorruptionKind::MissingSegment { segment_no } => {
                write!(f, "segment {segment_no} is missing")
            }
            CorruptionKind::SegmentNumberMismatch { expected, found } => {
                write!(f, "segment header says number {found}, file name says {expected}")
            }
            CorruptionKind::ForeignStore => write!(f, "file belongs to another store"),
            CorruptionKind::EpochRegression { previous, found } => {
                write!(f, "epoch went back from {previous} to {found}")
            }
            CorruptionKind::MissingIdentity => {
                write!(f, "WAL segments exist but the STORE identity file is missing")
            }
            CorruptionKind::Empty => write!(f, "file is empty"),
        }
    }
}

/// What shows that a damaged record had been made durable (see `docs/FORMAT.md`, the decision
/// table): only such a proof makes damage in the log corruption rather than an unsynced tail.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DurabilityProof {
    /// A valid record written later names the damaged one durable in its watermark (a close
    /// marker names the whole log).
    LaterRecord {
        /// The file holding it.
        file: PathBuf,
        /// Its byte offset.
        offset: u64,
        /// Its LSN.
        lsn: u64,
        /// Its watermark.
        watermark: Watermark,
    },
    /// A later segment exists: a segment is created only after the one before it was made
    /// durable (a roll fdatasyncs it; an open fdatasyncs what it replayed).
    LaterSegment {
        /// The later segment's file.
        file: PathBuf,
        /// Its number.
        segment_no: u64,
    },
}

impl fmt::Display for DurabilityProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurabilityProof::LaterRecord { file, offset, lsn, watermark } => write!(
                f,
                "record LSN {lsn} at {}:{offset} was written after {watermark} was durable",
                file.display()
            ),
            DurabilityProof::LaterSegment { file, segment_no } => write!(
                f,
                "segment {segment_no} ({}) was created after this one was made durable",
                file.display()
            ),
        }
    }
}
