//! Group commit: the queue, leader election, tickets and durability.
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
//!
//! The log never names what its records mean: each record carries a payload of the
//! [`CommitHook`]'s type, and the hook applies written groups, keeps whatever was sequenced but
//! not yet applied, and drops it when the log retires or poisons it.

use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::counters::{elapsed_us, WalCounters};
use super::segment_writer::{SegmentWriter, StepError};
use crate::error::{Error, PoisonCause, Result};
use crate::format::{RecordKind, Watermark};
use crate::limits::MAX_GROUP_BYTES;

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Acknowledged only after an fsync that covers it returned: survives a crash or power loss.
    #[default]
    Immediate,
    /// Acknowledged once handed to the OS; a background flusher fsyncs within
    /// `Options::buffered_flush_interval_ms`. A process crash loses nothing; a power loss or
    /// kernel crash may lose the writes of the last interval.
    Buffered,
}

/// What the layer above the log plugs into the commit path.
pub(crate) trait CommitHook: Send + Sync + 'static {
    /// In-memory effects a queued record carries, applied once the record is written.
    type Payload: Send;
    /// State sequenced under the queue lock but not yet applied (writers check against it).
    type Sequenced: Default + Send;
    /// Applies the payloads of a written group, in LSN order.
    fn apply(&self, group: &[PendingRecord<Self::Payload>]);
    /// Drops the sequenced state that the log now holds up to `lsn`.
    fn retire(sequenced: &mut Self::Sequenced, lsn: u64);
    /// Drops all sequenced state: the log is poisoned and nothing queued will be written.
    fn clear(sequenced: &mut Self::Sequenced);
}

/// A record waiting in the queue for the leader.
pub(crate) struct PendingRecord<P> {
    pub lsn: u64,
    pub timestamp_unix_ns: u64,
    pub kind: RecordKind,
    pub body: Vec<u8>,
    /// In-memory effects to apply once the record is in the log.
    pub payload: P,
}

/// What a writer holds to wait for its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub lsn: u64,
    enqueued: Instant,
}

/// The queue and the positions it publishes; guarded by the log's mutex.
pub(crate) struct Queue<H: CommitHook> {
    next_lsn: u64,
    last_timestamp_unix_ns: u64,
    pending: Vec<PendingRecord<H::Payload>>,
    written_lsn: u64,
    durable_lsn: u64,
    /// Highest LSN some waiter needs fsynced.
    sync_target: u64,
    leader: bool,
    poisoned: Option<PoisonCause>,
    closed: bool,
    /// The record that was last durable when this epoch began (recovery made it durable).
    base: Watermark,
    /// LSN of this epoch's first record.
    first_lsn: u64,
    /// What the hook sequenced but the log has not yet applied.
    pub sequenced: H::Sequenced,
}

impl<H: CommitHook> Queue<H> {
    /// The durable watermark new records carry: the last record known durable, named by the
    /// epoch of its segment (this epoch's, or the one recovery made durable before it began).
    fn watermark(&self, epoch: u64) -> Watermark {
        if self.durable_lsn >= self.first_lsn {
            Watermark { epoch, lsn: self.durable_lsn }
        } else {
            self.base
        }
    }

    /// Poisons the queue: every queued record fails and sequenced state is dropped.
    fn poison(&mut self, step: StepError) -> PoisonCause {
        let cause = PoisonCause::from_step(&step);
        tracing::error!(
            target: "walden",
            op = %cause.op,
            path = %cause.path.display(),
            error = %step.source,
            queued_records_failed = self.pending.len(),
            "store poisoned: a write or fsync of the log failed; writes fail until the store \
             is reopened (the fsync is never retried)"
        );
        self.poisoned = Some(cause.clone());
        self.pending.clear();
        H::clear(&mut self.sequenced);
        cause
    }
}

