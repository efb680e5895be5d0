//! Group commit: the queue, leader election, per-waiter completions and durability.
//!
//! Writers enqueue records under one mutex, which assigns LSNs in order, and register a
//! completion slot for the record they wait for. The first waiter that finds no leader becomes
//! the leader: it takes everything queued, frames it into one buffer, makes one `write` and (if
//! any record in it needs durability) one `fdatasync`, outside the mutex, then publishes the new
//! written/durable LSNs and completes exactly the slots its group finished (see
//! [`completion`](super::completion)): no other waiter wakes. If work remains, the leader hands
//! leadership to one successor — a pending seal first, then the oldest blocking waiter, then the
//! committer thread (which leads for waiters that are futures, so no write or fsync ever runs on
//! an async executor) — instead of letting every waiter race for it. A record is acknowledged
//! only after an fsync that began after the record was written.
//!
//! A failed write or fsync poisons the log for good: every queued record fails, no later write is
//! accepted, and the fsync is never retried (after a failed fsync the kernel may have dropped the
//! dirty pages; a retry could report success for data that is gone).
//!
//! The log never names what its records mean: each record carries a payload of the
//! [`CommitHook`]'s type, and the hook applies written groups, keeps whatever was sequenced but
//! not yet applied, and drops it when the log retires or poisons it.

use std::collections::VecDeque;
use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::completion::{Outcome, Slot, Wake};
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
    pub(super) enqueued: Instant,
}

/// A registered waiter: completed by the leader whose group finishes its record.
struct Waiter {
    lsn: u64,
    durability: Durability,
    slot: Arc<Slot>,
    /// A parked thread, which may be handed leadership (a future never is).
    blocking: bool,
    /// When its record was enqueued, for the latency histogram (`None`: a sync).
    enqueued: Option<Instant>,
}

/// The committer thread's flags.
#[derive(Default)]
pub(super) struct Committer {
    pub(super) running: bool,
    /// Leadership was handed to it: lead one group.
    pub(super) wanted: bool,
    pub(super) stop: bool,
}

/// The queue and the positions it publishes; guarded by the log's mutex.
pub(crate) struct Queue<H: CommitHook> {
    pub(super) next_lsn: u64,
    pub(super) last_timestamp_unix_ns: u64,
    pub(super) pending: Vec<PendingRecord<H::Payload>>,
    pub(super) written_lsn: u64,
    pub(super) durable_lsn: u64,
    /// Highest LSN some waiter needs fsynced.
    pub(super) sync_target: u64,
    /// Someone leads (or was handed the lead and is on its way).
    pub(super) leader: bool,
    pub(super) poisoned: Option<PoisonCause>,
    pub(super) closed: bool,
    /// Waiters in LSN order.
    waiters: VecDeque<Waiter>,
    /// Seals waiting for the lead (served before any writer).
    pub(super) seals: Vec<Arc<Slot>>,
    pub(super) committer: Committer,
    /// The record that was last durable when this epoch began (recovery made it durable).
    pub(super) base: Watermark,
    /// LSN of this epoch's first record.
    pub(super) first_lsn: u64,
    /// What the hook sequenced but the log has not yet applied.
    pub sequenced: H::Sequenced,
}

impl<H: CommitHook> Queue<H> {
    /// The durable watermark new records carry: the last record known durable, named by the
    /// epoch of its segment (this epoch's, or the one recovery made durable before it began).
    pub(super) fn watermark(&self, epoch: u64) -> Watermark {
        if self.durable_lsn >= self.first_lsn {
            Watermark { epoch, lsn: self.durable_lsn }
        } else {
            self.base
        }
    }

    /// Poisons the queue: every queued record fails, sequenced state is dropped, and the slots
    /// to fail are returned (complete them after releasing the lock).
    pub(super) fn poison(&mut self, step: StepError) -> (PoisonCause, Vec<(Arc<Slot>, Outcome)>) {
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
        self.leader = false;
        let failed = self
            .waiters
            .drain(..)
            .map(|w| w.slot)
            .chain(self.seals.drain(..))
            .map(|slot| (slot, Err(cause.clone())))
            .collect();
        (cause, failed)
    }

