//! Record framing: a header and a body, checksummed with the file's salt.
//!
//! Version 2 (written now): a 44-byte header whose last 16 bytes are the durable watermark.
//! Version 1 (read only): the first 28 bytes of that header. The file's header names the version.

use std::fmt;

use super::{le_u32, le_u64};
use crate::limits::MAX_RECORD_BODY_BYTES;

const BODY_LEN_OFFSET: usize = 0;
const CRC_OFFSET: usize = BODY_LEN_OFFSET + size_of::<u32>();
const LSN_OFFSET: usize = CRC_OFFSET + size_of::<u32>();
const TIMESTAMP_OFFSET: usize = LSN_OFFSET + size_of::<u64>();
const KIND_OFFSET: usize = TIMESTAMP_OFFSET + size_of::<u64>();
const FLAGS_OFFSET: usize = KIND_OFFSET + size_of::<u8>();
const RESERVED_OFFSET: usize = FLAGS_OFFSET + size_of::<u8>();
/// Length of a version-1 record header in bytes.
pub const RECORD_HEADER_LEN_V1: usize = RESERVED_OFFSET + size_of::<u16>();
const DURABLE_EPOCH_OFFSET: usize = RECORD_HEADER_LEN_V1;
const DURABLE_LSN_OFFSET: usize = DURABLE_EPOCH_OFFSET + size_of::<u64>();
/// Length of a record header in bytes (version 2, written now); the body follows it.
pub const RECORD_HEADER_LEN: usize = DURABLE_LSN_OFFSET + size_of::<u64>();

const _: () = assert!(RECORD_HEADER_LEN_V1 == 28);
const _: () = assert!(RECORD_HEADER_LEN == 44);

/// What a record's body holds: the one kind table of format version 2 (`docs/FORMAT.md`).
/// New kinds are added here, never by a new format version: state kinds count up from 1,
/// log-control kinds (which change no state) from [`RecordKind::FIRST_CONTROL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// Document operations committed together (a single put is a batch of one).
    Batch = 1,
    /// Rate-limiter state for one key.
    RateLimit = 2,
    /// Circuit-breaker state.
    Breaker = 3,
    /// A collection's version floor (`format/floor.rs`): written into snapshots, where the
    /// deletes that raised it are gone. (Kinds 4 to 6 are taken by the limiter and breaker
    /// state of format version 2.)
    VersionFloor = 7,
    /// A clean close: the last record of its segment, naming the last record of the log as
    /// durable. It does not consume its LSN and changes no state.
    Close = 0x80,
}

impl RecordKind {
    /// The first log-control kind: kinds from here on change no state.
    pub const FIRST_CONTROL: u8 = 0x80;

    /// Every kind, in table order.
    pub const ALL: [RecordKind; 5] = [
        RecordKind::Batch,
        RecordKind::RateLimit,
        RecordKind::Breaker,
        RecordKind::VersionFloor,
        RecordKind::Close,
    ];

    /// The kind for an on-disk byte, if known.
    pub fn from_u8(b: u8) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| *k as u8 == b)
    }

    /// A short lowercase name, as `walinspect` prints it.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Batch => "batch",
            RecordKind::RateLimit => "ratelimit",
            RecordKind::Breaker => "breaker",
            RecordKind::VersionFloor => "floor",
            RecordKind::Close => "close",
        }
    }
}

/// The frame layout of a file, named by its header's format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameFormat {
    /// Format version 1: 28-byte headers without a watermark (read only).
    V1,
    /// Format version 2: 44-byte headers with the durable watermark.
    V2,
}

impl FrameFormat {
    /// The layout of format version `version`, if this build reads it.
    pub fn of_version(version: u16) -> Option<FrameFormat> {
        match version {
            1 => Some(FrameFormat::V1),
            2 => Some(FrameFormat::V2),
            _ => None,
        }
    }

    /// The format version number.
    pub fn version(self) -> u16 {
        match self {
            FrameFormat::V1 => 1,
            FrameFormat::V2 => 2,
        }
    }

    /// Length of a record header in this layout.
    pub fn header_len(self) -> usize {
        match self {
            FrameFormat::V1 => RECORD_HEADER_LEN_V1,
            FrameFormat::V2 => RECORD_HEADER_LEN,
        }
    }
}

/// The durable watermark a record carries: the `(epoch, LSN)` of the last record known durable
/// when it was written. `Watermark::NONE` claims nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Watermark {
    /// Epoch of the segment holding the record `lsn`.
    pub epoch: u64,
    /// Every record up to this LSN was durable (0: none).
    pub lsn: u64,
}

impl Watermark {
    /// No claim (version-1 records, snapshot entries, a store with nothing durable yet).
    pub const NONE: Watermark = Watermark { epoch: 0, lsn: 0 };

    /// Whether this watermark proves the record `lsn` of a segment of epoch `epoch` durable.
    pub fn covers(&self, epoch: u64, lsn: u64) -> bool {
        self.epoch >= epoch && self.lsn >= lsn
    }
}