/// The log's write side: queue, leader election and the segment writer.
pub(crate) struct LogWriter<H: CommitHook> {
    queue: Mutex<Queue<H>>,
    cond: Condvar,
    writer: Mutex<SegmentWriter>,
    hook: H,
    epoch: u64,
    /// See `Options::max_commit_delay`.
    max_commit_delay: Option<Duration>,
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

impl<H: CommitHook> LogWriter<H> {
    /// A writer continuing the log at `next_lsn`; `base` names the last record recovery made
    /// durable (`Watermark::NONE` for an empty log).
    pub fn new(
        writer: SegmentWriter,
        next_lsn: u64,
        last_timestamp_unix_ns: u64,
        base: Watermark,
        hook: H,
    ) -> LogWriter<H> {
        let last = next_lsn - 1;
        let counters = WalCounters::default();
        counters.active_segment_no.store(writer.segment_no(), Ordering::Relaxed);
        counters.wal_bytes_on_disk.store(writer.bytes, Ordering::Relaxed);
        let epoch = writer.epoch();
        LogWriter {
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
                base,
                first_lsn: next_lsn,
                sequenced: H::Sequenced::default(),
            }),
            cond: Condvar::new(),
            writer: Mutex::new(writer),
            hook,
            counters,
            max_commit_delay: None,
            last_group_records: AtomicU64::new(0),
        }
    }

    /// Sets the group-commit delay (see `Options::max_commit_delay`).
    pub fn with_max_commit_delay(mut self, delay: Option<Duration>) -> LogWriter<H> {
        self.max_commit_delay = delay.filter(|d| !d.is_zero());
        self
    }

    /// Locks the queue: the caller may check preconditions against the sequenced state, then
    /// call [`LogWriter::enqueue`] with the guard. Holding the guard is what orders commits.
    pub fn lock(&self) -> MutexGuard<'_, Queue<H>> {
        self.queue.lock()
    }

    /// Fails if the log accepts no more writes.
    pub fn check_writable(q: &Queue<H>) -> Result<()> {
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
        q: &mut Queue<H>,
        now_unix_ns: u64,
        kind: RecordKind,
        body: Vec<u8>,
        payload: H::Payload,
    ) -> Ticket {
        let lsn = q.next_lsn;
        q.next_lsn += 1;
        let ts = now_unix_ns.max(q.last_timestamp_unix_ns);
        q.last_timestamp_unix_ns = ts;
        q.pending.push(PendingRecord { lsn, timestamp_unix_ns: ts, kind, body, payload });
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
        self.counters.latency.record(elapsed_us(ticket.enqueued));
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
        mut q: MutexGuard<'a, Queue<H>>,
        done: impl Fn(&Queue<H>) -> bool,
    ) -> Result<MutexGuard<'a, Queue<H>>> {
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
        Self::check_writable(&q)?;
        while q.leader {
            self.cond.wait(&mut q);
        }
        Self::check_writable(&q)?;
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
            rolled.map(|()| (w.segment_no(), w.first_lsn - 1))
        };
        let mut q = self.queue.lock();
        q.leader = false;
        let out = match result {
            Ok((segment_no, sealed_lsn)) => {
                // Everything written is in a fsynced segment now.
                q.durable_lsn = q.durable_lsn.max(q.written_lsn);
                Ok((segment_no, sealed_lsn))
            }
            Err(step) => Err(Error::Poisoned { cause: q.poison(step) }),
        };
        self.cond.notify_all();
        out
    }

    /// Whether anything written is not yet durable (for the background flusher).
    pub fn has_unsynced(&self) -> bool {
        let q = self.queue.lock();
        q.poisoned.is_none() && q.durable_lsn < q.next_lsn - 1
    }

    /// Refuses further writes and, when everything written is durable (the caller synced
    /// first), appends the fsynced close marker that names the last record: after a clean
    /// close every damage in the log is provably damage in synced data. Idempotent; a failure
    /// poisons the log.
    pub fn close(&self) -> Result<()> {
        let mut q = self.queue.lock();
        while q.leader {
            self.cond.wait(&mut q);
        }
        if q.closed {
            return Ok(());
        }
        q.closed = true;
        if q.poisoned.is_some() || q.durable_lsn < q.next_lsn - 1 {
            // A marker must not name records that are not durable.
            return Ok(());
        }
        q.leader = true;
        let (watermark, ts) = (q.watermark(self.epoch), q.last_timestamp_unix_ns);
        drop(q);
        let result = self.writer.lock().write_close(watermark, ts);
        let mut q = self.queue.lock();
        q.leader = false;
        let out = result.map_err(|step| Error::Poisoned { cause: q.poison(step) });
        self.cond.notify_all();
        out
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

    /// Takes the next group off the queue: up to [`MAX_GROUP_BYTES`] of bodies, always at
    /// least one record.
    fn take_group(q: &mut Queue<H>) -> Vec<PendingRecord<H::Payload>> {
        let mut bytes = 0;
        let take = q
            .pending
            .iter()
            .position(|r| {
                bytes += r.body.len();
                bytes > MAX_GROUP_BYTES
            })
            .map_or(q.pending.len(), |i| i.max(1));
        if take == q.pending.len() {
            mem::take(&mut q.pending)
        } else {
            q.pending.drain(..take).collect()
        }
    }

    /// One round of leadership: write (and fsync) everything queued, outside the mutex.
    fn lead<'a>(&'a self, mut q: MutexGuard<'a, Queue<H>>) -> MutexGuard<'a, Queue<H>> {
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
        let group = Self::take_group(&mut q);
        let last_lsn = group.last().map_or(q.written_lsn, |r| r.lsn);
        let sync = q.sync_target > q.durable_lsn;
        let watermark = q.watermark(self.epoch);
        drop(q);

        let frames = group.iter().map(|r| (r.lsn, r.timestamp_unix_ns, r.kind, &r.body[..]));
        let result = self.writer.lock().write_group(frames, watermark, sync, &self.counters);
        if result.is_ok() && !group.is_empty() {
            self.hook.apply(&group);
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
                H::retire(&mut q.sequenced, last_lsn);
            }
            Err(step) => {
                q.poison(step);
            }
        }
        self.cond.notify_all();
        q
    }
}
