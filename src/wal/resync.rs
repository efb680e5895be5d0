//! Resynchronising after damage: finding the next record that verifies.

use crate::format::{decode_frame_as, FrameFormat};
use crate::limits::MAX_RESYNC_SCAN_BYTES;

/// Finds the next offset after `from` where a record of this segment (checksum seeded with
/// `salt`) verifies and carries an LSN at or after `expected_lsn`, the one the damaged record
/// should have had. Bounded by [`MAX_RESYNC_SCAN_BYTES`].
pub fn find_next_valid(bytes: &[u8], from: usize, salt: u32, expected_lsn: u64) -> Option<u64> {
    find_next_valid_as(bytes, from, salt, expected_lsn, FrameFormat::V2)
}

/// [`find_next_valid`] for records of the layout `format`.
pub fn find_next_valid_as(
    bytes: &[u8],
    from: usize,
    salt: u32,
    expected_lsn: u64,
    format: FrameFormat,
) -> Option<u64> {
    let header_len = format.header_len();
    let end = bytes.len().min(from.saturating_add(MAX_RESYNC_SCAN_BYTES));
    for off in from..end {
        let rest = &bytes[off..];
        if rest.len() < header_len {
            break;
        }
        // Cheap filter before the checksum: a later record of this segment has an LSN at or
        // after the expected one, and no more records fit than the bytes left can hold.
        let lsn = u64::from_le_bytes(rest[8..16].try_into().expect("8 bytes"));
        let most = expected_lsn.saturating_add((rest.len() / header_len) as u64);
        if lsn < expected_lsn || lsn > most {
            continue;
        }
        if decode_frame_as(rest, salt, format).is_ok() {
            return Some(off as u64);
        }
    }
    None
}
