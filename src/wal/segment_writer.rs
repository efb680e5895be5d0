//! The segment file currently appended to: create, roll, write a group. Only the commit
//! leader touches it.
//!
//! A roll under leadership holds every writer, so the slow part of starting a segment — the
//! file's creation and the directory fsync that makes it survive a crash — can be done ahead,
//! outside leadership: [`Spares::prepare`] creates the next segment's file, empty, and fsyncs
//! the directory; the roll then only writes the header into it (made durable by the first
//! fsync of the segment, before any record in it is acknowledged). An empty last segment is
//! what a crash during any segment creation leaves, and recovery already removes it.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;

use super::counters::WalCounters;
use crate::error::{Error, Result};
use crate::format::{
    encode_frame, segment_file_name, RecordKind, SegmentHeader, SEGMENT_HEADER_LEN,
};
use crate::io::{Fs, Io, IoError, SeamFile};
use crate::limits::MAX_RETAINED_GROUP_BUF_BYTES;

/// A failed step of the write path: what, where, and the OS error (kept as is, so the poison
/// cause names the step that failed).
pub(crate) type StepError = IoError;

/// One record to frame: `(lsn, timestamp_unix_ns, kind, body)`.
pub(crate) type FrameParts<'a> = (u64, u64, RecordKind, &'a [u8]);

/// The segment currently appended to.
pub(crate) struct SegmentWriter {
    io: Arc<dyn Io>,
    wal_dir: PathBuf,
    store_id: [u8; 16],
    epoch: u64,
    segment_no: u64,
    file: SeamFile,
    salt: u32,
    pub(super) bytes: u64,
    target_bytes: u64,
    buf: Vec<u8>,
    /// LSN the next record written will carry.
    pub(super) next_lsn: u64,
    /// First LSN of this segment.
    pub(super) first_lsn: u64,
    /// The next segment's file, if prepared ahead.
    pub(super) spares: Arc<Spares>,
}

/// A segment file created ahead (empty, its directory entry fsynced) for the next roll.
pub(crate) struct Spare {
    segment_no: u64,
    path: PathBuf,
    file: SeamFile,
    /// Whether the directory fsync after its creation returned Ok (else the roll redoes it).
    dir_synced: bool,
}

/// The slot for the next segment's file, shared by the writer (which rolls into it) and
/// whoever prepares it outside leadership. Its mutex orders the two: a roll that finds no
/// spare creates its file itself, and the active segment number only changes under it.
pub(crate) struct Spares {
    io: Arc<dyn Io>,
    wal_dir: PathBuf,
    spare: Mutex<Option<Spare>>,
    /// The segment being appended to (a spare is always this + 1).
    active_segment_no: Mutex<u64>,
}

impl Spares {
    /// Creates the next segment's file now, if it is not there yet (the seal's roll then costs
    /// one header write instead of a create and two fsyncs). Writes nothing a reader sees: a
    /// failure here fails the caller, never the log.
    pub fn prepare(&self) -> Result<()> {
        let mut spare = self.spare.lock();
        let next = *self.active_segment_no.lock() + 1;
        if spare.as_ref().is_some_and(|s| s.segment_no == next) {
            return Ok(());
        }
        let path = self.wal_dir.join(segment_file_name(next));
        let file = Fs(&*self.io).create_new(&path)?;
        // Kept even if the directory fsync fails: the file exists, so the roll must use it
        // (and fsync the directory itself) rather than try to create it again.
        let synced = Fs(&*self.io).sync_dir(&self.wal_dir);
        *spare = Some(Spare { segment_no: next, path, file, dir_synced: synced.is_ok() });
        synced?;
        Ok(())
    }

    /// Removes an unused spare (at close, or when a seal had nothing to roll), so a store at
    /// rest never holds an empty segment file.
    pub fn discard(&self) -> Result<()> {
        if let Some(s) = self.spare.lock().take() {
            drop(s.file);
            Fs(&*self.io).remove_file(&s.path)?;
            Fs(&*self.io).sync_dir(&self.wal_dir)?;
        }
        Ok(())
    }
}

impl SegmentWriter {
    /// Creates segment `segment_no`: header written and fsynced, directory fsynced.
    pub fn create(
        io: Arc<dyn Io>,
        wal_dir: &Path,
        store_id: [u8; 16],
        epoch: u64,
        segment_no: u64,
        first_lsn: u64,
        target_bytes: u64,
    ) -> Result<SegmentWriter> {
        Self::create_raw(io, wal_dir, store_id, epoch, segment_no, first_lsn, target_bytes)
            .map_err(Error::from)
    }

