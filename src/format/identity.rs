//! The `STORE` file: the store's identity, written once when the store is created.
//!
//! ```text
//! 0   8  magic "WALDNSTO"
//! 8   4  format version (u32, 2; 1 in stores created by version 1)
//! 12  16 store id (random)
//! 28  8  created_unix_ns (u64)
//! 36  4  CRC-32 of bytes 0..36
//! ```

use super::{le_u32, le_u64, CorruptionKind};

/// Magic bytes of the `STORE` identity file.
pub const IDENTITY_MAGIC: [u8; 8] = *b"WALDNSTO";
/// Format version of stores created by this build; stores created by version 1 are read too.
const IDENTITY_VERSION: u32 = 2;
/// The identity versions this build reads.
const IDENTITY_VERSIONS_READ: [u32; 2] = [1, 2];
/// Length of the `STORE` file in bytes.
pub const IDENTITY_LEN: usize = 40;

/// Who a store is: the id every segment and snapshot header repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreIdentity {
    /// Random 128-bit id chosen when the store was created.
    pub store_id: [u8; 16],
    /// When the store was created, nanoseconds since the Unix epoch.
    pub created_unix_ns: u64,
}

impl StoreIdentity {
    /// Encodes the identity file's bytes.
    pub fn encode(&self) -> [u8; IDENTITY_LEN] {
        let mut b = [0u8; IDENTITY_LEN];
        b[0..8].copy_from_slice(&IDENTITY_MAGIC);
        b[8..12].copy_from_slice(&IDENTITY_VERSION.to_le_bytes());
        b[12..28].copy_from_slice(&self.store_id);
        b[28..36].copy_from_slice(&self.created_unix_ns.to_le_bytes());
        let crc = crc32fast::hash(&b[..36]);
        b[36..40].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and verifies the identity file's bytes.
    pub fn decode(b: &[u8]) -> Result<StoreIdentity, CorruptionKind> {
        if b.is_empty() {
            return Err(CorruptionKind::Empty);
        }
        if b.len() < IDENTITY_LEN {
            return Err(CorruptionKind::ShortHeader);
        }
        if b[0..8] != IDENTITY_MAGIC {
            return Err(CorruptionKind::BadMagic);
        }
        let stored = le_u32(b, 36);
        let computed = crc32fast::hash(&b[..36]);
        if stored != computed {
            return Err(CorruptionKind::HeaderChecksum { stored, computed });
        }
        let version = le_u32(b, 8);
        if !IDENTITY_VERSIONS_READ.contains(&version) {
            return Err(CorruptionKind::UnsupportedVersion { found: version });
        }
        let mut store_id = [0u8; 16];
        store_id.copy_from_slice(&b[12..28]);
        Ok(StoreIdentity { store_id, created_unix_ns: le_u64(b, 28) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_and_detects_flips() {
        let id = StoreIdentity { store_id: [5; 16], created_unix_ns: 77 };
        let b = id.encode();
        assert_eq!(StoreIdentity::decode(&b), Ok(id));
        for bit in 0..IDENTITY_LEN * 8 {
            let mut c = b;
            c[bit / 8] ^= 1 << (bit % 8);
            assert!(StoreIdentity::decode(&c).is_err());
        }
    }
}
