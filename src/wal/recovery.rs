//! Acting on the reader's verdict at open: the only code that truncates the log.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{CorruptionKind, Error, Result};
use crate::format::files::torn_file_name;
use crate::format::{SegmentHeader, Watermark};
use crate::io::{FileBytes, Fs, Io};

use super::counters::elapsed_us;
use super::reader::{
    scan_log, segments_named, LogVerdict, RecordRef, SegmentInput, SegmentSummary, TornTail,
};

/// What replaying the log found and did (the store reports it in its recovery stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReplayReport {
    /// Records replayed (those above the snapshot).
    pub records_replayed: u64,
    /// Segment files read.
    pub segments_read: u64,
    /// Bytes of log read.
    pub bytes_read: u64,
    /// Time the replay took, in microseconds.
    pub replay_us: u64,
    /// The unsynced tail cut off the log, if any.
    pub torn_tail: Option<TornTail>,
    /// Where the cut bytes were kept for forensics.
    pub torn_saved_to: Option<PathBuf>,
}

/// Where the writer continues after recovery.
pub(crate) struct Recovered {
    /// First LSN the log holds (its first segment's `first_lsn`), and that segment's path.
    pub first: Option<(u64, PathBuf)>,
    pub next_lsn: u64,
    pub last_timestamp_unix_ns: u64,
    pub max_epoch: u64,
    /// The last valid record of the log (made durable by recovery), if any.
    pub last_record: Option<Watermark>,
    pub next_segment_no: u64,
    /// Bytes of the segment files left on disk.
    pub wal_bytes_on_disk: u64,
    pub report: ReplayReport,
}

/// Segment files in `wal_dir`, sorted by number.
pub(crate) fn list_segments(io: &dyn Io, wal_dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    Ok(segments_named(&Fs(io).list_dir(wal_dir)?, wal_dir))
}

/// The bytes of every segment in `segs` (memory-mapped when large).
pub(crate) fn read_segments(io: &dyn Io, segs: &[(u64, PathBuf)]) -> Result<Vec<FileBytes>> {
    segs.iter().map(|(_, p)| Fs(io).read(p).map_err(Error::from)).collect()
}

/// The reader's view of segments read by [`read_segments`].
pub(crate) fn segment_inputs<'a>(
    segs: &'a [(u64, PathBuf)],
    files: &'a [FileBytes],
) -> Vec<SegmentInput<'a>> {
    segs.iter()
        .zip(files)
        .map(|((no, path), bytes)| SegmentInput { segment_no: *no, path, bytes })
        .collect()
}

/// A name for the cut bytes that does not exist yet.
fn torn_path(io: &dyn Io, wal_dir: &Path, segment_no: u64, offset: u64) -> Result<PathBuf> {
    let names = Fs(io).list_dir(wal_dir)?;
    let mut attempt = 0;
    let mut name = torn_file_name(segment_no, offset, attempt);
    while names.contains(&name) {
        attempt += 1;
        name = torn_file_name(segment_no, offset, attempt);
    }
    Ok(wal_dir.join(name))
}

/// The index of the first segment the log starts at, given a snapshot at `snapshot_lsn`: the
/// highest-numbered segment whose header verifies and whose first LSN is at most
/// `snapshot_lsn + 1`. Every segment before it holds only records the snapshot covers.
fn first_uncovered(files: &[FileBytes], snapshot_lsn: u64) -> usize {
    if snapshot_lsn == 0 {
        return 0;
    }
    (0..files.len())
        .rev()
        .find(|&i| SegmentHeader::decode(&files[i]).is_ok_and(|h| h.first_lsn <= snapshot_lsn + 1))
        .unwrap_or(0)
}

/// Keeps the bytes of an unsynced tail in a `.torn-*` file (durably), then cuts them off.
fn cut_tail(io: &dyn Io, wal_dir: &Path, t: &TornTail, bytes: &[u8]) -> Result<PathBuf> {
    let saved = torn_path(io, wal_dir, t.segment_no, t.offset)?;
    let mut f = Fs(io).create_new(&saved)?;
    f.write_all(bytes)?;
    f.sync_data()?;
    drop(f);
    Fs(io).sync_dir(wal_dir)?;
    if t.offset > 0 {
        Fs(io).truncate(&t.path, t.offset)?;
    }
    tracing::warn!(
        segment = %t.path.display(),
        offset = t.offset,
        bytes = t.len,
        reason = %t.error.map_or_else(|| "segment header never completed".to_owned(), |e| e.to_string()),
        saved_to = %saved.display(),
        "recovery cut an unsynced tail: no later record or segment proves it was durable"
    );
    Ok(saved)
}

