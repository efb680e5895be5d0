//! The committer thread: it leads groups for waiters that are futures, so an async caller
//! never writes or fsyncs on its executor. It starts with the first such waiter and stops with
//! the store; blocking writers never need it (they lead on their own threads).

use std::mem;
use std::sync::Arc;
use std::time::Instant;

use super::commit::{CommitHook, Durability, LogWriter, Queue, Registered, Ticket};
use super::completion::{Completion, Slot};
use crate::error::Error;

impl<H: CommitHook> LogWriter<H> {
    /// A completion for the ticket's record that a future can await: the committer thread
    /// leads for it, so the caller never writes or fsyncs.
    pub fn completion(self: &Arc<Self>, ticket: Ticket, durability: Durability) -> Completion {
        self.completion_lsn(ticket.lsn, durability, Some(ticket.enqueued))
    }

    /// A completion that resolves once everything enqueued so far is durable.
    pub fn sync_completion(self: &Arc<Self>) -> Completion {
        let target = self.queue.lock().next_lsn - 1;
        self.completion_lsn(target, Durability::Immediate, None)
    }

    /// A completion for `lsn` (an LSN already handed out), as [`LogWriter::completion`].
    pub fn completion_lsn(
        self: &Arc<Self>,
        lsn: u64,
        durability: Durability,
        enqueued: Option<Instant>,
    ) -> Completion {
        let slot = Arc::new(Slot::default());
        let mut q = self.queue.lock();
        if q.committer.stop {
            // The store is closing and its committer is gone; everything was synced, so this
            // returns at once (or leads one last time on this thread).
            drop(q);
            let outcome = self.wait_lsn(lsn, durability, enqueued).map_err(|e| match e {
                Error::Poisoned { cause } => cause,
                other => unreachable!("a wait fails only by poisoning, not {other}"),
            });
            slot.complete(outcome);
            return Completion::new(lsn, slot);
        }
        // Started even if someone else leads now: the hand-off needs a successor for futures.
        self.start_committer(&mut q);
        match self.register(&mut q, lsn, durability, &slot, false, enqueued) {
            Registered::Done(outcome) => slot.complete(outcome),
            Registered::Wait => {}
            Registered::Lead => {
                q.committer.wanted = true;
                self.committer_cv.notify_one();
            }
        }
        Completion::new(lsn, slot)
    }

    /// Starts the committer thread if it is not running.
    fn start_committer(self: &Arc<Self>, q: &mut Queue<H>) {
        if q.committer.running {
            return;
        }
        q.committer.running = true;
        let log = self.clone();
        let handle = std::thread::Builder::new()
            .name("walden-committer".into())
            .spawn(move || log.committer_loop())
            .expect("spawn the committer thread");
        *self.committer_thread.lock() = Some(handle);
    }

    /// The committer: leads whenever leadership is handed to it, until stopped.
    fn committer_loop(&self) {
        let mut q = self.queue.lock();
        loop {
            if mem::take(&mut q.committer.wanted) {
                self.lead(q);
                q = self.queue.lock();
                continue;
            }
            if q.committer.stop {
                q.committer.running = false;
                return;
            }
            self.committer_cv.wait(&mut q);
        }
    }

    /// Stops the committer thread (after it finishes a group it was handed) and joins it.
    /// Later completions lead on the caller's thread.
    pub fn stop_committer(&self) {
        {
            let mut q = self.queue.lock();
            q.committer.stop = true;
            self.committer_cv.notify_one();
            drop(q);
        }
        if let Some(h) = self.committer_thread.lock().take() {
            let _ = h.join();
        }
    }
}
