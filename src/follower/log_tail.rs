//! The follower's reading engine for tools that print records rather than keep a state
//! (`walinspect follow`): the durable records a live store's writer appends, in LSN order.

use std::path::Path;
use std::sync::Arc;

use super::tail::{Stop, Tail};
use crate::error::Result;
use crate::io::Io;
use crate::wal::RecordRef;

/// What one [`LogTail::poll`] did besides handing out records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailPoll {
    /// Every record durable now was handed out.
    CaughtUp,
    /// The records from `from_lsn` up to (not including) `to_lsn` were compacted away before
    /// they were read; the tail goes on at `to_lsn` at the next poll.
    Skipped {
        /// First LSN not handed out.
        from_lsn: u64,
        /// Where the log now starts.
        to_lsn: u64,
    },
}

/// The durable records of a live store's log from a given LSN on, read exactly as a
/// [`Follower`](super::Follower) reads them (same decisions, same "not yet"), without a state.
pub struct LogTail {
    tail: Tail,
}

impl std::fmt::Debug for LogTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogTail").field("next_lsn", &self.next_lsn()).finish_non_exhaustive()
    }
}

impl LogTail {
    /// A tail of the store in `dir` (whose id is `store_id`) that hands out records from
    /// `next_lsn` on, reading through `io`.
    pub fn new(io: Arc<dyn Io>, dir: &Path, store_id: [u8; 16], next_lsn: u64) -> LogTail {
        let mut tail = Tail::new(io, dir, store_id);
        tail.restart_at(next_lsn);
        LogTail { tail }
    }

    /// LSN of the next record to hand out.
    pub fn next_lsn(&self) -> u64 {
        self.tail.position().0
    }

    /// The writer's durable position last read, `(epoch, lsn)`.
    pub fn durable(&self) -> Option<(u64, u64)> {
        self.tail.mark.map(|m| (m.epoch, m.lsn))
    }

    /// Hands every record made durable since the last poll to `on_record`, in LSN order.
    pub fn poll(&mut self, on_record: &mut dyn FnMut(&RecordRef<'_>)) -> Result<TailPoll> {
        let limit = self.tail.durable_limit()?;
        let stop = self.tail.advance(limit, &mut |batch| {
            batch.iter().for_each(&mut *on_record);
            Ok(())
        })?;
        if stop == Stop::Reload {
            let from_lsn = self.next_lsn();
            if let Some(to_lsn) = self.tail.skip_to_log_start()? {
                if to_lsn > from_lsn {
                    return Ok(TailPoll::Skipped { from_lsn, to_lsn });
                }
            }
        }
        Ok(TailPoll::CaughtUp)
    }
}