    pub(super) fn satisfied(&self, lsn: u64, durability: Durability) -> bool {
        match durability {
            Durability::Immediate => self.durable_lsn >= lsn,
            Durability::Buffered => self.written_lsn >= lsn,
        }
    }

    /// Removes the waiters the published positions satisfy and returns their slots.
    pub(super) fn take_done(&mut self, counters: &WalCounters) -> Vec<(Arc<Slot>, Outcome)> {
        let (written, durable) = (self.written_lsn, self.durable_lsn);
        let n = self.waiters.partition_point(|w| w.lsn <= written);
        let mut done = Vec::with_capacity(n);
        let mut kept = Vec::new();
        for w in self.waiters.drain(..n) {
            if w.durability == Durability::Buffered || w.lsn <= durable {
                if let Some(t) = w.enqueued {
                    counters.latency.record(elapsed_us(t));
                }
                done.push((w.slot, Ok(())));
            } else {
                kept.push(w);
            }
        }
        for w in kept.into_iter().rev() {
            self.waiters.push_front(w);
        }
        done
    }

    /// Chooses who leads next, if anything is left to do; clears `leader` otherwise.
    pub(super) fn successor(&mut self) -> Option<Successor> {
        let work = !self.pending.is_empty() || self.sync_target > self.durable_lsn;
        if let Some(seal) = self.seals.pop() {
            return Some(Successor::Slot(seal));
        }
        if work {
            if let Some(w) = self.waiters.iter().find(|w| w.blocking) {
                return Some(Successor::Slot(w.slot.clone()));
            }
            if self.committer.running && !self.committer.stop {
                self.committer.wanted = true;
                return Some(Successor::Committer);
            }
        }
        // Nobody waits for what is left: whoever registers for it next leads.
        self.leader = false;
        None
    }
}

/// The next leader, told after the queue lock is released.
pub(super) enum Successor {
    Slot(Arc<Slot>),
    Committer,
}

/// What a registration found.
pub(super) enum Registered {
    /// Already satisfied, or failed.
    Done(Outcome),
    /// Registered; the caller is now the leader and must lead a group.
    Lead,
    /// Registered; someone else leads.
    Wait,
}

