//! Reading the log: one walk over the segments that classifies every byte.
//!
//! The same walk serves recovery (which then cuts an unsynced tail or refuses to open) and
//! `walinspect` (which only reports). It never writes. A record that fails its checks is judged
//! by proof of durability (`super::proof`), not by its position. Its decisions:
//!
//! | situation | verdict |
//! |---|---|
//! | every header and record verifies, LSNs consecutive | [`LogVerdict::Clean`] |
//! | a bad record that a later record's watermark, a close marker or a later segment proves durable | [`LogVerdict::Corrupt`] `DurableRecordDamaged`, with the proof |
//! | last segment: a bad record nothing proves durable, or a header never completed | [`LogVerdict::TornTail`] (an unsynced tail) |
//! | a bad record in a version-1 segment nothing proves, with later segments | [`LogVerdict::Corrupt`] `BadRecord` |
//! | bytes after a close marker | [`LogVerdict::Corrupt`] `AfterClose` |
//! | a missing segment number, an LSN that does not follow, another store's id, an epoch or a version going back | [`LogVerdict::Corrupt`] |

use std::path::{Path, PathBuf};

use crate::format::{
    decode_frame_as, parse_segment_file_name, CorruptionKind, Frame, FrameError, FrameFormat,
    RecordKind, SegmentHeader, SEGMENT_HEADER_LEN,
};
use crate::io::{Io, RealIo};

pub use super::resync::{find_next_valid, find_next_valid_as};

/// One segment file's bytes, as handed to [`scan_log`].
#[derive(Debug, Clone, Copy)]
pub struct SegmentInput<'a> {
    /// Number from the file name.
    pub segment_no: u64,
    /// Path of the file (for reports).
    pub path: &'a Path,
    /// The whole file.
    pub bytes: &'a [u8],
}

/// A verified record and where it was found.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// Segment number.
    pub segment_no: u64,
    /// Epoch of the segment.
    pub epoch: u64,
    /// Path of the segment file.
    pub path: &'a Path,
    /// Byte offset of the record's header in the file.
    pub offset: u64,
    /// The record.
    pub frame: Frame<'a>,
}

impl RecordRef<'_> {
    /// The record kind, if this build knows it (the scan has already rejected unknown kinds).
    pub fn kind(&self) -> Option<RecordKind> {
        RecordKind::from_u8(self.frame.kind)
    }
}

/// Why the end of the log was cut: what an open truncates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The last segment's path.
    pub path: PathBuf,
    /// Its number.
    pub segment_no: u64,
    /// Where the valid part ends (0: the header itself never completed).
    pub offset: u64,
    /// Bytes from `offset` to the end of the file.
    pub len: u64,
    /// Why the bytes at `offset` are not a record (`None`: incomplete segment header).
    pub error: Option<FrameError>,
}

/// Real damage: the store refuses to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCorruption {
    /// The damaged file.
    pub path: PathBuf,
    /// Byte offset of the damage.
    pub offset: u64,
    /// LSN of the last valid record before it.
    pub last_good_lsn: Option<u64>,
    /// What is wrong.
    pub kind: CorruptionKind,
    /// Offset of the next valid record found after the damage in the same file, if any.
    pub resync_offset: Option<u64>,
}

/// The outcome of a walk over the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogVerdict {
    /// Everything verifies.
    Clean,
    /// The log ends in an incomplete write; everything before it is intact.
    TornTail(TornTail),
    /// The log is damaged at a point that is not its end.
    Corrupt(LogCorruption),
}

/// What a walk found in one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    /// Number from the file name.
    pub segment_no: u64,
    /// Path of the file.
    pub path: PathBuf,
    /// The header, if it verified.
    pub header: Option<SegmentHeader>,
    /// File size in bytes.
    pub bytes: u64,
    /// Bytes up to the end of the last valid record.
    pub valid_bytes: u64,
    /// Valid records read.
    pub records: u64,
    /// LSN of the last valid record, if any.
    pub last_lsn: Option<u64>,
    /// The frame layout its header's format version gives it.
    pub format: Option<FrameFormat>,
    /// Offset of the close marker ending it, if a clean close ended it.
    pub close_offset: Option<u64>,
}

