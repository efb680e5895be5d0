//! The follower's reading engine: where it is in the log, how far it may read, and how it
//! catches up, all without writing anything.
//!
//! | situation | decision |
//! |---|---|
//! | next record's LSN > the durable position (or its segment's epoch > the position's) | not yet: stop |
//! | the bytes at the cursor are not a complete record that verifies | not yet, unless a later segment starts at the next LSN (the writer moved on: the bytes were a torn tail its next open cut) — then read there |
//! | the cursor's file is gone, or its header changed (number reused by a new epoch) | find the segment holding the next LSN again |
//! | no segment holds the next LSN but a later one exists (compaction removed it) | reload: newest snapshot, then the log after it |
//! | no `DURABLE` file (a store never opened by this version, a backup) | only segments followed by a later one count as durable (a roll fsyncs the segment first) |
//!
//! Growing files are read with `pread` ([`Io::read_at`]), never mapped: the writer may cut a
//! torn tail or remove a segment while it is read. Snapshots are read whole with [`Io::read`]:
//! they are renamed into place complete and only ever removed, never truncated.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{CorruptionKind, Error, Result};
use crate::format::files::DURABLE_FILE;
use crate::format::{
    decode_frame_as, parse_snapshot_file_name, DurableMark, FrameError, FrameFormat, RecordKind,
    SegmentHeader, DURABLE_LEN, SEGMENT_HEADER_LEN,
};
use crate::io::{Fs, Io, IoError, IoOp};
use crate::limits::{FOLLOWER_READ_CHUNK_BYTES, MAX_FOLLOWER_RELOAD_ATTEMPTS};
use crate::state::State;
use crate::wal::reader::segments_named;
use crate::wal::{RecordRef, WAL_DIR};

/// Verified records of one read, in LSN order, handed to whoever applies them.
pub(crate) type Batch<'a> = [RecordRef<'a>];
/// Applies a batch in LSN order; `Err((offset, kind))` for a record whose body is refused.
pub(crate) type Apply<'s> =
    dyn FnMut(&Batch<'_>) -> std::result::Result<(), (u64, CorruptionKind)> + 's;

/// The segment being read.
#[derive(Debug, Clone)]
struct Cursor {
    path: PathBuf,
    segment_no: u64,
    header: SegmentHeader,
    /// The frame layout of the segment's format version.
    format: FrameFormat,
    /// Offset of the next record to read.
    offset: u64,
}

/// Why a pass over the log stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Everything durable and readable is applied.
    CaughtUp,
    /// The next record was compacted away: load the newest snapshot.
    Reload,
}

/// What one read of the cursor's file found.
enum Read {
    /// Records were applied; read again.
    Progress(Cursor),
    /// The next record is beyond the durable position.
    Limit(Cursor),
    /// End of the valid bytes: nothing more here for now.
    Stalled(Cursor),
    /// The file is gone or was replaced.
    Lost,
    /// The file skips the next LSN.
    Gap,
}

/// Counters of the work done, for [`FollowerStats`](super::FollowerStats).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TailCounters {
    pub records_applied: u64,
    pub bytes_read: u64,
    pub reloads: u64,
}

/// The follower's position in the log.
pub(crate) struct Tail {
    io: Arc<dyn Io>,
    dir: PathBuf,
    wal_dir: PathBuf,
    store_id: [u8; 16],
    cursor: Option<Cursor>,
    /// LSN of the next record to apply.
    next_lsn: u64,
    /// The newest durable position read from `DURABLE`.
    pub mark: Option<DurableMark>,
    pub counters: TailCounters,
}

fn not_found(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::NotFound
}

impl Tail {
    pub fn new(io: Arc<dyn Io>, dir: &Path, store_id: [u8; 16]) -> Tail {
        Tail {
            io,
            dir: dir.to_path_buf(),
            wal_dir: dir.join(WAL_DIR),
            store_id,
            cursor: None,
            next_lsn: 1,
            mark: None,
            counters: TailCounters::default(),
        }
    }

    /// The durable position: the `DURABLE` file if it verifies and does not go back, else
    /// the last one read, else what the segment files prove. One `pread` when the file exists.
    pub fn durable_limit(&mut self) -> Result<u64> {
        let path = self.dir.join(DURABLE_FILE);
        match self.io.read_at(&path, 0, DURABLE_LEN) {
            Ok(bytes) => {
                if let Ok(m) = DurableMark::decode(&bytes) {
                    let newer = self.mark.is_none_or(|c| (m.epoch, m.lsn) >= (c.epoch, c.lsn));
                    if m.store_id == self.store_id && newer {
                        self.mark = Some(m);
                    }
                }
            }
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(IoError::new(IoOp::Read, &path, e).into()),
        }
        match self.mark {
            Some(m) => Ok(m.lsn),
            None => self.sealed_limit(),
        }
    }

