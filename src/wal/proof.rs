//! Proofs of durability: what tells damage in synced data from an unsynced tail.
//!
//! A record that fails its checks is damage only if something written later shows it had been
//! made durable (`docs/FORMAT.md`, the decision table). Two things can:
//!
//! - a later valid record of the same segment whose watermark names it (or a later record:
//!   every record up to the watermark was durable before that record was written; a close
//!   marker names the whole log);
//! - a later segment: a version-2 segment is followed by another only after it was made durable
//!   (a roll fdatasyncs it before creating the next; an open fdatasyncs what it replayed before
//!   its epoch creates one). A version-1 open did not fdatasync what it replayed, so behind a
//!   version-1 segment only a version-1 segment of the same epoch (a roll) or a version-2
//!   segment proves it.
//!
//! Records of other segments need no search: a later segment's existence already decides.

use std::path::Path;

use crate::format::{decode_frame_as, DurabilityProof, FrameFormat, SegmentHeader};

use super::resync::find_next_valid_as;

/// Looks for a proof that the record at `offset` of the segment `path` (whose bytes and
/// verified header are given), which had to carry LSN `lsn` and failed its checks, had been made
/// durable. `later` are the segments after it: number, path and bytes.
pub(crate) fn find_proof<'a>(
    path: &Path,
    bytes: &[u8],
    header: &SegmentHeader,
    format: FrameFormat,
    offset: usize,
    lsn: u64,
    later: impl Iterator<Item = (u64, &'a Path, &'a [u8])>,
) -> Option<DurabilityProof> {
    later_record(path, bytes, header, format, offset, lsn)
        .or_else(|| later_segment(header, format, later))
}

/// The first valid record after `offset` in the same segment whose watermark covers `lsn`.
fn later_record(
    path: &Path,
    bytes: &[u8],
    header: &SegmentHeader,
    format: FrameFormat,
    offset: usize,
    lsn: u64,
) -> Option<DurabilityProof> {
    if format == FrameFormat::V1 {
        return None; // version-1 records carry no watermark
    }
    let salt = header.salt();
    let mut from = offset + 1;
    // The LSN the next valid record carries at least (the resync filter needs it).
    let mut next = lsn;
    while let Some(at) = find_next_valid_as(bytes, from, salt, next, format) {
        let at = at as usize;
        let frame = decode_frame_as(&bytes[at..], salt, format).ok()?;
        if frame.watermark.covers(header.epoch, lsn) {
            return Some(DurabilityProof::LaterRecord {
                file: path.to_path_buf(),
                offset: at as u64,
                lsn: frame.lsn,
                watermark: frame.watermark,
            });
        }
        from = at + frame.len;
        next = frame.lsn + 1;
    }
    None
}

/// The first later segment whose existence proves the damaged segment durable.
fn later_segment<'a>(
    header: &SegmentHeader,
    format: FrameFormat,
    mut later: impl Iterator<Item = (u64, &'a Path, &'a [u8])>,
) -> Option<DurabilityProof> {
    later
        .find(|(_, _, bytes)| match format {
            FrameFormat::V2 => true,
            FrameFormat::V1 => match SegmentHeader::decode_versioned(bytes) {
                Ok((_, FrameFormat::V2)) => true,
                Ok((h, FrameFormat::V1)) => h.epoch == header.epoch,
                Err(_) => false,
            },
        })
        .map(|(segment_no, path, _)| DurabilityProof::LaterSegment {
            file: path.to_path_buf(),
            segment_no,
        })
}
