//! Taking the log's lead outside a group: the seal (compaction, backup) and the close marker.
//! Both are handed the lead ahead of any writer, so neither waits behind a stream of groups.

use std::sync::Arc;

use super::commit::{CommitHook, LogWriter, Queue};
use super::completion::{Slot, Wake};
use crate::error::{Error, Result};

impl<H: CommitHook> LogWriter<H> {
    /// Seals the log for compaction or backup: if the active segment holds records, it is
    /// fsynced and a new segment is started, so every segment below the returned number is
    /// complete and immutable. Returns `(active segment number, last LSN in sealed segments)`.
    ///
    /// Takes leadership for the duration (handed over ahead of any writer, so a seal never
    /// waits behind a stream of groups), so no group is in flight. A failure poisons the store
    /// like any failed write or fsync.
    pub fn seal(&self) -> Result<(u64, u64)> {
        self.acquire_lead()?;
        let result = {
            let mut w = self.writer.lock();
            let result = if w.next_lsn > w.first_lsn {
                let next = w.next_lsn;
                w.roll(next, &self.counters)
            } else {
                Ok(())
            };
            result.map(|()| (w.segment_no(), w.first_lsn - 1))
        };
        let mut q = self.queue.lock();
        let (out, done) = match result {
            Ok((segment_no, sealed_lsn)) => {
                // Everything written is in a fsynced segment now.
                q.durable_lsn = q.durable_lsn.max(q.written_lsn);
                (Ok((segment_no, sealed_lsn)), q.take_done(&self.counters))
            }
            Err(step) => {
                let (cause, failed) = q.poison(step);
                (Err(Error::Poisoned { cause }), failed)
            }
        };
        let next = if out.is_ok() { q.successor() } else { None };
        drop(q);
        self.finish_round(done, next);
        out
    }

    /// Blocks until this thread holds the log's leadership (handed over ahead of any writer
    /// once the current group is done). Fails if the log is poisoned or closed. The caller
    /// must end its round with [`LogWriter::finish_round`] after choosing a successor.
    fn acquire_lead(&self) -> Result<()> {
        {
            let q = self.queue.lock();
            Self::check_writable(&q)?;
        }
        self.acquire_lead_when(|q| Self::check_writable(q).is_ok())
    }

    /// [`LogWriter::acquire_lead`] with the caller's own condition on the queue (the close
    /// takes the lead on a log that refuses writes).
    fn acquire_lead_when(&self, ok: impl Fn(&Queue<H>) -> bool) -> Result<()> {
        let mut q = self.queue.lock();
        if !ok(&q) {
            return Err(q
                .poisoned
                .clone()
                .map_or(Error::Closed, |cause| Error::Poisoned { cause }));
        }
        if !q.leader {
            q.leader = true;
            return Ok(());
        }
        let slot = Arc::new(Slot::default());
        q.seals.push(slot.clone());
        drop(q);
        match slot.block() {
            Wake::Done(Err(cause)) => Err(Error::Poisoned { cause }),
            Wake::Done(Ok(())) | Wake::Lead => Ok(()),
        }
    }

    /// Refuses further writes and, when everything written is durable (the caller synced
    /// first), appends the fsynced close marker that names the last record: after a clean
    /// close every damage in the log is provably damage in synced data. Idempotent; a failure
    /// poisons the log.
    pub fn close(&self) -> Result<()> {
        {
            let mut q = self.queue.lock();
            if q.closed {
                return Ok(());
            }
            q.closed = true;
        }
        // Poisoned: no marker (and nothing to report here; the poisoning was reported).
        if self.acquire_lead_when(|q| q.poisoned.is_none()).is_err() {
            return Ok(());
        }
        let mut q = self.queue.lock();
        if q.poisoned.is_some() || q.durable_lsn < q.next_lsn - 1 {
            // A marker must not name records that are not durable.
            let next = q.successor();
            drop(q);
            self.finish_round(Vec::new(), next);
            return Ok(());
        }
        let (watermark, ts) = (q.watermark(self.epoch), q.last_timestamp_unix_ns);
        drop(q);
        let result = self.writer.lock().write_close(watermark, ts);
        let mut q = self.queue.lock();
        let (out, failed) = match result {
            Ok(()) => (Ok(()), Vec::new()),
            Err(step) => {
                let (cause, failed) = q.poison(step);
                (Err(Error::Poisoned { cause }), failed)
            }
        };
        let next = if out.is_ok() { q.successor() } else { None };
        drop(q);
        self.finish_round(failed, next);
        out
    }
}