impl fmt::Display for Watermark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LSN {} of epoch {}", self.lsn, self.epoch)
    }
}

/// One verified record, borrowed from the buffer it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Log sequence number; consecutive across the whole log.
    pub lsn: u64,
    /// Wall-clock time of the commit, nanoseconds since the Unix epoch.
    pub timestamp_unix_ns: u64,
    /// The raw kind byte (see [`RecordKind::from_u8`]).
    pub kind: u8,
    /// The durable watermark ([`Watermark::NONE`] in version 1).
    pub watermark: Watermark,
    /// The body bytes.
    pub body: &'a [u8],
    /// Total length on disk: header plus body.
    pub len: usize,
}

/// Why the bytes at an offset are not a valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes remain than the header or the body needs (a write cut short).
    Truncated {
        /// Bytes the record needs.
        needed: usize,
        /// Bytes left in the file.
        available: usize,
    },
    /// The length field exceeds [`MAX_RECORD_BODY_BYTES`].
    TooLong {
        /// The length found.
        body_len: u32,
    },
    /// The checksum does not match.
    Checksum {
        /// Checksum stored in the record.
        stored: u32,
        /// Checksum computed over the record with this segment's salt.
        computed: u32,
    },
    /// Flags or reserved bytes are not zero.
    Reserved,
    /// The watermark claims the record itself (or a later one) was durable before it was
    /// written.
    Watermark {
        /// The record's LSN.
        lsn: u64,
        /// The watermark's LSN.
        durable_lsn: u64,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Truncated { needed, available } => {
                write!(f, "record truncated: needs {needed} bytes, {available} remain")
            }
            FrameError::TooLong { body_len } => {
                write!(f, "record length {body_len} exceeds the limit of {MAX_RECORD_BODY_BYTES}")
            }
            FrameError::Checksum { stored, computed } => write!(
                f,
                "record checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            FrameError::Reserved => write!(f, "record flags or reserved bytes are not zero"),
            FrameError::Watermark { lsn, durable_lsn } => {
                write!(f, "record LSN {lsn} claims LSN {durable_lsn} durable before it")
            }
        }
    }
}

fn checksum(salt: u32, frame: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(salt);
    h.update(&frame[BODY_LEN_OFFSET..CRC_OFFSET]);
    h.update(&frame[LSN_OFFSET..]);
    h.finalize()
}

/// Appends one framed record (format version 2) claiming nothing durable: snapshot entries.
///
/// # Panics
/// If `body` is longer than [`MAX_RECORD_BODY_BYTES`] (see [`encode_frame_with`]).
pub fn encode_frame(
    out: &mut Vec<u8>,
    salt: u32,
    lsn: u64,
    timestamp_unix_ns: u64,
    kind: RecordKind,
    body: &[u8],
) {
    encode_frame_with(out, salt, lsn, timestamp_unix_ns, kind, Watermark::NONE, body);
}

/// Appends one framed record (format version 2) carrying `watermark`.
///
/// # Panics
/// If `body` is longer than [`MAX_RECORD_BODY_BYTES`] or the watermark is not below `lsn`:
/// callers check sizes first and return [`Error::TooLarge`](crate::Error::TooLarge), and the
/// log only names records it has made durable, so reaching this is a bug in walden.
pub fn encode_frame_with(
    out: &mut Vec<u8>,
    salt: u32,
    lsn: u64,
    timestamp_unix_ns: u64,
    kind: RecordKind,
    watermark: Watermark,
    body: &[u8],
) {
    assert!(body.len() <= MAX_RECORD_BODY_BYTES, "record body over the limit");
    assert!(watermark.lsn < lsn, "a watermark names only earlier records");
    let start = out.len();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&timestamp_unix_ns.to_le_bytes());
    out.push(kind as u8);
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&watermark.epoch.to_le_bytes());
    out.extend_from_slice(&watermark.lsn.to_le_bytes());
    out.extend_from_slice(body);
    let crc = checksum(salt, &out[start..]);
    out[start + CRC_OFFSET..start + LSN_OFFSET].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes and verifies the format-version-2 record at the start of `buf` (which runs to the
/// end of the file).
pub fn decode_frame(buf: &[u8], salt: u32) -> Result<Frame<'_>, FrameError> {
    decode_frame_as(buf, salt, FrameFormat::V2)
}