/// The result of [`scan_log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogScan {
    /// Clean, torn tail, or corrupt.
    pub verdict: LogVerdict,
    /// One summary per segment examined, in order.
    pub segments: Vec<SegmentSummary>,
    /// Store id from the first valid segment header.
    pub store_id: Option<[u8; 16]>,
    /// Highest epoch among the valid headers.
    pub max_epoch: u64,
    /// `first_lsn` of the first segment's header.
    pub first_lsn: Option<u64>,
    /// LSN of the last valid record.
    pub last_lsn: Option<u64>,
    /// Epoch of the segment holding the last valid record.
    pub last_epoch: Option<u64>,
    /// The LSN the next record must carry.
    pub next_lsn: Option<u64>,
}

/// The segment files in `wal_dir` (names as [`segment_file_name`](crate::format::segment_file_name)
/// writes them), sorted by segment number. Other files (such as `.torn-*` leftovers) are ignored.
///
/// Read-only: lists the directory and nothing else.
pub fn list_segment_files(wal_dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    RealIo.list_dir(wal_dir).map(|names| segments_named(&names, wal_dir))
}

/// The segment files among the `names` of `wal_dir`'s entries, sorted by number: the one
/// listing of the log, shared by recovery, compaction, backup, stats and `walinspect`.
pub(crate) fn segments_named(names: &[String], wal_dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut segs: Vec<(u64, PathBuf)> = names
        .iter()
        .filter_map(|n| parse_segment_file_name(n).map(|no| (no, wal_dir.join(n))))
        .collect();
    segs.sort();
    segs
}

/// One step of [`walk_segment_lenient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LenientItem<'a> {
    /// A record that verifies, at byte `offset` of the segment.
    Record {
        /// Byte offset of the record's header.
        offset: u64,
        /// The record.
        frame: Frame<'a>,
    },
    /// Bytes that are not a valid record, from `offset` for `len` bytes; the walk resumes after
    /// them (or they run to the end of the file).
    Damaged {
        /// Where the damage starts.
        offset: u64,
        /// How many bytes were skipped.
        len: u64,
        /// Why the bytes at `offset` are not a record.
        error: FrameError,
    },
}

/// Walks the records of one segment (whose verified `header` the caller passes) without
/// stopping at damage: a bad record is reported as [`LenientItem::Damaged`] and the walk resumes
/// at the next record that verifies with this segment's salt (found with [`find_next_valid`],
/// looking for LSNs from the one after the last good record, or the header's `first_lsn`).
/// Checks no LSN chain and decodes no bodies: it serves salvage and forensics, never recovery.
pub fn walk_segment_lenient<'a>(
    bytes: &'a [u8],
    header: &SegmentHeader,
    on_item: &mut dyn FnMut(LenientItem<'a>),
) {
    let salt = header.salt();
    let format = SegmentHeader::decode_versioned(bytes).map_or(FrameFormat::V2, |(_, f)| f);
    let mut offset = SEGMENT_HEADER_LEN;
    let mut expected_lsn = header.first_lsn;
    while offset < bytes.len() {
        match decode_frame_as(&bytes[offset..], salt, format) {
            Ok(frame) => {
                on_item(LenientItem::Record { offset: offset as u64, frame });
                expected_lsn = frame.lsn.saturating_add(1);
                offset += frame.len;
            }
            Err(error) => {
                let next = find_next_valid_as(bytes, offset + 1, salt, expected_lsn, format)
                    .map_or(bytes.len(), |o| o as usize);
                on_item(LenientItem::Damaged {
                    offset: offset as u64,
                    len: (next - offset) as u64,
                    error,
                });
                offset = next;
            }
        }
    }
}

