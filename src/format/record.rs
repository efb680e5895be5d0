//! Record framing: a 28-byte header and a body, checksummed with the segment's salt.

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
/// Length of a record header in bytes; the body follows it.
pub const RECORD_HEADER_LEN: usize = RESERVED_OFFSET + size_of::<u16>();

const _: () = assert!(RECORD_HEADER_LEN == 28);

/// What a record's body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// Document operations committed together (a single put is a batch of one).
    Batch = 1,
    /// Rate-limiter state for one key.
    RateLimit = 2,
    /// Circuit-breaker state.
    Breaker = 3,
    /// A circuit breaker's closed-state counters (format version 2).
    BreakerCounts = 4,
    /// One lockout key's state (format version 2).
    Lockout = 5,
    /// One rate-limit key's violation history (format version 2).
    RateLimitViolations = 6,
}

impl RecordKind {
    /// The kind for an on-disk byte, if known.
    pub fn from_u8(b: u8) -> Option<RecordKind> {
        match b {
            1 => Some(RecordKind::Batch),
            2 => Some(RecordKind::RateLimit),
            3 => Some(RecordKind::Breaker),
            4 => Some(RecordKind::BreakerCounts),
            5 => Some(RecordKind::Lockout),
            6 => Some(RecordKind::RateLimitViolations),
            _ => None,
        }
    }

    /// A short lowercase name, as `walinspect` prints it.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Batch => "batch",
            RecordKind::RateLimit => "ratelimit",
            RecordKind::Breaker => "breaker",
            RecordKind::BreakerCounts => "breaker-counts",
            RecordKind::Lockout => "lockout",
            RecordKind::RateLimitViolations => "violations",
        }
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
        }
    }
}

fn checksum(salt: u32, frame: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(salt);
    h.update(&frame[BODY_LEN_OFFSET..CRC_OFFSET]);
    h.update(&frame[LSN_OFFSET..]);
    h.finalize()
}

/// Appends one framed record to `out`.
///
/// # Panics
/// If `body` is longer than [`MAX_RECORD_BODY_BYTES`]: callers check sizes first and return
/// [`Error::TooLarge`](crate::Error::TooLarge), so reaching this is a bug in walden.
pub fn encode_frame(
    out: &mut Vec<u8>,
    salt: u32,
    lsn: u64,
    timestamp_unix_ns: u64,
    kind: RecordKind,
    body: &[u8],
) {
    assert!(body.len() <= MAX_RECORD_BODY_BYTES, "record body over the limit");
    let start = out.len();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&timestamp_unix_ns.to_le_bytes());
    out.push(kind as u8);
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(body);
    let crc = checksum(salt, &out[start..]);
    out[start + CRC_OFFSET..start + LSN_OFFSET].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes and verifies the record at the start of `buf` (which runs to the end of the file).
pub fn decode_frame(buf: &[u8], salt: u32) -> Result<Frame<'_>, FrameError> {
    if buf.len() < RECORD_HEADER_LEN {
        return Err(FrameError::Truncated { needed: RECORD_HEADER_LEN, available: buf.len() });
    }
    let body_len = le_u32(buf, BODY_LEN_OFFSET);
    if body_len as usize > MAX_RECORD_BODY_BYTES {
        return Err(FrameError::TooLong { body_len });
    }
    let len = RECORD_HEADER_LEN + body_len as usize;
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
    Ok(Frame {
        lsn: le_u64(buf, LSN_OFFSET),
        timestamp_unix_ns: le_u64(buf, TIMESTAMP_OFFSET),
        kind: buf[KIND_OFFSET],
        body: &buf[RECORD_HEADER_LEN..len],
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trips() {
        let mut out = Vec::new();
        encode_frame(&mut out, 99, 5, 6, RecordKind::Batch, b"hello");
        let f = decode_frame(&out, 99).unwrap();
        assert_eq!(
            (f.lsn, f.timestamp_unix_ns, f.kind, f.body, f.len),
            (5, 6, 1, &b"hello"[..], 33)
        );
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
        encode_frame(&mut out, 7, 1, 2, RecordKind::Batch, b"{\"a\":1}");
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
    fn huge_length_is_rejected_without_allocating() {
        let mut b = vec![0xffu8; RECORD_HEADER_LEN];
        b[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_frame(&b, 0), Err(FrameError::TooLong { body_len: u32::MAX }));
    }
}
