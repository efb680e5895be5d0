//! The `DURABLE` file: the writer's durable position, for followers on the same machine.
//!
//! ```text
//! 0   8  magic "WALDNDUR"
//! 8   4  format version (u32, 1)
//! 12  16 store id
//! 28  8  epoch of the writer that published it (u64)
//! 36  8  durable LSN: every record up to it is fsynced (u64)
//! 44  4  CRC-32 of bytes 0..44
//! ```
//!
//! The writer creates it at open and rewrites these 48 bytes in place after each fsync of the
//! log, with no fsync of its own: it is a hint for readers, never used by recovery. A reader
//! may catch a rewrite half done; the checksum then fails and the reader keeps the position it
//! had ("not yet"). The `(epoch, LSN)` pair names whose claim it is: an epoch only publishes
//! what it made durable itself, including what its recovery replayed.

use super::{le_u32, le_u64, CorruptionKind};

/// Magic bytes of the `DURABLE` file.
pub const DURABLE_MAGIC: [u8; 8] = *b"WALDNDUR";
/// Format version of the `DURABLE` file.
pub const DURABLE_FORMAT_VERSION: u32 = 1;

const VERSION_OFFSET: usize = DURABLE_MAGIC.len();
const STORE_ID_OFFSET: usize = VERSION_OFFSET + size_of::<u32>();
const EPOCH_OFFSET: usize = STORE_ID_OFFSET + 16;
const LSN_OFFSET: usize = EPOCH_OFFSET + size_of::<u64>();
const CRC_OFFSET: usize = LSN_OFFSET + size_of::<u64>();
/// Length of the `DURABLE` file in bytes.
pub const DURABLE_LEN: usize = CRC_OFFSET + size_of::<u32>();
const _: () = assert!(DURABLE_LEN == 48);

/// A durable position as the writer publishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurableMark {
    /// The store this position belongs to.
    pub store_id: [u8; 16],
    /// Epoch of the writer that published it.
    pub epoch: u64,
    /// Every record with an LSN up to this one is fsynced (0: none).
    pub lsn: u64,
}

impl DurableMark {
    /// Encodes the file's bytes.
    pub fn encode(&self) -> [u8; DURABLE_LEN] {
        let mut b = [0u8; DURABLE_LEN];
        b[..VERSION_OFFSET].copy_from_slice(&DURABLE_MAGIC);
        b[VERSION_OFFSET..STORE_ID_OFFSET].copy_from_slice(&DURABLE_FORMAT_VERSION.to_le_bytes());
        b[STORE_ID_OFFSET..EPOCH_OFFSET].copy_from_slice(&self.store_id);
        b[EPOCH_OFFSET..LSN_OFFSET].copy_from_slice(&self.epoch.to_le_bytes());
        b[LSN_OFFSET..CRC_OFFSET].copy_from_slice(&self.lsn.to_le_bytes());
        let crc = crc32fast::hash(&b[..CRC_OFFSET]);
        b[CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and verifies the file's bytes (a torn rewrite fails the checksum).
    pub fn decode(b: &[u8]) -> Result<DurableMark, CorruptionKind> {
        if b.is_empty() {
            return Err(CorruptionKind::Empty);
        }
        if b.len() < DURABLE_LEN {
            return Err(CorruptionKind::ShortHeader);
        }
        if b[..VERSION_OFFSET] != DURABLE_MAGIC {
            return Err(CorruptionKind::BadMagic);
        }
        let stored = le_u32(b, CRC_OFFSET);
        let computed = crc32fast::hash(&b[..CRC_OFFSET]);
        if stored != computed {
            return Err(CorruptionKind::HeaderChecksum { stored, computed });
        }
        let version = le_u32(b, VERSION_OFFSET);
        if version != DURABLE_FORMAT_VERSION {
            return Err(CorruptionKind::UnsupportedVersion { found: version });
        }
        let mut store_id = [0u8; 16];
        store_id.copy_from_slice(&b[STORE_ID_OFFSET..EPOCH_OFFSET]);
        Ok(DurableMark { store_id, epoch: le_u64(b, EPOCH_OFFSET), lsn: le_u64(b, LSN_OFFSET) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark() -> DurableMark {
        DurableMark { store_id: [7; 16], epoch: 3, lsn: 1234 }
    }

    #[test]
    fn a_mark_round_trips() {
        assert_eq!(DurableMark::decode(&mark().encode()), Ok(mark()));
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_refused() {
        let bytes = mark().encode();
        for bit in 0..DURABLE_LEN * 8 {
            let mut b = bytes;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(DurableMark::decode(&b).is_err(), "bit {bit} flipped verified");
        }
        for len in 0..DURABLE_LEN {
            assert!(DurableMark::decode(&bytes[..len]).is_err(), "cut at {len} verified");
        }
    }

    #[test]
    fn a_rewrite_caught_half_done_does_not_verify() {
        let old = mark().encode();
        let new = DurableMark { lsn: 99_999, ..mark() }.encode();
        for cut in 1..DURABLE_LEN {
            let mut torn = old;
            torn[..cut].copy_from_slice(&new[..cut]);
            if torn != old && torn != new {
                assert!(DurableMark::decode(&torn).is_err(), "torn at {cut} verified");
            }
        }
    }
}
