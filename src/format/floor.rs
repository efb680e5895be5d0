//! The body of a `VersionFloor` record: one collection's version floor.
//!
//! ```text
//! u8  body format version   = 1
//! u64 floor                 highest version any deleted document of the collection had
//! u16 collection_len, then that many bytes (the collection name)
//! ```
//! All integers little-endian; nothing may follow the name. A snapshot holds one such entry per
//! collection whose floor is above 0, since the deletes that raised it are no longer in any
//! log segment. Replay keeps, per collection, the largest floor it has seen.

use super::body::{put_str16, BodyReader};

/// Body format version of `VersionFloor` records this build writes and reads.
pub const VERSION_FLOOR_BODY_VERSION: u8 = 1;

/// One decoded `VersionFloor` record body, borrowed from the bytes it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionFloorRecord<'a> {
    /// The collection.
    pub collection: &'a str,
    /// A document created in it while its key is absent gets version `floor + 1`.
    pub floor: u64,
}

impl<'a> VersionFloorRecord<'a> {
    /// The body bytes. The caller has checked the collection name (at most 64 bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 8 + 2 + self.collection.len());
        out.push(VERSION_FLOOR_BODY_VERSION);
        out.extend_from_slice(&self.floor.to_le_bytes());
        put_str16(&mut out, self.collection);
        out
    }

    /// Decodes a body; any malformed input is an `Err` with a description, never a panic.
    pub fn decode(body: &'a [u8]) -> Result<VersionFloorRecord<'a>, String> {
        let mut r = BodyReader::with_version(body, VERSION_FLOOR_BODY_VERSION)?;
        let floor = r.u64("floor")?;
        let collection = r.str16("collection name")?;
        r.finish()?;
        Ok(VersionFloorRecord { collection, floor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::body::fuzz_decoder;

    #[test]
    fn body_bytes_are_exactly_as_documented() {
        let rec = VersionFloorRecord { collection: "users", floor: 7 };
        let b = rec.encode();
        let mut want = vec![1u8];
        want.extend_from_slice(&7u64.to_le_bytes());
        want.extend_from_slice(&[5, 0, b'u', b's', b'e', b'r', b's']);
        assert_eq!(b, want);
        assert_eq!(VersionFloorRecord::decode(&b), Ok(rec));
    }

    #[test]
    fn garbage_never_panics_and_truncations_are_rejected() {
        let rec = VersionFloorRecord { collection: "c", floor: u64::MAX };
        fuzz_decoder(&rec.encode(), |b| VersionFloorRecord::decode(b).is_ok());
    }
}
