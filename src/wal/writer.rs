//! Appending to the log: segment files and group commit.
//!
//! Writers enqueue records under one mutex, which assigns LSNs in order. The first writer that
//! finds no leader becomes the leader: it takes everything queued, frames it into one buffer,
//! makes one `write` and (if any record in it needs durability) one `fdatasync`, outside the
//! mutex, then publishes the new written/durable LSNs and wakes everyone. Writers that queued
//! while the leader was busy are covered by the next leader's write and fsync, so a single fsync
//! acknowledges many commits. A record is acknowledged only after an fsync that began after the
//! record was written.
//!
//! A failed write or fsync poisons the log for good: every queued record fails, no later write is
//! accepted, and the fsync is never retried (after a failed fsync the kernel may have dropped the
//! dirty pages; a retry could report success for data that is gone).

use std::mem;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, IoOp, PoisonCause, Result};
use crate::format::{encode_frame, segment_file_name, RecordKind, SegmentHeader};
use crate::io::{Io, IoFile};
use crate::limits::MAX_GROUP_BYTES;
use crate::store::overlay::Overlay;
use crate::store::Durability;

/// A record waiting in the queue for the leader.
pub(crate) struct PendingRecord {
    pub lsn: u64,
    pub timestamp_unix_ns: u64,
    pub kind: RecordKind,
    pub body: Vec<u8>,
    /// In-memory effects to apply once the record is in the log.
    pub effects: crate::store::Effects,
}

/// What a writer holds to wait for its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub lsn: u64,
    enqueued: Instant,
}

pub(crate) struct Queue {
    next_lsn: u64,
    last_timestamp_unix_ns: u64,
    pending: Vec<PendingRecord>,
    written_lsn: u64,
    durable_lsn: u64,
    /// Highest LSN some waiter needs fsynced.
    sync_target: u64,
    leader: bool,
    poisoned: Option<PoisonCause>,
    closed: bool,
    /// Document states sequenced but not yet applied (see `store::overlay`).
    pub overlay: Overlay,
}

/// Counters for `Store::stats`.
#[derive(Debug, Default)]
pub(crate) struct WalCounters {
    pub fsyncs: AtomicU64,
    pub groups: AtomicU64,
    pub records: AtomicU64,
    pub max_group_records: AtomicU64,
    pub bytes_written: AtomicU64,
    pub segments_created: AtomicU64,
    /// Number of the segment being appended to (kept here so stats never wait on the I/O).
    pub active_segment_no: AtomicU64,
    /// Bytes of all segment files on disk (kept current by writes, rolls and compaction).
    pub wal_bytes_on_disk: AtomicU64,
    pub latency: LatencyHistogram,
}

/// Commit latencies in power-of-two microsecond buckets: fixed memory, lock-free.
#[derive(Debug)]
pub(crate) struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS],
    total_us: AtomicU64,
    max_us: AtomicU64,
    count: AtomicU64,
}