/// Walks all segments in order, verifying headers, records and the LSN chain, and calls
/// `on_record` for each valid record. `on_record` may reject a record (a body that does not
/// decode): the walk then stops with a `Corrupt` verdict at that record.
///
/// `expected_store_id`, when given, is the id every header must carry.
pub fn scan_log<'a>(
    segments: &[SegmentInput<'a>],
    expected_store_id: Option<[u8; 16]>,
    on_record: &mut dyn FnMut(&RecordRef<'a>) -> Result<(), CorruptionKind>,
) -> LogScan {
    let mut scan = LogScan {
        verdict: LogVerdict::Clean,
        segments: Vec::with_capacity(segments.len()),
        store_id: expected_store_id,
        max_epoch: 0,
        first_lsn: None,
        last_lsn: None,
        last_epoch: None,
        next_lsn: None,
    };
    for (i, seg) in segments.iter().enumerate() {
        let mut summary = SegmentSummary {
            segment_no: seg.segment_no,
            path: seg.path.to_path_buf(),
            header: None,
            bytes: seg.bytes.len() as u64,
            valid_bytes: 0,
            records: 0,
            last_lsn: None,
            format: None,
            close_offset: None,
        };
        let later = &segments[i + 1..];
        let verdict = scan_segment(seg, i, later, &mut scan, &mut summary, on_record);
        scan.segments.push(summary);
        if let Some(v) = verdict {
            scan.verdict = v;
            return scan;
        }
    }
    scan
}

fn corrupt(
    path: &Path,
    offset: u64,
    last_good_lsn: Option<u64>,
    kind: CorruptionKind,
    resync_offset: Option<u64>,
) -> Option<LogVerdict> {
    Some(LogVerdict::Corrupt(LogCorruption {
        path: path.to_path_buf(),
        offset,
        last_good_lsn,
        kind,
        resync_offset,
    }))
}

/// Checks a segment's header and its place in the chain (number, store, epoch, first LSN).
/// `Err`: the verdict the header alone decides.
// Over 70 lines because each check is one row of the decision table in the module doc, in the
// table's order; split up, the table could no longer be read against the code.
fn check_segment_header(
    seg: &SegmentInput<'_>,
    index: usize,
    is_last: bool,
    scan: &mut LogScan,
    summary: &mut SegmentSummary,
) -> Result<(SegmentHeader, FrameFormat), Option<LogVerdict>> {
    let path = seg.path;
    if let Some(prev) = scan.segments.last() {
        if seg.segment_no != prev.segment_no + 1 {
            let missing = prev.segment_no + 1;
            return Err(corrupt(
                path,
                0,
                scan.last_lsn,
                CorruptionKind::MissingSegment { segment_no: missing },
                None,
            ));
        }
    }
    let (header, format) = match SegmentHeader::decode_versioned(seg.bytes) {
        Ok(h) => h,
        Err(kind) => {
            // A segment is created, its header written and fsynced, before any record goes in.
            // A crash in between leaves a short or all-zero header in the newest file only.
            let never_completed =
                seg.bytes.len() < SEGMENT_HEADER_LEN || seg.bytes.iter().all(|&b| b == 0);
            if is_last && never_completed {
                return Err(Some(LogVerdict::TornTail(TornTail {
                    path: path.to_path_buf(),
                    segment_no: seg.segment_no,
                    offset: 0,
                    len: seg.bytes.len() as u64,
                    error: None,
                })));
            }
            return Err(corrupt(path, 0, scan.last_lsn, kind, None));
        }
    };
    summary.header = Some(header);
    summary.format = Some(format);
    let previous = scan.segments.last().and_then(|p| p.format);
    if previous.is_some_and(|p| p.version() > format.version()) {
        // A log never goes back to an older format: an upgraded store continues in the new one.
        let found = u32::from(format.version());
        return Err(corrupt(
            path,
            0,
            scan.last_lsn,
            CorruptionKind::UnsupportedVersion { found },
            None,
        ));
    }
    if header.segment_no != seg.segment_no {
        return Err(corrupt(
            path,
            0,
            scan.last_lsn,
            CorruptionKind::SegmentNumberMismatch {
                expected: seg.segment_no,
                found: header.segment_no,
            },
            None,
        ));
    }
    match scan.store_id {
        Some(id) if id != header.store_id => {
            return Err(corrupt(path, 0, scan.last_lsn, CorruptionKind::ForeignStore, None));
        }
        _ => scan.store_id = Some(header.store_id),
    }
    if index > 0 && header.epoch < scan.max_epoch {
        return Err(corrupt(
            path,
            0,
            scan.last_lsn,
            CorruptionKind::EpochRegression { previous: scan.max_epoch, found: header.epoch },
            None,
        ));
    }
    scan.max_epoch = scan.max_epoch.max(header.epoch);
    match scan.next_lsn {
        Some(expected) if expected != header.first_lsn => {
            return Err(corrupt(
                path,
                0,
                scan.last_lsn,
                CorruptionKind::LsnGap { expected, found: header.first_lsn },
                None,
            ));
        }
        None => {
            scan.first_lsn = Some(header.first_lsn);
        }
        _ => {}
    }
    Ok((header, format))
}

// Over 70 lines because the record loop is the per-record rows of the decision table (bad
// frame: proven damage, unsynced tail or version-1 refusal; close marker; LSN gap; unknown
// kind; body refused), in the table's order.
fn scan_segment<'a>(
    seg: &SegmentInput<'a>,
    index: usize,
    later: &[SegmentInput<'a>],
    scan: &mut LogScan,
    summary: &mut SegmentSummary,
    on_record: &mut dyn FnMut(&RecordRef<'a>) -> Result<(), CorruptionKind>,
) -> Option<LogVerdict> {
    let is_last = later.is_empty();
    let (header, format) = match check_segment_header(seg, index, is_last, scan, summary) {
        Ok(h) => h,
        Err(verdict) => return verdict,
    };
    let path = seg.path;
    let mut next_lsn = header.first_lsn;
    scan.next_lsn = Some(next_lsn);
    let salt = header.salt();
    let bytes = seg.bytes;
    let mut offset = SEGMENT_HEADER_LEN;
    summary.valid_bytes = offset as u64;
    while offset < bytes.len() {
        let frame = match decode_frame_as(&bytes[offset..], salt, format) {
            Ok(f) => f,
            Err(error) => {
                return bad_frame(seg, &header, format, offset, next_lsn, error, later, scan)
            }
        };
        if let Some(close_offset) = summary.close_offset {
            // Nothing is written after a clean close: a valid record there was not put there by
            // walden (damaged bytes there are judged like any others, above).
            let kind = CorruptionKind::AfterClose { close_offset };
            return corrupt(path, offset as u64, scan.last_lsn, kind, None);
        }
        if frame.lsn != next_lsn {
            return corrupt(
                path,
                offset as u64,
                scan.last_lsn,
                CorruptionKind::LsnGap { expected: next_lsn, found: frame.lsn },
                None,
            );
        }
        let kind = RecordKind::from_u8(frame.kind);
        if kind.is_none() || frame.watermark.epoch > header.epoch {
            let kind = match kind {
                None => CorruptionKind::UnknownRecordKind(frame.kind),
                Some(_) => CorruptionKind::BadRecord(FrameError::Watermark {
                    lsn: frame.lsn,
                    durable_lsn: frame.watermark.lsn,
                }),
            };
            return corrupt(path, offset as u64, scan.last_lsn, kind, None);
        }
        if kind == Some(RecordKind::Close) {
            // It names the log durable, changes no state and does not consume its LSN.
            summary.close_offset = Some(offset as u64);
            offset += frame.len;
            summary.valid_bytes = offset as u64;
            continue;
        }
        let rec = RecordRef {
            segment_no: seg.segment_no,
            epoch: header.epoch,
            path,
            offset: offset as u64,
            frame,
        };
        if let Err(kind) = on_record(&rec) {
            return corrupt(path, offset as u64, scan.last_lsn, kind, None);
        }
        offset += frame.len;
        next_lsn += 1;
        summary.records += 1;
        summary.last_lsn = Some(frame.lsn);
        summary.valid_bytes = offset as u64;
        scan.last_lsn = Some(frame.lsn);
        scan.last_epoch = Some(header.epoch);
        scan.next_lsn = Some(next_lsn);
    }
    None
}

/// The verdict for a record that failed its checks: damage if something proves it was durable,
/// an unsynced tail if nothing does and it is in the last segment, and a refusal of a version-1
/// log that cannot tell while later segments hold records an open cannot drop.
#[allow(clippy::too_many_arguments)] // one row of the decision table needs all of them
fn bad_frame(
    seg: &SegmentInput<'_>,
    header: &SegmentHeader,
    format: FrameFormat,
    offset: usize,
    lsn: u64,
    error: FrameError,
    later: &[SegmentInput<'_>],
    scan: &LogScan,
) -> Option<LogVerdict> {
    let path = seg.path;
    let is_last = later.is_empty();
    let resync = find_next_valid_as(seg.bytes, offset + 1, header.salt(), lsn, format);
    let later = later.iter().map(|s| (s.segment_no, s.path, s.bytes));
    if let Some(proof) =
        super::proof::find_proof(seg.path, seg.bytes, header, format, offset, lsn, later)
    {
        let kind = CorruptionKind::DurableRecordDamaged { lsn, error, proof: Box::new(proof) };
        return corrupt(path, offset as u64, scan.last_lsn, kind, resync);
    }
    if is_last {
        return Some(LogVerdict::TornTail(TornTail {
            path: path.to_path_buf(),
            segment_no: seg.segment_no,
            offset: offset as u64,
            len: (seg.bytes.len() - offset) as u64,
            error: Some(error),
        }));
    }
    corrupt(path, offset as u64, scan.last_lsn, CorruptionKind::BadRecord(error), resync)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{decode_frame, encode_frame, segment_file_name, RECORD_HEADER_LEN};

    fn header(first_lsn: u64) -> SegmentHeader {
        SegmentHeader { store_id: [3; 16], epoch: 2, segment_no: 5, first_lsn }
    }

    /// A segment whose records carry `lsns` (the header's `first_lsn` is their start).
    fn segment(lsns: std::ops::Range<u64>) -> (Vec<u8>, Vec<usize>) {
        let h = header(lsns.start);
        let salt = h.salt();
        let mut bytes = h.encode().to_vec();
        let mut offsets = Vec::new();
        for lsn in lsns {
            offsets.push(bytes.len());
            encode_frame(&mut bytes, salt, lsn, lsn * 10, RecordKind::Batch, b"body-bytes");
        }
        (bytes, offsets)
    }

    fn walk(bytes: &[u8], first_lsn: u64) -> Vec<LenientItem<'_>> {
        let mut items = Vec::new();
        walk_segment_lenient(bytes, &header(first_lsn), &mut |i| items.push(i));
        items
    }

    #[test]
    fn lenient_walk_skips_a_damaged_record_and_resumes() {
        // LSNs far from 0, so a resync that looked for the wrong LSNs would miss them.
        let (mut bytes, offsets) = segment(1000..1005);
        assert_eq!(walk(&bytes, 1000).len(), 5);
        bytes[offsets[2] + RECORD_HEADER_LEN + 1] ^= 0x10;
        let items = walk(&bytes, 1000);
        let lsns: Vec<u64> = items
            .iter()
            .filter_map(|i| match i {
                LenientItem::Record { frame, .. } => Some(frame.lsn),
                LenientItem::Damaged { .. } => None,
            })
            .collect();
        assert_eq!(lsns, [1000, 1001, 1003, 1004]);
        assert!(items.contains(&LenientItem::Damaged {
            offset: offsets[2] as u64,
            len: (offsets[3] - offsets[2]) as u64,
            error: match decode_frame(&bytes[offsets[2]..], header(1000).salt()) {
                Err(e) => e,
                Ok(_) => panic!("damaged record verified"),
            },
        }));
    }

    #[test]
    fn lenient_walk_reports_a_torn_end_as_damage_to_the_end() {
        let (bytes, offsets) = segment(1..4);
        let cut = &bytes[..bytes.len() - 3];
        let items = walk(cut, 1);
        assert_eq!(items.len(), 3);
        assert!(matches!(
            items[2],
            LenientItem::Damaged { offset, len, error: FrameError::Truncated { .. } }
                if offset == offsets[2] as u64 && offset + len == cut.len() as u64
        ));
    }

    #[test]
    fn segment_files_are_listed_in_order_and_others_ignored() {
        let dir = tempfile::tempdir().unwrap();
        for name in [segment_file_name(10), segment_file_name(9), "x.wal".into()] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        std::fs::write(dir.path().join(format!("{}.torn-64", segment_file_name(9))), b"").unwrap();
        let got = list_segment_files(dir.path()).unwrap();
        let nos: Vec<u64> = got.iter().map(|(n, _)| *n).collect();
        assert_eq!(nos, [9, 10]);
        assert_eq!(got[0].1, dir.path().join(segment_file_name(9)));
    }
}