/// Decodes and verifies the record at the start of `buf` in the layout `format`.
pub fn decode_frame_as(
    buf: &[u8],
    salt: u32,
    format: FrameFormat,
) -> Result<Frame<'_>, FrameError> {
    let header_len = format.header_len();
    if buf.len() < header_len {
        return Err(FrameError::Truncated { needed: header_len, available: buf.len() });
    }
    let body_len = le_u32(buf, BODY_LEN_OFFSET);
    if body_len as usize > MAX_RECORD_BODY_BYTES {
        return Err(FrameError::TooLong { body_len });
    }
    let len = header_len + body_len as usize;
    if buf.len() < len {
        return Err(FrameError::Truncated { needed: len, available: buf.len() });
    }
    let stored = le_u32(buf, CRC_OFFSET);
    let computed = checksum(salt, &buf[..len]);
    if stored != computed {
        return Err(FrameError::Checksum { stored, computed });
    }
    if buf[FLAGS_OFFSET] != 0 || buf[RESERVED_OFFSET] != 0 || buf[RESERVED_OFFSET + 1] != 0 {
        return Err(FrameError::Reserved);
    }
    let lsn = le_u64(buf, LSN_OFFSET);
    let watermark = match format {
        FrameFormat::V1 => Watermark::NONE,
        FrameFormat::V2 => Watermark {
            epoch: le_u64(buf, DURABLE_EPOCH_OFFSET),
            lsn: le_u64(buf, DURABLE_LSN_OFFSET),
        },
    };
    if watermark.lsn >= lsn && watermark != Watermark::NONE {
        return Err(FrameError::Watermark { lsn, durable_lsn: watermark.lsn });
    }
    Ok(Frame {
        lsn,
        timestamp_unix_ns: le_u64(buf, TIMESTAMP_OFFSET),
        kind: buf[KIND_OFFSET],
        watermark,
        body: &buf[header_len..len],
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trips_with_its_watermark() {
        let mut out = Vec::new();
        let w = Watermark { epoch: 3, lsn: 4 };
        encode_frame_with(&mut out, 99, 5, 6, RecordKind::Batch, w, b"hello");
        let f = decode_frame(&out, 99).unwrap();
        assert_eq!(
            (f.lsn, f.timestamp_unix_ns, f.kind, f.watermark, f.body, f.len),
            (5, 6, 1, w, &b"hello"[..], RECORD_HEADER_LEN + 5)
        );
    }

    #[test]
    fn a_version_1_frame_decodes_without_a_watermark() {
        // The version-1 layout: the first 28 header bytes, crc over 0..4 and 8..end.
        let mut out = Vec::new();
        out.extend_from_slice(&5u32.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&7u64.to_le_bytes());
        out.extend_from_slice(&8u64.to_le_bytes());
        out.extend_from_slice(&[RecordKind::Batch as u8, 0, 0, 0]);
        out.extend_from_slice(b"hello");
        let crc = checksum(42, &out);
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        let f = decode_frame_as(&out, 42, FrameFormat::V1).unwrap();
        assert_eq!((f.lsn, f.watermark, f.body, f.len), (7, Watermark::NONE, &b"hello"[..], 33));
        assert!(decode_frame(&out, 42).is_err(), "read as version 2 it does not verify");
    }

    #[test]
    fn wrong_salt_fails_the_checksum() {
        let mut out = Vec::new();
        encode_frame(&mut out, 1, 5, 6, RecordKind::Batch, b"x");
        assert!(matches!(decode_frame(&out, 2), Err(FrameError::Checksum { .. })));
    }

    #[test]
    fn every_bit_flip_and_every_truncation_is_detected() {
        let mut out = Vec::new();
        let w = Watermark { epoch: 1, lsn: 1 };
        encode_frame_with(&mut out, 7, 2, 2, RecordKind::Batch, w, b"{\"a\":1}");
        for bit in 0..out.len() * 8 {
            let mut b = out.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_frame(&b, 7).is_err(), "bit {bit} flip accepted");
        }
        for len in 0..out.len() {
            assert!(matches!(decode_frame(&out[..len], 7), Err(FrameError::Truncated { .. })));
        }
    }

    #[test]
    fn a_watermark_at_or_after_its_own_record_is_rejected() {
        let mut out = Vec::new();
        encode_frame_with(
            &mut out,
            7,
            9,
            0,
            RecordKind::Batch,
            Watermark { epoch: 1, lsn: 8 },
            b"",
        );
        // Rewrite the watermark's LSN to 9 and fix the checksum: verified, but impossible.
        out[DURABLE_LSN_OFFSET..DURABLE_LSN_OFFSET + 8].copy_from_slice(&9u64.to_le_bytes());
        let crc = checksum(7, &out);
        out[CRC_OFFSET..LSN_OFFSET].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_frame(&out, 7), Err(FrameError::Watermark { lsn: 9, durable_lsn: 9 }));
    }

    #[test]
    fn huge_length_is_rejected_without_allocating() {
        let mut b = vec![0xffu8; RECORD_HEADER_LEN];
        b[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_frame(&b, 0), Err(FrameError::TooLong { body_len: u32::MAX }));
    }

    #[test]
    fn the_kind_table_round_trips() {
        for k in RecordKind::ALL {
            assert_eq!(RecordKind::from_u8(k as u8), Some(k));
            let control = k == RecordKind::Close;
            assert_eq!(k as u8 >= RecordKind::FIRST_CONTROL, control, "{k:?}");
        }
        assert_eq!(RecordKind::from_u8(0), None);
    }

    #[test]
    fn a_watermark_covers_what_it_names_and_everything_before() {
        let w = Watermark { epoch: 2, lsn: 10 };
        assert!(w.covers(2, 10) && w.covers(1, 3));
        assert!(!w.covers(2, 11) && !w.covers(3, 5));
    }
}