/// Replays the log through `apply` (records up to `skip_upto`, already in the snapshot, are
/// verified but not applied), cuts an unsynced tail (keeping the bytes in a `.torn-*` file),
/// refuses damage in synced data, removes segments the snapshot covers, and makes durable what
/// it replayed. Whether the log starts early enough is the caller's check.
// Over 70 lines because it is the open's recovery protocol in its order (docs/FORMAT.md,
// "Recovery"): read, classify, cut, remove covered and empty segments, make durable.
pub(crate) fn recover(
    io: &dyn Io,
    wal_dir: &Path,
    store_id: [u8; 16],
    skip_upto: u64,
    apply: &mut dyn FnMut(&RecordRef<'_>) -> Result<(), CorruptionKind>,
) -> Result<Recovered> {
    let started = Instant::now();
    let all = list_segments(io, wal_dir)?;
    let all_files = read_segments(io, &all)?;
    let start = first_uncovered(&all_files, skip_upto);
    let (covered, segs) = all.split_at(start);
    let files = &all_files[start..];
    let inputs = segment_inputs(segs, files);
    let mut last_ts = 0;
    let mut replayed = 0u64;
    let scan = scan_log(&inputs, Some(store_id), &mut |r| {
        last_ts = r.frame.timestamp_unix_ns;
        if r.frame.lsn <= skip_upto {
            return Ok(());
        }
        replayed += 1;
        apply(r)
    });
    let mut stats = ReplayReport {
        records_replayed: replayed,
        segments_read: segs.len() as u64,
        bytes_read: files.iter().map(|f| f.len() as u64).sum(),
        ..ReplayReport::default()
    };
    let mut last_segment_records = scan.segments.last().map(|s| s.records);
    let mut wal_bytes_on_disk: u64 = files.iter().map(|f| f.len() as u64).sum();
    match &scan.verdict {
        LogVerdict::Clean => {}
        LogVerdict::Corrupt(c) => {
            return Err(Error::Corruption {
                file: c.path.clone(),
                offset: c.offset,
                last_good_lsn: c.last_good_lsn,
                kind: c.kind.clone(),
            });
        }
        LogVerdict::TornTail(t) => {
            let bytes = &files.last().expect("a torn tail has a segment")[t.offset as usize..];
            stats.torn_saved_to = Some(cut_tail(io, wal_dir, t, bytes)?);
            stats.torn_tail = Some(t.clone());
            wal_bytes_on_disk -= t.len;
            if t.offset == 0 {
                // The header never completed: the segment holds nothing.
                last_segment_records = Some(0);
            }
        }
    }
    drop(inputs);
    let files_len_last = files.last().map_or(0, |f| f.len() as u64);
    drop(all_files);
    // Covered segments: a compaction's deletions the power cut left behind. Any subset of them
    // may be here; the snapshot (made durable before they were deleted) holds their records.
    for (_, path) in covered {
        Fs(io).remove_file(path)?;
        tracing::info!(segment = %path.display(), "removed a log segment the snapshot covers");
    }
    if !covered.is_empty() {
        Fs(io).sync_dir(wal_dir)?;
    }
    // A last segment without records is removed and its number reused, so opening and closing
    // a store without writing does not pile up files.
    let mut next_segment_no = all.last().map_or(1, |(no, _)| no + 1);
    let mut kept = scan.segments.len();
    if let (Some((no, path)), Some(0)) = (segs.last(), last_segment_records) {
        Fs(io).remove_file(path)?;
        Fs(io).sync_dir(wal_dir)?;
        next_segment_no = *no;
        kept -= 1;
        let cut = stats.torn_tail.as_ref().map_or(0, |t| t.len);
        wal_bytes_on_disk = wal_bytes_on_disk.saturating_sub(files_len_last.saturating_sub(cut));
    }
    make_replay_durable(io, wal_dir, &scan.segments[..kept])?;
    stats.replay_us = elapsed_us(started);
    Ok(Recovered {
        first: scan.first_lsn.zip(segs.first().map(|(_, p)| p.clone())),
        next_lsn: scan.next_lsn.unwrap_or(skip_upto + 1).max(skip_upto + 1),
        last_timestamp_unix_ns: last_ts,
        max_epoch: scan.max_epoch,
        last_record: scan
            .last_lsn
            .zip(scan.last_epoch)
            .map(|(lsn, epoch)| Watermark { epoch, lsn }),
        next_segment_no,
        wal_bytes_on_disk,
        report: stats,
    })
}

/// fdatasyncs the last segment of every epoch in `segments` (a roll fdatasynced every other
/// one) unless a close marker ends it (the clean close fdatasynced everything before writing
/// it), then `wal/`: after `kill -9` the page cache holds records no fsync covered, and the new
/// epoch must not acknowledge, show or build on them before they are durable.
fn make_replay_durable(io: &dyn Io, wal_dir: &Path, segments: &[SegmentSummary]) -> Result<()> {
    let mut synced = false;
    for (i, s) in segments.iter().enumerate() {
        let epoch = s.header.map(|h| h.epoch);
        let ends_epoch = segments.get(i + 1).is_none_or(|n| n.header.map(|h| h.epoch) != epoch);
        if ends_epoch && s.close_offset.is_none() {
            Fs(io).sync_file(&s.path)?;
            synced = true;
        }
    }
    if synced {
        Fs(io).sync_dir(wal_dir)?;
    }
    Ok(())
}
