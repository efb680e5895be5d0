//! `follow`: print records as a live store appends them.
//!
//! Polls the newest segment's size, decodes whatever complete records appeared after the last
//! one printed (with the library's `decode_frame`), and moves on to the next segment once one
//! exists. A record being written shows up once it is complete. Reads only.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use walden::format::{decode_frame_as, FrameFormat, RecordKind, SegmentHeader, SEGMENT_HEADER_LEN};
use walden::wal::{list_segment_files, RecordRef};

use crate::commands::{print_record, select};
use crate::out::{Fail, Out};
use crate::source::{load, InputError, SourceKind};
use crate::FollowArgs;

struct Cursor {
    segment_no: u64,
    path: PathBuf,
    header: SegmentHeader,
    offset: u64,
}

/// Bytes of `path` from `offset` on (empty if the file is gone or shorter).
fn read_from(path: &Path, offset: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.read_to_end(&mut buf);
        }
    }
    buf
}

fn header_of(path: &Path) -> Option<SegmentHeader> {
    versioned_header_of(path).map(|(h, _)| h)
}

/// [`header_of`], with the frame layout the segment's format version gives its records.
fn versioned_header_of(path: &Path) -> Option<(SegmentHeader, FrameFormat)> {
    let mut head = read_from(path, 0);
    head.truncate(SEGMENT_HEADER_LEN);
    SegmentHeader::decode_versioned(&head).ok()
}

/// The first segment numbered `>= from` whose header verifies.
fn open_segment(wal_dir: &Path, from: u64) -> Option<Cursor> {
    let segs = list_segment_files(wal_dir).ok()?;
    let (no, path) = segs.into_iter().find(|(n, _)| *n >= from)?;
    let header = header_of(&path)?;
    Some(Cursor { segment_no: no, path, header, offset: SEGMENT_HEADER_LEN as u64 })
}

/// `follow`.
pub fn follow(out: &mut Out, a: &FollowArgs) -> Result<i32, Fail> {
    let src = load(&a.path)?;
    let Some(wal_dir) = src.wal_dir.clone().filter(|_| src.kind != SourceKind::SegmentFile) else {
        return Err(InputError {
            path: a.path.clone(),
            reason: "follow needs a store or wal directory".into(),
        }
        .into());
    };
    let (recs, scan) = src.records();
    let mut printed = 0u64;
    let limit_hit =
        |n: u64| a.max_records.is_some_and(|m| n >= m) || a.filters.limit.is_some_and(|m| n >= m);
    if a.from_start {
        for r in &recs {
            if limit_hit(printed) {
                return Ok(0);
            }
            if let Some(ops) = select(r, &a.filters) {
                print_record(out, r, &ops)?;
                printed += 1;
            }
        }
    }
    out.flush()?;
    // Continue after the last valid record of the newest segment read.
    let mut cursor = scan.segments.last().and_then(|s| {
        s.header.map(|header| Cursor {
            segment_no: s.segment_no,
            path: s.path.clone(),
            header,
            offset: s.valid_bytes,
        })
    });
    let next_from = scan.segments.last().map_or(0, |s| s.segment_no);
    let poll = Duration::from_millis(a.poll_ms.max(1));
    let mut idle_since = Instant::now();
    loop {
        if limit_hit(printed) {
            return Ok(0);
        }
        if cursor.is_none() {
            cursor = open_segment(&wal_dir, next_from);
        }
        let mut progressed = false;
        if let Some(c) = cursor.as_mut() {
            // The file was removed and its number reused by a new open: start it over.
            if header_of(&c.path).is_some_and(|h| h != c.header) {
                c.header = header_of(&c.path).unwrap_or(c.header);
                c.offset = SEGMENT_HEADER_LEN as u64;
            }
            let buf = read_from(&c.path, c.offset);
            let salt = c.header.salt();
            let format = versioned_header_of(&c.path).map_or(FrameFormat::V2, |(_, f)| f);
            let mut at = 0usize;
            while let Ok(frame) = decode_frame_as(&buf[at..], salt, format) {
                if RecordKind::from_u8(frame.kind) == Some(RecordKind::Close) {
                    // A clean close: no data to print; the next open starts a new segment.
                    at += frame.len;
                    progressed = true;
                    continue;
                }
                let r = RecordRef {
                    segment_no: c.segment_no,
                    epoch: c.header.epoch,
                    path: &c.path,
                    offset: c.offset + at as u64,
                    frame,
                };
                if let Some(ops) = select(&r, &a.filters) {
                    print_record(out, &r, &ops)?;
                    out.flush()?;
                    printed += 1;
                }
                at += frame.len;
                progressed = true;
                if limit_hit(printed) {
                    return Ok(0);
                }
            }
            c.offset += at as u64;
            if !progressed {
                // Move on once a later segment exists: the writer only starts one after
                // finishing this.
                if let Some(next) = open_segment(&wal_dir, c.segment_no + 1) {
                    *c = next;
                    progressed = true;
                }
            }
        }
        if progressed {
            idle_since = Instant::now();
            continue;
        }
        if a.exit_after_idle_ms.is_some_and(|ms| idle_since.elapsed() >= Duration::from_millis(ms))
        {
            return Ok(0);
        }
        std::thread::sleep(poll);
    }
}