    /// Without a published position: every record before the newest segment's first LSN.
    fn sealed_limit(&self) -> Result<u64> {
        let segments = self.segments()?;
        for (_, path) in segments.iter().rev() {
            if let Some((h, _)) = self.header(path)? {
                return Ok(h.first_lsn.saturating_sub(1));
            }
        }
        Ok(0)
    }

    fn segments(&self) -> Result<Vec<(u64, PathBuf)>> {
        match self.io.list_dir(&self.wal_dir) {
            Ok(names) => Ok(segments_named(&names, &self.wal_dir)),
            Err(e) if not_found(&e) => Ok(Vec::new()),
            Err(e) => Err(IoError::new(IoOp::ListDir, &self.wal_dir, e).into()),
        }
    }

    /// The header of a segment of this store and its frame layout, `None` if the file is gone
    /// or its header does not verify (yet).
    fn header(&self, path: &Path) -> Result<Option<(SegmentHeader, FrameFormat)>> {
        match self.io.read_at(path, 0, SEGMENT_HEADER_LEN) {
            Ok(b) => Ok(SegmentHeader::decode_versioned(&b)
                .ok()
                .filter(|(h, _)| h.store_id == self.store_id)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(IoError::new(IoOp::Read, path, e).into()),
        }
    }

    /// Applies every record from the cursor up to `limit`, through `apply`.
    pub fn advance(&mut self, limit: u64, apply: &mut Apply<'_>) -> Result<Stop> {
        // Each lost file or move to another segment is a step; a log that keeps changing
        // under us is read again at the next refresh.
        let mut steps = 0;
        loop {
            if self.next_lsn > limit || steps > MAX_FOLLOWER_RELOAD_ATTEMPTS {
                return Ok(Stop::CaughtUp);
            }
            let cursor = match self.cursor.take() {
                Some(c) => c,
                None => match self.locate()? {
                    Ok(c) => c,
                    Err(stop) => return Ok(stop),
                },
            };
            match self.read(cursor, limit, apply)? {
                Read::Progress(c) => self.cursor = Some(c),
                Read::Limit(c) => {
                    self.cursor = Some(c);
                    return Ok(Stop::CaughtUp);
                }
                Read::Stalled(c) => match self.after_stall(c)? {
                    Ok(next) => {
                        self.cursor = next;
                        steps += 1;
                    }
                    Err(stop) => return Ok(stop),
                },
                Read::Lost => steps += 1,
                Read::Gap => return Ok(Stop::Reload),
            }
        }
    }

    /// The segment holding the next LSN: the one with the largest first LSN at or below it.
    fn locate(&self) -> Result<std::result::Result<Cursor, Stop>> {
        let mut later = false;
        for (segment_no, path) in self.segments()?.into_iter().rev() {
            let Some((header, format)) = self.header(&path)? else { continue };
            if header.first_lsn <= self.next_lsn {
                let offset = SEGMENT_HEADER_LEN as u64;
                return Ok(Ok(Cursor { path, segment_no, header, format, offset }));
            }
            later = true;
        }
        Ok(Err(if later { Stop::Reload } else { Stop::CaughtUp }))
    }

    // Over 70 lines because the frame loop is the per-record rows of the decision table in
    // the module doc (not yet, skip, gap, apply), which read best side by side.
    fn read(&mut self, mut c: Cursor, limit: u64, apply: &mut Apply<'_>) -> Result<Read> {
        let epoch_limit = self.mark.map_or(u64::MAX, |m| m.epoch);
        if c.header.epoch > epoch_limit {
            return Ok(Read::Limit(c));
        }
        let salt = c.header.salt();
        let mut want = FOLLOWER_READ_CHUNK_BYTES;
        let buf = loop {
            let buf = match self.io.read_at(&c.path, c.offset, want) {
                Ok(b) => b,
                Err(e) if not_found(&e) => return Ok(Read::Lost),
                Err(e) => return Err(IoError::new(IoOp::Read, &c.path, e).into()),
            };
            self.counters.bytes_read += buf.len() as u64;
            // A record larger than one read: read it whole.
            match decode_frame_as(&buf, salt, c.format) {
                Err(FrameError::Truncated { needed, .. }) if buf.len() == want && needed > want => {
                    want = needed;
                }
                _ => break buf,
            }
        };
        let mut at = 0usize;
        let mut batch = Vec::new();
        let mut stop = None;
        while at < buf.len() {
            let Ok(frame) = decode_frame_as(&buf[at..], salt, c.format) else { break };
            // A clean close changes nothing and does not consume its LSN: the next epoch's
            // first record carries it.
            if RecordKind::from_u8(frame.kind) == Some(RecordKind::Close) {
                at += frame.len;
                continue;
            }
            if frame.lsn < self.next_lsn {
                at += frame.len;
                continue;
            }
            if frame.lsn != self.next_lsn {
                stop = Some(Read::Gap);
                break;
            }
            if frame.lsn > limit {
                stop = Some(Read::Limit(c.clone()));
                break;
            }
            let offset = c.offset + at as u64;
            let (segment_no, epoch, path) = (c.segment_no, c.header.epoch, c.path.as_path());
            batch.push(RecordRef { segment_no, epoch, path, offset, frame });
            self.next_lsn += 1;
            at += frame.len;
        }
        let applied = batch.len();
        if applied > 0 {
            apply(&batch).map_err(|(offset, kind)| Error::Corruption {
                file: c.path.clone(),
                offset,
                last_good_lsn: batch[0].frame.lsn.checked_sub(1),
                kind,
            })?;
            self.counters.records_applied += applied as u64;
        }
        drop(batch);
        c.offset += at as u64;
        Ok(match stop {
            Some(Read::Limit(_)) => Read::Limit(c),
            Some(other) => other,
            None if applied > 0 || (at > 0 && buf.len() == want) => Read::Progress(c),
            None => Read::Stalled(c),
        })
    }

    /// Nothing more verifies at the cursor: is the file still the one we read, and has the
    /// writer started a later segment at the next LSN?
    fn after_stall(&self, c: Cursor) -> Result<std::result::Result<Option<Cursor>, Stop>> {
        if self.header(&c.path)?.map(|(h, _)| h) != Some(c.header) {
            return Ok(Ok(None));
        }
        for (segment_no, path) in self.segments()? {
            if segment_no <= c.segment_no {
                continue;
            }
            let Some((header, format)) = self.header(&path)? else { break };
            if header.first_lsn == self.next_lsn {
                let offset = SEGMENT_HEADER_LEN as u64;
                return Ok(Ok(Some(Cursor { path, segment_no, header, format, offset })));
            }
            if header.first_lsn > self.next_lsn {
                return Ok(Err(Stop::Reload));
            }
            break;
        }
        Ok(Err(Stop::CaughtUp))
    }

    /// A new state: the newest snapshot that verifies, then the log after it up to `limit`.
    /// `None`: compaction kept removing files under it; try again later.
    pub fn load(&mut self, limit: u64) -> Result<Option<State>> {
        self.counters.reloads += 1;
        for _ in 0..MAX_FOLLOWER_RELOAD_ATTEMPTS {
            let Some(mut state) = self.newest_snapshot()? else { continue };
            self.next_lsn = state.applied_lsn + 1;
            self.cursor = None;
            let stop = self.advance(limit, &mut |batch| {
                for r in batch {
                    state.apply_frame(&r.frame).map_err(|k| (r.offset, k))?;
                }
                Ok(())
            })?;
            if stop == Stop::CaughtUp {
                return Ok(Some(state));
            }
        }
        Ok(None)
    }

    /// The state of the newest snapshot that verifies (an empty state without one); `None`
    /// if a snapshot listed was removed before it was read (list again).
    fn newest_snapshot(&self) -> Result<Option<State>> {
        let names = Fs(&*self.io).list_dir(&self.dir)?;
        let mut snapshots: Vec<(u64, &String)> =
            names.iter().filter_map(|n| parse_snapshot_file_name(n).map(|l| (l, n))).collect();
        snapshots.sort_by(|a, b| b.cmp(a));
        for (lsn, name) in snapshots {
            let path = self.dir.join(name);
            let bytes = match self.io.read(&path) {
                Ok(b) => b,
                Err(e) if not_found(&e) => return Ok(None),
                Err(e) => return Err(IoError::new(IoOp::Read, &path, e).into()),
            };
            // A damaged snapshot is skipped, as an open skips it.
            if let Ok((state, h)) = State::from_snapshot(&bytes, self.store_id) {
                if h.lsn == lsn {
                    return Ok(Some(state));
                }
            }
        }
        Ok(Some(State::default()))
    }

    /// Where the next record to apply is: (LSN, segment number or 0).
    pub fn position(&self) -> (u64, u64) {
        (self.next_lsn, self.cursor.as_ref().map_or(0, |c| c.segment_no))
    }

    /// Moves past records compaction removed, to the first LSN the log still holds; returns
    /// it (`None`: no segment verifies).
    pub fn skip_to_log_start(&mut self) -> Result<Option<u64>> {
        for (_, path) in self.segments()? {
            if let Some((h, _)) = self.header(&path)? {
                self.restart_at(h.first_lsn.max(self.next_lsn));
                return Ok(Some(self.next_lsn));
            }
        }
        Ok(None)
    }

    /// Puts the cursor back after a reload that was not taken.
    pub fn restart_at(&mut self, next_lsn: u64) {
        self.next_lsn = next_lsn;
        self.cursor = None;
    }
}
