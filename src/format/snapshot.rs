//! Snapshot files: the whole live state as of one LSN.
//!
//! ```text
//! header  64 bytes (layout below)
//! entries record frames (same framing as the WAL), checksums seeded with the snapshot salt
//! footer  32 bytes (layout below)
//! ```

use super::{le_u16, le_u32, le_u64, CorruptionKind, FrameFormat};

/// Magic bytes at offset 0 of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"WALDNSNP";
/// Magic bytes of the snapshot footer.
pub const SNAPSHOT_FOOTER_MAGIC: [u8; 8] = *b"WALDNEND";
/// Snapshot format version written by this build. Version 1 snapshots are read too.
pub const SNAPSHOT_FORMAT_VERSION: u16 = 2;

const MAGIC_OFFSET: usize = 0;
const VERSION_OFFSET: usize = MAGIC_OFFSET + SNAPSHOT_MAGIC.len();
const HEADER_LEN_OFFSET: usize = VERSION_OFFSET + size_of::<u16>();
const FLAGS_OFFSET: usize = HEADER_LEN_OFFSET + size_of::<u16>();
const STORE_ID_OFFSET: usize = FLAGS_OFFSET + size_of::<u32>();
const EPOCH_OFFSET: usize = STORE_ID_OFFSET + 16;
const LSN_OFFSET: usize = EPOCH_OFFSET + size_of::<u64>();
const ENTRY_COUNT_OFFSET: usize = LSN_OFFSET + size_of::<u64>();
const RESERVED_OFFSET: usize = ENTRY_COUNT_OFFSET + size_of::<u64>();
const CRC_OFFSET: usize = RESERVED_OFFSET + size_of::<u32>();
/// Length of the snapshot header in bytes.
pub const SNAPSHOT_HEADER_LEN: usize = CRC_OFFSET + size_of::<u32>();
const _: () = assert!(SNAPSHOT_HEADER_LEN == 64);

const F_MAGIC_OFFSET: usize = 0;
const F_COUNT_OFFSET: usize = F_MAGIC_OFFSET + SNAPSHOT_FOOTER_MAGIC.len();
const F_BYTES_OFFSET: usize = F_COUNT_OFFSET + size_of::<u64>();
const F_RESERVED_OFFSET: usize = F_BYTES_OFFSET + size_of::<u64>();
const F_CRC_OFFSET: usize = F_RESERVED_OFFSET + size_of::<u32>();
/// Length of the snapshot footer in bytes.
pub const SNAPSHOT_FOOTER_LEN: usize = F_CRC_OFFSET + size_of::<u32>();
const _: () = assert!(SNAPSHOT_FOOTER_LEN == 32);

/// The header of a snapshot file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// The store the snapshot belongs to.
    pub store_id: [u8; 16],
    /// Epoch of the open that wrote it.
    pub epoch: u64,
    /// The state includes every record up to and including this LSN, and nothing after.
    pub lsn: u64,
    /// Number of entries between header and footer.
    pub entry_count: u64,
}

