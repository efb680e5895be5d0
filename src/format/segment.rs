//! The WAL segment header: the first 64 bytes of every file in `<store>/wal/`.

use super::{le_u16, le_u32, le_u64, CorruptionKind, FrameFormat};

/// Magic bytes at offset 0 of every WAL segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"WALDNWAL";
/// Format version written into new segments. Version 1 segments are read too.
pub const SEGMENT_FORMAT_VERSION: u16 = 2;

const MAGIC_OFFSET: usize = 0;
const VERSION_OFFSET: usize = MAGIC_OFFSET + SEGMENT_MAGIC.len();
const HEADER_LEN_OFFSET: usize = VERSION_OFFSET + size_of::<u16>();
const FLAGS_OFFSET: usize = HEADER_LEN_OFFSET + size_of::<u16>();
const STORE_ID_OFFSET: usize = FLAGS_OFFSET + size_of::<u32>();
const EPOCH_OFFSET: usize = STORE_ID_OFFSET + 16;
const SEGMENT_NO_OFFSET: usize = EPOCH_OFFSET + size_of::<u64>();
const FIRST_LSN_OFFSET: usize = SEGMENT_NO_OFFSET + size_of::<u64>();
const RESERVED_OFFSET: usize = FIRST_LSN_OFFSET + size_of::<u64>();
const CRC_OFFSET: usize = RESERVED_OFFSET + size_of::<u32>();
/// Length of the segment header in bytes; records start right after it.
pub const SEGMENT_HEADER_LEN: usize = CRC_OFFSET + size_of::<u32>();

const _: () = assert!(SEGMENT_HEADER_LEN == 64);

/// The header of one WAL segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Random id of the store this segment belongs to.
    pub store_id: [u8; 16],
    /// The open of the store that wrote this segment; every open starts a new epoch.
    pub epoch: u64,
    /// Sequence number of this segment, equal to the number in its file name.
    pub segment_no: u64,
    /// LSN the first record of this segment carries (or would carry, if it has none).
    pub first_lsn: u64,
}

impl SegmentHeader {
    /// Encodes the header into its 64 on-disk bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut buf = [0u8; SEGMENT_HEADER_LEN];
        buf[MAGIC_OFFSET..VERSION_OFFSET].copy_from_slice(&SEGMENT_MAGIC);
        buf[VERSION_OFFSET..HEADER_LEN_OFFSET]
            .copy_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
        buf[HEADER_LEN_OFFSET..FLAGS_OFFSET]
            .copy_from_slice(&(SEGMENT_HEADER_LEN as u16).to_le_bytes());
        buf[STORE_ID_OFFSET..EPOCH_OFFSET].copy_from_slice(&self.store_id);
        buf[EPOCH_OFFSET..SEGMENT_NO_OFFSET].copy_from_slice(&self.epoch.to_le_bytes());
        buf[SEGMENT_NO_OFFSET..FIRST_LSN_OFFSET].copy_from_slice(&self.segment_no.to_le_bytes());
        buf[FIRST_LSN_OFFSET..RESERVED_OFFSET].copy_from_slice(&self.first_lsn.to_le_bytes());
        let crc = crc32fast::hash(&buf[..CRC_OFFSET]);
        buf[CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        buf
    }

    /// Decodes and verifies a header from the start of `buf` (format version 1 or 2).
    pub fn decode(buf: &[u8]) -> Result<SegmentHeader, CorruptionKind> {
        SegmentHeader::decode_versioned(buf).map(|(h, _)| h)
    }

    /// [`SegmentHeader::decode`], with the frame layout the segment's version gives its records.
    pub fn decode_versioned(buf: &[u8]) -> Result<(SegmentHeader, FrameFormat), CorruptionKind> {
        if buf.len() < SEGMENT_HEADER_LEN {
            return Err(CorruptionKind::ShortHeader);
        }
        if buf[MAGIC_OFFSET..VERSION_OFFSET] != SEGMENT_MAGIC {
            return Err(CorruptionKind::BadMagic);
        }
        let stored = le_u32(buf, CRC_OFFSET);
        let computed = crc32fast::hash(&buf[..CRC_OFFSET]);
        if stored != computed {
            return Err(CorruptionKind::HeaderChecksum { stored, computed });
        }
        let version = le_u16(buf, VERSION_OFFSET);
        let format = FrameFormat::of_version(version);
        if format.is_none()
            || le_u16(buf, HEADER_LEN_OFFSET) as usize != SEGMENT_HEADER_LEN
            || le_u32(buf, FLAGS_OFFSET) != 0
            || le_u32(buf, RESERVED_OFFSET) != 0
        {
            return Err(CorruptionKind::UnsupportedVersion { found: u32::from(version) });
        }
        let mut store_id = [0u8; 16];
        store_id.copy_from_slice(&buf[STORE_ID_OFFSET..EPOCH_OFFSET]);
        let header = SegmentHeader {
            store_id,
            epoch: le_u64(buf, EPOCH_OFFSET),
            segment_no: le_u64(buf, SEGMENT_NO_OFFSET),
            first_lsn: le_u64(buf, FIRST_LSN_OFFSET),
        };
        Ok((header, format.expect("checked above")))
    }

    /// The checksum seed ("salt") every record of this segment is framed with.
    pub fn salt(&self) -> u32 {
        segment_salt(&self.store_id, self.epoch, self.segment_no)
    }
}

/// The seed of every record checksum in a segment: CRC-32 of store id, epoch and segment number.
///
/// Seeding the record CRC with it means a record copied from another store, another epoch or
/// another segment file never verifies here, so a recycled or misplaced file cannot be replayed.
pub fn segment_salt(store_id: &[u8; 16], epoch: u64, segment_no: u64) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(store_id);
    h.update(&epoch.to_le_bytes());
    h.update(&segment_no.to_le_bytes());
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::files::{parse_segment_file_name, segment_file_name};

    fn header() -> SegmentHeader {
        SegmentHeader { store_id: [7; 16], epoch: 3, segment_no: 9, first_lsn: 1234 }
    }

    #[test]
    fn header_round_trips() {
        let h = header();
        assert_eq!(SegmentHeader::decode(&h.encode()), Ok(h));
    }

    #[test]
    fn every_single_bit_flip_in_a_header_is_rejected() {
        let bytes = header().encode();
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(SegmentHeader::decode(&b).is_err(), "bit {bit} flip accepted");
        }
    }

    #[test]
    fn short_header_is_rejected() {
        let bytes = header().encode();
        for len in 0..SEGMENT_HEADER_LEN {
            assert_eq!(SegmentHeader::decode(&bytes[..len]), Err(CorruptionKind::ShortHeader));
        }
    }

    #[test]
    fn file_names_round_trip_and_sort() {
        assert_eq!(parse_segment_file_name(&segment_file_name(42)), Some(42));
        assert_eq!(parse_segment_file_name("42.wal"), None);
        assert_eq!(parse_segment_file_name("00000000000000000042.wal.torn"), None);
        assert!(segment_file_name(9) < segment_file_name(10));
    }

    #[test]
    fn salt_differs_by_epoch_and_segment() {
        let a = segment_salt(&[1; 16], 1, 1);
        assert_ne!(a, segment_salt(&[1; 16], 2, 1));
        assert_ne!(a, segment_salt(&[1; 16], 1, 2));
        assert_ne!(a, segment_salt(&[2; 16], 1, 1));
    }
}
