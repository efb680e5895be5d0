//! The segment file currently appended to: create, roll, write a group. Only the commit
//! leader touches it.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::counters::WalCounters;
use super::durable_mark::MarkPublisher;
use crate::error::{Error, Result};
use crate::format::{
    encode_frame_with, segment_file_name, RecordKind, SegmentHeader, Watermark, SEGMENT_HEADER_LEN,
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
    /// Where the durable position is published after each fsync, for followers.
    mark: Option<MarkPublisher>,
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
        Ok(SegmentWriter {
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
            mark: None,
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

    /// Publishes the durable position after every fsync from now on (for followers).
    pub fn with_mark(mut self, mark: MarkPublisher) -> SegmentWriter {
        self.mark = Some(mark);
        self
    }

    /// Everything written is durable: tell followers.
    fn publish_durable(&mut self) {
        if let Some(mark) = self.mark.as_mut() {
            mark.publish(self.next_lsn - 1);
        }
    }

    /// Ends the current segment (fsynced) and starts the next one at `first_lsn`.
    pub(super) fn roll(&mut self, first_lsn: u64, counters: &WalCounters) -> Result<(), StepError> {
        self.file.sync_data()?;
        self.publish_durable();
        let next = SegmentWriter::create_raw(
            self.io.clone(),
            &self.wal_dir,
            self.store_id,
            self.epoch,
            self.segment_no + 1,
            first_lsn,
            self.target_bytes,
        )?;
        let mark = self.mark.take();
        *self = next;
        self.mark = mark;
        counters.segments_created.fetch_add(1, Ordering::Relaxed);
        counters.active_segment_no.store(self.segment_no, Ordering::Relaxed);
        counters.wal_bytes_on_disk.fetch_add(self.bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Frames and writes one group (records in LSN order), every record carrying `watermark`
    /// (the last record known durable when the group was taken); fsyncs it if `sync`.
    pub(super) fn write_group<'a>(
        &mut self,
        mut group: impl Iterator<Item = FrameParts<'a>>,
        watermark: Watermark,
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
                encode_frame_with(
                    &mut self.buf,
                    self.salt,
                    lsn,
                    timestamp_unix_ns,
                    kind,
                    watermark,
                    body,
                );
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
            self.publish_durable();
        }
        Ok(())
    }

    /// Appends the close marker (everything written is durable, and `watermark` names the last
    /// record) and fsyncs it. The marker carries the LSN the next record will carry and does
    /// not consume it; nothing is written to this segment after it.
    pub(super) fn write_close(
        &mut self,
        watermark: Watermark,
        timestamp_unix_ns: u64,
    ) -> Result<(), StepError> {
        self.buf.clear();
        encode_frame_with(
            &mut self.buf,
            self.salt,
            self.next_lsn,
            timestamp_unix_ns,
            RecordKind::Close,
            watermark,
            &[],
        );
        self.file.write_all(&self.buf)?;
        self.bytes += self.buf.len() as u64;
        self.file.sync_data()
    }
}
