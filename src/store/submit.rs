//! Writing without waiting: [`Store::submit`] runs any write, sequences its records and returns
//! before the log writes them, with a [`Submitted`] to await (from any async runtime) or block
//! on. The committer thread leads the groups for such writers, so the calling thread never does
//! I/O; a dropped [`Submitted`] cancels nothing, and [`Store::commit_status`] tells what became
//! of an LSN.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{Durability, Store};
use crate::error::{PoisonCause, Result};
use crate::wal::commit::Ticket;
use crate::wal::Completion;

thread_local! {
    /// Set while [`Store::submit`] runs its closure on this thread: the waits the closure would
    /// make are collected here instead.
    static DEFERRED: RefCell<Option<Vec<Completion>>> = const { RefCell::new(None) };
}

/// Clears the deferral when the closure returns or unwinds.
struct DeferGuard;

impl Drop for DeferGuard {
    fn drop(&mut self) {
        DEFERRED.with(|d| d.borrow_mut().take());
    }
}

/// A write that is sequenced but maybe not yet written: its result is decided (versions,
/// preconditions, a limiter's decision), its records have their LSNs, and the log writes them
/// whether or not this value is awaited.
///
/// Await it (a [`Future`] woken by the group leader, runtime-agnostic) or [`wait`](Self::wait)
/// on it; either returns the value only once every record the write queued is as durable as its
/// [`Durability`] asks, or [`Error::Poisoned`](crate::Error::Poisoned) if the write or fsync that would have covered it
/// failed.
#[must_use = "the write is queued; await it or wait on it to learn that it is durable"]
#[derive(Debug)]
pub struct Submitted<T> {
    value: Option<T>,
    /// In LSN order; resolved from the front.
    completions: Vec<Completion>,
}

impl<T> Submitted<T> {
    /// The highest LSN the write queued; `None` if it queued nothing (a failed precondition
    /// is an error, but a denial, a delete of an absent document or a version check writes
    /// nothing), in which case it is complete already.
    pub fn lsn(&self) -> Option<u64> {
        self.completions.iter().map(Completion::lsn).max()
    }

    /// Whether every record is written or durable as asked (or one failed).
    pub fn is_done(&self) -> bool {
        self.completions.iter().all(Completion::is_done)
    }

    /// Blocks the calling thread until the write is acknowledged.
    pub fn wait(self) -> Result<T> {
        for c in self.completions {
            c.wait()?;
        }
        Ok(self.value.expect("a Submitted yields its value once"))
    }
}

impl<T: Unpin> Future for Submitted<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        while let Some(first) = self.completions.first_mut() {
            match Pin::new(first).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {
                    drop(self.completions.remove(0));
                }
            }
        }
        Poll::Ready(Ok(self.value.take().expect("a Submitted is not polled after Ready")))
    }
}

/// What became of an LSN, for a caller whose wait was cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommitStatus {
    /// In the log and fsynced: it survives a power loss.
    Durable,
    /// In the log (handed to the OS), not yet fsynced.
    Written,
    /// Sequenced, waiting for a group.
    Queued,
    /// Not written and never will be: the log was poisoned by this failure first.
    Failed(PoisonCause),
    /// No record has this LSN yet (it was never handed out by this store).
    Unknown,
}

impl Store {
    /// Runs `f` — any sequence of writes through this store or its limiters and breakers —
    /// on this thread without waiting for the log: each record is sequenced (its effects
    /// decided, its LSN fixed) and `f` returns as soon as it would start waiting. The returned
    /// [`Submitted`] resolves to `f`'s value once all those records are acknowledged. The
    /// groups are written and fsynced by the store's committer thread, never by the caller, so
    /// this is safe to call on an async executor thread (it takes only short in-memory locks).
    ///
    /// If `f` fails, nothing it queued before failing is withdrawn (exactly as with the
    /// blocking calls): the error is returned and those records are written anyway.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = walden::Store::open(dir.path())?;
    /// let pending = store.submit(|| store.put("users", "ada", &"Ada"))?;
    /// let lsn = pending.lsn().expect("a put queues a record");
    /// let version = pending.wait()?; // or `.await` in async code
    /// assert_eq!(version, 1);
    /// assert_eq!(store.commit_status(lsn), walden::CommitStatus::Durable);
    /// # Ok::<(), walden::Error>(())
    /// ```
    pub fn submit<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<Submitted<T>> {
        let nested = DEFERRED.with(|d| d.borrow().is_some());
        if nested {
            // Already deferred by an outer submit: its Submitted collects these waits too.
            return Ok(Submitted { value: Some(f()?), completions: Vec::new() });
        }
        DEFERRED.with(|d| *d.borrow_mut() = Some(Vec::new()));
        let guard = DeferGuard;
        let value = f();
        let completions = DEFERRED.with(|d| d.borrow_mut().take()).unwrap_or_default();
        drop(guard);
        Ok(Submitted { value: Some(value?), completions })
    }

    /// What became of the record with this LSN (see [`Submitted::lsn`]).
    pub fn commit_status(&self, lsn: u64) -> CommitStatus {
        let p = self.inner.wal.positions();
        if lsn == 0 || lsn > p.last_lsn {
            CommitStatus::Unknown
        } else if lsn <= p.durable_lsn {
            CommitStatus::Durable
        } else if let Some(cause) = p.poisoned {
            CommitStatus::Failed(cause)
        } else if lsn <= p.written_lsn {
            CommitStatus::Written
        } else {
            CommitStatus::Queued
        }
    }

    /// A completion that resolves once the record with `lsn` is durable (or fails with
    /// [`Error::Poisoned`](crate::Error::Poisoned)); for a caller that learned an LSN and stopped waiting for it.
    /// `None` for an LSN this store never handed out.
    pub fn durable(&self, lsn: u64) -> Option<Completion> {
        if lsn == 0 || lsn > self.inner.wal.positions().last_lsn {
            return None;
        }
        Some(self.inner.wal.completion_lsn(lsn, Durability::Immediate, None))
    }

    /// A completion that resolves once every write acknowledged so far is durable, the
    /// `Buffered` ones included: [`Store::sync`] without blocking.
    pub fn sync_completion(&self) -> Completion {
        self.inner.wal.sync_completion()
    }

    /// Waits until a ticket's record is written (`Buffered`) or fsynced (`Immediate`); inside
    /// [`Store::submit`], registers the wait instead.
    pub(crate) fn wait_for(&self, ticket: Ticket, durability: Durability) -> Result<()> {
        let deferred = DEFERRED.with(|d| d.borrow().is_some());
        if !deferred {
            return self.inner.wal.wait(ticket, durability);
        }
        let c = self.inner.wal.completion(ticket, durability);
        DEFERRED.with(|d| {
            if let Some(v) = d.borrow_mut().as_mut() {
                let at = v.partition_point(|x| x.lsn() <= c.lsn());
                v.insert(at, c);
            }
        });
        Ok(())
    }
}
