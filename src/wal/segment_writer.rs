//! The segment file currently appended to: create, roll, write a group. Only the commit
//! leader touches it.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::commit::PendingRecord;
use super::counters::WalCounters;
use crate::error::{Error, IoOp, Result};
use crate::format::{encode_frame, segment_file_name, SegmentHeader, SEGMENT_HEADER_LEN};
use crate::io::{Io, IoFile};

/// Above this capacity the group buffer is released after a write, so one large group does
/// not pin its memory for the life of the store.
const MAX_RETAINED_GROUP_BUF_BYTES: usize = 4 << 20;

/// A failed step of the write path: what, where, and the OS error (kept as is, so the poison
/// cause names the step that failed).
pub(crate) type StepError = (IoOp, PathBuf, std::io::Error);

/// The segment currently appended to.
pub(crate) struct SegmentWriter {
    io: Arc<dyn Io>,
    wal_dir: PathBuf,
    store_id: [u8; 16],
    epoch: u64,
    segment_no: u64,
    path: PathBuf,
    file: Box<dyn IoFile>,
    salt: u32,
    pub(super) bytes: u64,
    target_bytes: u64,
    buf: Vec<u8>,
    /// LSN the next record written will carry.
    pub(super) next_lsn: u64,
    /// First LSN of this segment.
    pub(super) first_lsn: u64,
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
            .map_err(|(op, path, source)| Error::Io { op, path, source })
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
        let mut file = io.create_new(&path).map_err(|e| (IoOp::Open, path.clone(), e))?;
        file.write_all(&header.encode()).map_err(|e| (IoOp::Write, path.clone(), e))?;
        file.sync_data().map_err(|e| (IoOp::Sync, path.clone(), e))?;
        io.sync_dir(wal_dir).map_err(|e| (IoOp::SyncDir, wal_dir.to_path_buf(), e))?;
        Ok(SegmentWriter {
            io,
            wal_dir: wal_dir.to_path_buf(),
            store_id,
            epoch,
            segment_no,
            path,
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

    /// Ends the current segment (fsynced) and starts the next one at `first_lsn`.
    pub(super) fn roll(&mut self, first_lsn: u64, counters: &WalCounters) -> Result<(), StepError> {
        self.file.sync_data().map_err(|e| (IoOp::Sync, self.path.clone(), e))?;
        let next = SegmentWriter::create_raw(
            self.io.clone(),
            &self.wal_dir,
            self.store_id,
            self.epoch,
            self.segment_no + 1,
            first_lsn,
            self.target_bytes,
        )?;
        *self = next;
        counters.segments_created.fetch_add(1, Ordering::Relaxed);
        counters.active_segment_no.store(self.segment_no, Ordering::Relaxed);
        counters.wal_bytes_on_disk.fetch_add(self.bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Frames and writes one group; fsyncs it if `sync`.
    pub(super) fn write_group<P>(
        &mut self,
        group: &[PendingRecord<P>],
        sync: bool,
        counters: &WalCounters,
    ) -> Result<(), StepError> {
        if let Some(first) = group.first() {
            if self.bytes >= self.target_bytes {
                self.roll(first.lsn, counters)?;
            }
            self.buf.clear();
            for r in group {
                encode_frame(&mut self.buf, self.salt, r.lsn, r.timestamp_unix_ns, r.kind, &r.body);
            }
            self.file.write_all(&self.buf).map_err(|e| (IoOp::Write, self.path.clone(), e))?;
            self.bytes += self.buf.len() as u64;
            self.next_lsn = group.last().map_or(self.next_lsn, |r| r.lsn + 1);
            counters.bytes_written.fetch_add(self.buf.len() as u64, Ordering::Relaxed);
            counters.wal_bytes_on_disk.fetch_add(self.buf.len() as u64, Ordering::Relaxed);
            if self.buf.capacity() > MAX_RETAINED_GROUP_BUF_BYTES {
                self.buf = Vec::new();
            }
        }
        if sync {
            self.file.sync_data().map_err(|e| (IoOp::Sync, self.path.clone(), e))?;
            counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