/// The log's write side: queue, leader election and the segment writer.
pub(crate) struct LogWriter<H: CommitHook> {
    pub(super) queue: Mutex<Queue<H>>,
    /// Wakes the committer thread (waits on `queue`).
    pub(super) committer_cv: Condvar,
    pub(super) committer_thread: Mutex<Option<JoinHandle<()>>>,
    pub(super) writer: Mutex<SegmentWriter>,
    hook: H,
    pub(super) epoch: u64,
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
                waiters: VecDeque::new(),
                seals: Vec::new(),
                committer: Committer::default(),
                base,
                first_lsn: next_lsn,
                sequenced: H::Sequenced::default(),
            }),
            committer_cv: Condvar::new(),
            committer_thread: Mutex::new(None),
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
        self.wait_lsn(ticket.lsn, durability, Some(ticket.enqueued))
    }

    /// Makes everything enqueued so far durable.
    pub fn sync(&self) -> Result<()> {
        let target = {
            let q = self.queue.lock();
            if let Some(cause) = &q.poisoned {
                return Err(Error::Poisoned { cause: cause.clone() });
            }
            q.next_lsn - 1
        };
        self.wait_lsn(target, Durability::Immediate, None)
    }

    /// Blocks until `lsn` is written or durable as `durability` asks, leading groups when
    /// handed the lead.
    pub(super) fn wait_lsn(
        &self,
        lsn: u64,
        durability: Durability,
        enqueued: Option<Instant>,
    ) -> Result<()> {
        let slot = Arc::new(Slot::default());
        let mut q = self.queue.lock();
        match self.register(&mut q, lsn, durability, &slot, true, enqueued) {
            Registered::Done(outcome) => return outcome.map_err(|cause| Error::Poisoned { cause }),
            Registered::Lead => self.lead(q),
            Registered::Wait => drop(q),
        }
        loop {
            match slot.block() {
                Wake::Done(outcome) => return outcome.map_err(|cause| Error::Poisoned { cause }),
                Wake::Lead => self.lead(self.queue.lock()),
            }
        }
    }

    /// Registers a waiter for `lsn`; takes the lead if nobody holds it.
    pub(super) fn register(
        &self,
        q: &mut Queue<H>,
        lsn: u64,
        durability: Durability,
        slot: &Arc<Slot>,
        blocking: bool,
        enqueued: Option<Instant>,
    ) -> Registered {
        if q.satisfied(lsn, durability) {
            if let Some(t) = enqueued {
                self.counters.latency.record(elapsed_us(t));
            }
            return Registered::Done(Ok(()));
        }
        if let Some(cause) = &q.poisoned {
            return Registered::Done(Err(cause.clone()));
        }
        if durability == Durability::Immediate {
            q.sync_target = q.sync_target.max(lsn);
        }
        let at = q.waiters.partition_point(|w| w.lsn <= lsn);
        let waiter = Waiter { lsn, durability, slot: slot.clone(), blocking, enqueued };
        q.waiters.insert(at, waiter);
        if q.leader {
            Registered::Wait
        } else {
            q.leader = true;
            Registered::Lead
        }
    }

    /// Whether anything written is not yet durable (for the background flusher).
    pub fn has_unsynced(&self) -> bool {
        let q = self.queue.lock();
        q.poisoned.is_none() && q.durable_lsn < q.next_lsn - 1
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

    /// One round of leadership (the caller holds it: `q.leader` is set): write (and fsync)
    /// everything queued, outside the mutex; complete the waiters it finished; hand the lead
    /// on. Returns with the queue unlocked.
    pub(super) fn lead<'a>(&'a self, mut q: MutexGuard<'a, Queue<H>>) {
        debug_assert!(q.leader);
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

        let result = if group.is_empty() && !sync {
            Ok(())
        } else {
            let frames = group.iter().map(|r| (r.lsn, r.timestamp_unix_ns, r.kind, &r.body[..]));
            self.writer.lock().write_group(frames, watermark, sync, &self.counters)
        };
        if result.is_ok() && !group.is_empty() {
            self.hook.apply(&group);
            let n = group.len() as u64;
            self.counters.groups.fetch_add(1, Ordering::Relaxed);
            self.counters.records.fetch_add(n, Ordering::Relaxed);
            self.counters.max_group_records.fetch_max(n, Ordering::Relaxed);
            self.last_group_records.store(n, Ordering::Relaxed);
        }
        drop(group);

        let mut q = self.queue.lock();
        let (done, next) = match result {
            Ok(()) => {
                q.written_lsn = last_lsn;
                if sync {
                    q.durable_lsn = last_lsn;
                }
                H::retire(&mut q.sequenced, last_lsn);
                let done = q.take_done(&self.counters);
                (done, q.successor())
            }
            Err(step) => (q.poison(step).1, None),
        };
        drop(q);
        self.finish_round(done, next);
    }

    /// Outside the lock: completes the finished slots, then wakes the next leader.
    pub(super) fn finish_round(&self, done: Vec<(Arc<Slot>, Outcome)>, next: Option<Successor>) {
        for (slot, outcome) in done {
            slot.complete(outcome);
        }
        match next {
            Some(Successor::Slot(slot)) => slot.hand_lead(),
            Some(Successor::Committer) => {
                self.committer_cv.notify_one();
            }
            None => {}
        }
    }
}