const LATENCY_BUCKETS: usize = 40;

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            total_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl LatencyHistogram {
    fn record(&self, us: u64) {
        let bucket = (64 - us.leading_zeros() as usize).min(LATENCY_BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.total_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Upper bound of the bucket holding quantile `q` (0..=1), in microseconds.
    pub fn quantile_us(&self, q: f64) -> u64 {
        let count = self.count.load(Ordering::Relaxed);
        if count == 0 {
            return 0;
        }
        let rank = ((count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                return if i == 0 { 0 } else { (1u64 << i) - 1 };
            }
        }
        self.max_us.load(Ordering::Relaxed)
    }

    pub fn mean_us(&self) -> u64 {
        let count = self.count.load(Ordering::Relaxed);
        self.total_us.load(Ordering::Relaxed).checked_div(count).unwrap_or(0)
    }

    pub fn max_us(&self) -> u64 {
        self.max_us.load(Ordering::Relaxed)
    }
}

/// The segment currently appended to. Only the leader touches it.
pub(crate) struct SegmentWriter {
    io: Arc<dyn Io>,
    wal_dir: PathBuf,
    store_id: [u8; 16],
    epoch: u64,
    segment_no: u64,
    path: PathBuf,
    file: Box<dyn IoFile>,
    salt: u32,
    bytes: u64,
    target_bytes: u64,
    buf: Vec<u8>,
    /// LSN the next record written will carry.
    next_lsn: u64,
    /// First LSN of this segment.
    first_lsn: u64,
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
    ) -> Result<SegmentWriter, (IoOp, PathBuf, std::io::Error)> {
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
            bytes: crate::format::SEGMENT_HEADER_LEN as u64,
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
    fn roll(
        &mut self,
        first_lsn: u64,
        counters: &WalCounters,
    ) -> Result<(), (IoOp, PathBuf, std::io::Error)> {
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
    fn write_group(
        &mut self,
        group: &[PendingRecord],
        sync: bool,
        counters: &WalCounters,
    ) -> Result<(), (IoOp, PathBuf, std::io::Error)> {
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
            if self.buf.capacity() > (4 << 20) {
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

/// Applies the effects of a written group to the in-memory state, in LSN order.
pub(crate) type ApplyFn = Box<dyn Fn(&[PendingRecord]) + Send + Sync>;

/// The log's write side: queue, leader election and the segment writer.
pub(crate) struct Wal {
    queue: Mutex<Queue>,
    cond: Condvar,
    writer: Mutex<SegmentWriter>,
    apply: ApplyFn,
    epoch: u64,
    /// See `Options::max_commit_delay`.
    max_commit_delay: Option<std::time::Duration>,
    /// Records in the last group written (the delay applies only under concurrency).
    last_group_records: AtomicU64,
    pub counters: WalCounters,
}

/// Snapshot of the queue's positions for stats.
pub(crate) struct WalPositions {
    pub last_lsn: u64,
    pub written_lsn: u64,
    pub durable_lsn: u64,
    pub poisoned: Option<PoisonCause>,
    pub segment_no: u64,
    pub epoch: u64,
}

impl Wal {
    pub fn new(
        writer: SegmentWriter,
        next_lsn: u64,
        last_timestamp_unix_ns: u64,
        apply: ApplyFn,
    ) -> Wal {
        let last = next_lsn - 1;
        let counters = WalCounters::default();
        counters.active_segment_no.store(writer.segment_no(), Ordering::Relaxed);
        counters.wal_bytes_on_disk.store(writer.bytes, Ordering::Relaxed);
        let epoch = writer.epoch();
        Wal {
            epoch,
            queue: Mutex::new(Queue {
                next_lsn,
                last_timestamp_unix_ns,
                pending: Vec::new(),
                written_lsn: last,
                durable_lsn: last,
                sync_target: last,
                leader: false,
                poisoned: None,
                closed: false,
                overlay: Overlay::default(),
            }),
            cond: Condvar::new(),
            writer: Mutex::new(writer),
            apply,
            counters,
            max_commit_delay: None,
            last_group_records: AtomicU64::new(0),
        }
    }

    /// Sets the group-commit delay (see `Options::max_commit_delay`).
    pub fn with_max_commit_delay(mut self, delay: Option<std::time::Duration>) -> Wal {
        self.max_commit_delay = delay.filter(|d| !d.is_zero());
        self
    }

    /// Locks the queue: the caller may check preconditions against the overlay, then call
    /// [`Wal::enqueue`] with the guard. Holding the guard is what orders commits.
    pub fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock()
    }

    /// Fails if the log accepts no more writes.
    pub fn check_writable(q: &Queue) -> Result<()> {
        if let Some(cause) = &q.poisoned {
            return Err(Error::Poisoned { cause: cause.clone() });
        }
        if q.closed {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Appends a record to the queue under the held guard and returns its ticket.
    /// The timestamp never goes backwards along the LSN order.
    pub fn enqueue(
        q: &mut Queue,
        now_unix_ns: u64,
        kind: RecordKind,
        body: Vec<u8>,
        effects: crate::store::Effects,
    ) -> Ticket {
        let lsn = q.next_lsn;
        q.next_lsn += 1;
        let ts = now_unix_ns.max(q.last_timestamp_unix_ns);
        q.last_timestamp_unix_ns = ts;
        q.pending.push(PendingRecord { lsn, timestamp_unix_ns: ts, kind, body, effects });
        Ticket { lsn, enqueued: Instant::now() }
    }

    /// Waits until the ticket's record is written (`Buffered`) or durable (`Immediate`),
    /// leading groups as needed.
    pub fn wait(&self, ticket: Ticket, durability: Durability) -> Result<()> {
        let mut q = self.queue.lock();
        if durability == Durability::Immediate {
            q.sync_target = q.sync_target.max(ticket.lsn);
        }
        let q = self.drive(q, |q| match durability {
            Durability::Immediate => q.durable_lsn >= ticket.lsn,
            Durability::Buffered => q.written_lsn >= ticket.lsn,
        })?;
        drop(q);
        let us = ticket.enqueued.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
        self.counters.latency.record(us);
        Ok(())
    }

    /// Makes everything enqueued so far durable.
    pub fn sync(&self) -> Result<()> {
        let mut q = self.queue.lock();
        if let Some(cause) = &q.poisoned {
            return Err(Error::Poisoned { cause: cause.clone() });
        }
        let target = q.next_lsn - 1;
        q.sync_target = q.sync_target.max(target);
        self.drive(q, |q| q.durable_lsn >= target).map(drop)
    }

    /// Until `done` holds: wait while another thread leads, lead a group when none does.
    /// Fails once the log is poisoned.
    fn drive<'a>(
        &'a self,
        mut q: MutexGuard<'a, Queue>,
        done: impl Fn(&Queue) -> bool,
    ) -> Result<MutexGuard<'a, Queue>> {
        loop {
            if done(&q) {
                return Ok(q);
            }
            if let Some(cause) = &q.poisoned {
                return Err(Error::Poisoned { cause: cause.clone() });
            }
            if q.leader {
                self.cond.wait(&mut q);
            } else {
                q = self.lead(q);
            }
        }
    }

    /// Seals the log for compaction or backup: if the active segment holds records, it is
    /// fsynced and a new segment is started, so every segment below the returned number is
    /// complete and immutable. Returns `(active segment number, last LSN in sealed segments)`.
    ///
    /// Takes leadership for the duration, so no group is in flight. A failure poisons the
    /// store like any failed write or fsync.
    pub fn seal(&self) -> Result<(u64, u64)> {
        let mut q = self.queue.lock();
        Wal::check_writable(&q)?;
        while q.leader {
            self.cond.wait(&mut q);
        }
        Wal::check_writable(&q)?;
        q.leader = true;
        drop(q);
        let result = {
            let mut w = self.writer.lock();
            let rolled = if w.next_lsn > w.first_lsn {
                let next = w.next_lsn;
                w.roll(next, &self.counters)
            } else {
                Ok(())
            };
            rolled.map(|()| (w.segment_no, w.first_lsn - 1))
        };
        let mut q = self.queue.lock();
        q.leader = false;
        let out = match result {
            Ok((segment_no, sealed_lsn)) => {
                // Everything written is in a fsynced segment now.
                q.durable_lsn = q.durable_lsn.max(q.written_lsn);
                Ok((segment_no, sealed_lsn))
            }
            Err((op, path, e)) => {
                let cause =
                    PoisonCause { op, path, kind: e.kind(), raw_os_error: e.raw_os_error() };
                q.poisoned = Some(cause.clone());
                q.pending.clear();
                q.overlay.clear();
                Err(Error::Poisoned { cause })
            }
        };
        self.cond.notify_all();
        out
    }

    /// Whether anything written is not yet durable (for the background flusher).
    pub fn has_unsynced(&self) -> bool {
        let q = self.queue.lock();
        q.poisoned.is_none() && q.durable_lsn < q.next_lsn - 1
    }

    /// Refuses further writes (after the final sync of a close).
    pub fn close(&self) {
        self.queue.lock().closed = true;
    }

    pub fn positions(&self) -> WalPositions {
        let q = self.queue.lock();
        WalPositions {
            last_lsn: q.next_lsn - 1,
            written_lsn: q.written_lsn,
            durable_lsn: q.durable_lsn,
            poisoned: q.poisoned.clone(),
            segment_no: self.counters.active_segment_no.load(Ordering::Relaxed),
            epoch: self.epoch,
        }
    }

    /// One round of leadership: write (and fsync) everything queued, outside the mutex.
    fn lead<'a>(&'a self, mut q: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        q.leader = true;
        // With concurrent writers, wait a moment so the writers just woken by the previous
        // group can queue their next records and share this group's fsync.
        if let Some(delay) = self.max_commit_delay {
            if self.last_group_records.load(Ordering::Relaxed) > 1 && q.sync_target > q.durable_lsn
            {
                drop(q);
                std::thread::sleep(delay);
                q = self.queue.lock();
            }
        }
        // Take the queue up to MAX_GROUP_BYTES (always at least one record).
        let mut bytes = 0;
        let take = q
            .pending
            .iter()
            .position(|r| {
                bytes += r.body.len();
                bytes > MAX_GROUP_BYTES
            })
            .map_or(q.pending.len(), |i| i.max(1));
        let group: Vec<PendingRecord> = if take == q.pending.len() {
            mem::take(&mut q.pending)
        } else {
            q.pending.drain(..take).collect()
        };
        let last_lsn = group.last().map_or(q.written_lsn, |r| r.lsn);
        let sync = q.sync_target > q.durable_lsn;
        drop(q);

        let result = self.writer.lock().write_group(&group, sync, &self.counters);
        if result.is_ok() && !group.is_empty() {
            (self.apply)(&group);
            let n = group.len() as u64;
            self.counters.groups.fetch_add(1, Ordering::Relaxed);
            self.counters.records.fetch_add(n, Ordering::Relaxed);
            self.counters.max_group_records.fetch_max(n, Ordering::Relaxed);
            self.last_group_records.store(n, Ordering::Relaxed);
        }

        let mut q = self.queue.lock();
        q.leader = false;
        match result {
            Ok(()) => {
                q.written_lsn = last_lsn;
                if sync {
                    q.durable_lsn = last_lsn;
                }
                q.overlay.retire(last_lsn);
            }
            Err((op, path, e)) => {
                q.poisoned =
                    Some(PoisonCause { op, path, kind: e.kind(), raw_os_error: e.raw_os_error() });
                q.pending.clear();
                q.overlay.clear();
            }
        }
        self.cond.notify_all();
        q
    }
}