    /// [`SegmentWriter::create`], with the failing step as the write path reports it.
    fn create_raw(
        io: Arc<dyn Io>,
        wal_dir: &Path,
        store_id: [u8; 16],
        epoch: u64,
        segment_no: u64,
        first_lsn: u64,
        target_bytes: u64,
    ) -> Result<SegmentWriter, StepError> {
        let header = SegmentHeader { store_id, epoch, segment_no, first_lsn };
        let path = wal_dir.join(segment_file_name(segment_no));
        let mut file = Fs(&*io).create_new(&path)?;
        file.write_all(&header.encode())?;
        file.sync_data()?;
        Fs(&*io).sync_dir(wal_dir)?;
        let spares = Arc::new(Spares {
            io: io.clone(),
            wal_dir: wal_dir.to_path_buf(),
            spare: Mutex::new(None),
            active_segment_no: Mutex::new(segment_no),
        });
        Ok(SegmentWriter {
            spares,
            io,
            wal_dir: wal_dir.to_path_buf(),
            store_id,
            epoch,
            segment_no,
            file,
            salt: header.salt(),
            bytes: SEGMENT_HEADER_LEN as u64,
            target_bytes,
            buf: Vec::new(),
            next_lsn: first_lsn,
            first_lsn,
        })
    }

    /// Number of the segment being appended to.
    pub fn segment_no(&self) -> u64 {
        self.segment_no
    }

    /// Epoch this writer writes.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Ends the current segment (fsynced) and starts the next one at `first_lsn`, in the
    /// prepared spare file if there is one.
    pub(super) fn roll(&mut self, first_lsn: u64, counters: &WalCounters) -> Result<(), StepError> {
        self.file.sync_data()?;
        let spares = self.spares.clone();
        let mut spare = spares.spare.lock();
        let next_no = self.segment_no + 1;
        let next = match spare.take() {
            Some(s) if s.segment_no == next_no => {
                let header = SegmentHeader {
                    store_id: self.store_id,
                    epoch: self.epoch,
                    segment_no: next_no,
                    first_lsn,
                };
                let mut file = s.file;
                if !s.dir_synced {
                    Fs(&*self.io).sync_dir(&self.wal_dir)?;
                }
                file.write_all(&header.encode())?;
                SegmentWriter {
                    io: self.io.clone(),
                    wal_dir: self.wal_dir.clone(),
                    store_id: self.store_id,
                    epoch: self.epoch,
                    segment_no: next_no,
                    file,
                    salt: header.salt(),
                    bytes: SEGMENT_HEADER_LEN as u64,
                    target_bytes: self.target_bytes,
                    buf: Vec::new(),
                    next_lsn: first_lsn,
                    first_lsn,
                    spares: spares.clone(),
                }
            }
            stale => {
                debug_assert!(stale.is_none(), "a spare is always the next segment");
                let mut w = SegmentWriter::create_raw(
                    self.io.clone(),
                    &self.wal_dir,
                    self.store_id,
                    self.epoch,
                    next_no,
                    first_lsn,
                    self.target_bytes,
                )?;
                w.spares = spares.clone();
                w
            }
        };
        *self = next;
        *spares.active_segment_no.lock() = self.segment_no;
        drop(spare);
        counters.segments_created.fetch_add(1, Ordering::Relaxed);
        counters.active_segment_no.store(self.segment_no, Ordering::Relaxed);
        counters.wal_bytes_on_disk.fetch_add(self.bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Frames and writes one group (records in LSN order); fsyncs it if `sync`.
    pub(super) fn write_group<'a>(
        &mut self,
        mut group: impl Iterator<Item = FrameParts<'a>>,
        sync: bool,
        counters: &WalCounters,
    ) -> Result<(), StepError> {
        if let Some(first) = group.next() {
            if self.bytes >= self.target_bytes {
                self.roll(first.0, counters)?;
            }
            self.buf.clear();
            let mut last_lsn = first.0;
            for (lsn, timestamp_unix_ns, kind, body) in std::iter::once(first).chain(group) {
                encode_frame(&mut self.buf, self.salt, lsn, timestamp_unix_ns, kind, body);
                last_lsn = lsn;
            }
            self.file.write_all(&self.buf)?;
            self.bytes += self.buf.len() as u64;
            self.next_lsn = last_lsn + 1;
            counters.bytes_written.fetch_add(self.buf.len() as u64, Ordering::Relaxed);
            counters.wal_bytes_on_disk.fetch_add(self.buf.len() as u64, Ordering::Relaxed);
            if self.buf.capacity() > MAX_RETAINED_GROUP_BUF_BYTES {
                self.buf = Vec::new();
            }
        }
        if sync {
            self.file.sync_data()?;
            counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
