//! A completion: one waiter's slot, completed by the group leader that finished its record.
//!
//! Each waiting writer owns one slot; the leader completes exactly the slots of the records its
//! group made written or durable, so a group of 64 wakes 64 waiters and no one else (one
//! condition variable for all would wake every waiter for every group). A slot is
//! runtime-agnostic: a blocking thread parks on it ([`Completion::wait`]), a future awaits it
//! through a [`std::task::Waker`] (`Completion` implements [`Future`]). No async runtime is
//! involved: the leader that completes it is an ordinary thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread::Thread;

use parking_lot::Mutex;

use crate::error::{Error, PoisonCause, Result};

/// What a slot ends with: `Ok`, or the poisoning that failed the record.
pub(crate) type Outcome = std::result::Result<(), PoisonCause>;

/// What wakes a blocked waiter.
pub(crate) enum Wake {
    /// The record is written (or durable, as asked) or failed.
    Done(Outcome),
    /// The previous leader handed the log's leadership to this thread: lead one group.
    Lead,
}

#[derive(Default)]
struct SlotState {
    outcome: Option<Outcome>,
    lead: bool,
    waker: Option<Waker>,
    thread: Option<Thread>,
}

/// One waiter's slot, shared by the waiter and the queue.
#[derive(Default)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
}

impl Slot {
    /// Completes the slot and wakes its waiter (a parked thread or a future's waker).
    pub fn complete(&self, outcome: Outcome) {
        let (waker, thread) = {
            let mut s = self.state.lock();
            if s.outcome.is_some() {
                return;
            }
            s.outcome = Some(outcome);
            (s.waker.take(), s.thread.take())
        };
        wake(waker, thread);
    }

    /// Hands the log's leadership to this slot's (blocking) waiter.
    pub fn hand_lead(&self) {
        let thread = {
            let mut s = self.state.lock();
            s.lead = true;
            s.thread.take()
        };
        wake(None, thread);
    }

    /// Parks the calling thread until the slot completes or leadership is handed to it.
    pub fn block(&self) -> Wake {
        loop {
            {
                let mut s = self.state.lock();
                if let Some(outcome) = &s.outcome {
                    return Wake::Done(outcome.clone());
                }
                if std::mem::take(&mut s.lead) {
                    return Wake::Lead;
                }
                s.thread = Some(std::thread::current());
            }
            // A stale unpark token only costs one more turn of the loop.
            std::thread::park();
        }
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut s = self.state.lock();
        if let Some(outcome) = &s.outcome {
            return Poll::Ready(outcome.clone());
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    fn outcome(&self) -> Option<Outcome> {
        self.state.lock().outcome.clone()
    }
}

fn wake(waker: Option<Waker>, thread: Option<Thread>) {
    if let Some(w) = waker {
        w.wake();
    }
    if let Some(t) = thread {
        t.unpark();
    }
}

/// A record's completion: resolves once the log has written it (`Buffered`) or made it
/// durable (`Immediate`), or fails with [`Error::Poisoned`] if the write or fsync that would
/// have covered it failed.
///
/// Await it (it is a [`Future`], woken by the group leader, with any executor) or block on it
/// with [`wait`](Self::wait). Dropping it cancels nothing: the record is already in the queue
/// and is written all the same; ask [`Store::commit_status`](crate::Store::commit_status) about
/// its LSN to learn its fate.
#[must_use = "a completion does nothing unless awaited or waited on"]
pub struct Completion {
    lsn: u64,
    slot: Arc<Slot>,
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("lsn", &self.lsn)
            .field("done", &self.slot.outcome().is_some())
            .finish()
    }
}

impl Completion {
    pub(crate) fn new(lsn: u64, slot: Arc<Slot>) -> Completion {
        Completion { lsn, slot }
    }

    /// The LSN this completion waits for.
    pub fn lsn(&self) -> u64 {
        self.lsn
    }

    /// Whether it has resolved (either way).
    pub fn is_done(&self) -> bool {
        self.slot.outcome().is_some()
    }

    /// Blocks the calling thread until the completion resolves.
    pub fn wait(self) -> Result<()> {
        loop {
            if let Wake::Done(outcome) = self.slot.block() {
                return outcome.map_err(|cause| Error::Poisoned { cause });
            }
            // Slots of completions are never handed the lead (the committer leads for them).
        }
    }
}

impl Future for Completion {
    type Output = Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.slot.poll(cx).map(|o| o.map_err(|cause| Error::Poisoned { cause }))
    }
}