impl SnapshotHeader {
    /// Encodes the 64 header bytes.
    pub fn encode(&self) -> [u8; SNAPSHOT_HEADER_LEN] {
        let mut b = [0u8; SNAPSHOT_HEADER_LEN];
        b[MAGIC_OFFSET..VERSION_OFFSET].copy_from_slice(&SNAPSHOT_MAGIC);
        b[VERSION_OFFSET..HEADER_LEN_OFFSET]
            .copy_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
        b[HEADER_LEN_OFFSET..FLAGS_OFFSET]
            .copy_from_slice(&(SNAPSHOT_HEADER_LEN as u16).to_le_bytes());
        b[STORE_ID_OFFSET..EPOCH_OFFSET].copy_from_slice(&self.store_id);
        b[EPOCH_OFFSET..LSN_OFFSET].copy_from_slice(&self.epoch.to_le_bytes());
        b[LSN_OFFSET..ENTRY_COUNT_OFFSET].copy_from_slice(&self.lsn.to_le_bytes());
        b[ENTRY_COUNT_OFFSET..RESERVED_OFFSET].copy_from_slice(&self.entry_count.to_le_bytes());
        let crc = crc32fast::hash(&b[..CRC_OFFSET]);
        b[CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and verifies a header from the start of `b` (format version 1 or 2).
    pub fn decode(b: &[u8]) -> Result<SnapshotHeader, CorruptionKind> {
        SnapshotHeader::decode_versioned(b).map(|(h, _)| h)
    }

    /// [`SnapshotHeader::decode`], with the frame layout the snapshot's version gives its
    /// entries.
    pub fn decode_versioned(b: &[u8]) -> Result<(SnapshotHeader, FrameFormat), CorruptionKind> {
        if b.len() < SNAPSHOT_HEADER_LEN {
            return Err(CorruptionKind::ShortHeader);
        }
        if b[MAGIC_OFFSET..VERSION_OFFSET] != SNAPSHOT_MAGIC {
            return Err(CorruptionKind::BadMagic);
        }
        let stored = le_u32(b, CRC_OFFSET);
        let computed = crc32fast::hash(&b[..CRC_OFFSET]);
        if stored != computed {
            return Err(CorruptionKind::HeaderChecksum { stored, computed });
        }
        let version = le_u16(b, VERSION_OFFSET);
        let format = FrameFormat::of_version(version);
        if format.is_none()
            || le_u16(b, HEADER_LEN_OFFSET) as usize != SNAPSHOT_HEADER_LEN
            || le_u32(b, FLAGS_OFFSET) != 0
            || le_u32(b, RESERVED_OFFSET) != 0
        {
            return Err(CorruptionKind::UnsupportedVersion { found: u32::from(version) });
        }
        let mut store_id = [0u8; 16];
        store_id.copy_from_slice(&b[STORE_ID_OFFSET..EPOCH_OFFSET]);
        let header = SnapshotHeader {
            store_id,
            epoch: le_u64(b, EPOCH_OFFSET),
            lsn: le_u64(b, LSN_OFFSET),
            entry_count: le_u64(b, ENTRY_COUNT_OFFSET),
        };
        Ok((header, format.expect("checked above")))
    }

    /// Seed of every entry checksum in this snapshot.
    pub fn salt(&self) -> u32 {
        snapshot_salt(&self.store_id, self.lsn)
    }
}

/// The footer: written last, so a snapshot cut short has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotFooter {
    /// Entries written (must equal the header's count).
    pub entry_count: u64,
    /// Bytes of entries between header and footer.
    pub entry_bytes: u64,
}

impl SnapshotFooter {
    /// Encodes the 32 footer bytes.
    pub fn encode(&self) -> [u8; SNAPSHOT_FOOTER_LEN] {
        let mut b = [0u8; SNAPSHOT_FOOTER_LEN];
        b[F_MAGIC_OFFSET..F_COUNT_OFFSET].copy_from_slice(&SNAPSHOT_FOOTER_MAGIC);
        b[F_COUNT_OFFSET..F_BYTES_OFFSET].copy_from_slice(&self.entry_count.to_le_bytes());
        b[F_BYTES_OFFSET..F_RESERVED_OFFSET].copy_from_slice(&self.entry_bytes.to_le_bytes());
        let crc = crc32fast::hash(&b[..F_CRC_OFFSET]);
        b[F_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and verifies a footer (exactly the last 32 bytes of the file).
    pub fn decode(b: &[u8]) -> Result<SnapshotFooter, CorruptionKind> {
        if b.len() != SNAPSHOT_FOOTER_LEN {
            return Err(CorruptionKind::ShortFooter);
        }
        if b[F_MAGIC_OFFSET..F_COUNT_OFFSET] != SNAPSHOT_FOOTER_MAGIC {
            return Err(CorruptionKind::BadMagic);
        }
        let stored = le_u32(b, F_CRC_OFFSET);
        let computed = crc32fast::hash(&b[..F_CRC_OFFSET]);
        if stored != computed {
            return Err(CorruptionKind::FooterChecksum { stored, computed });
        }
        if le_u32(b, F_RESERVED_OFFSET) != 0 {
            return Err(CorruptionKind::UnsupportedVersion { found: 0 });
        }
        Ok(SnapshotFooter {
            entry_count: le_u64(b, F_COUNT_OFFSET),
            entry_bytes: le_u64(b, F_BYTES_OFFSET),
        })
    }
}

/// Seed of the entry checksums of the snapshot at `lsn`: CRC-32 of the store id, the LSN and
/// the ASCII tag `SNAP`. Entries of another snapshot or of a WAL segment never verify here.
pub fn snapshot_salt(store_id: &[u8; 16], lsn: u64) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(store_id);
    h.update(&lsn.to_le_bytes());
    h.update(b"SNAP");
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::files::{parse_snapshot_file_name, snapshot_file_name};

    #[test]
    fn header_and_footer_round_trip_and_reject_every_bit_flip() {
        let h = SnapshotHeader { store_id: [3; 16], epoch: 4, lsn: 5, entry_count: 6 };
        let hb = h.encode();
        assert_eq!(SnapshotHeader::decode(&hb), Ok(h));
        let f = SnapshotFooter { entry_count: 6, entry_bytes: 700 };
        let fb = f.encode();
        assert_eq!(SnapshotFooter::decode(&fb), Ok(f));
        for bit in 0..SNAPSHOT_HEADER_LEN * 8 {
            let mut b = hb;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(SnapshotHeader::decode(&b).is_err());
        }
        for bit in 0..SNAPSHOT_FOOTER_LEN * 8 {
            let mut b = fb;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(SnapshotFooter::decode(&b).is_err());
        }
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_snapshot_file_name(&snapshot_file_name(77)), Some(77));
        assert_eq!(parse_snapshot_file_name("snapshot-77.snap"), None);
        assert_eq!(parse_snapshot_file_name("snapshot-00000000000000000077.snap.tmp"), None);
    }
}
