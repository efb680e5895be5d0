//! Records that wait for an interval to pass: a breaker's closed-state counters (at most one
//! record per breaker per `counts_log_interval`) and a rate-limit key's violation history (at
//! most one per key per second). A change inside the interval is held in memory; the flusher's
//! tick and close write what is due, so a quiet process does not keep it unlogged.

use std::sync::Arc;

use parking_lot::Mutex;

use super::hook::{DocLog, Effects};
use crate::clock::Clock;
use crate::error::{Error, LimitKind, Result};
use crate::format::RecordKind;
use crate::limits::MAX_RECORD_BODY_BYTES;
use crate::state::breaker::BreakerState;
use crate::state::ratelimit::RateLimitState;
use crate::state::violations::Violations;
use crate::wal::commit::Ticket;

/// What the flusher needs to write held-back records: the log, the two states and the clock.
#[derive(Clone)]
pub(crate) struct HeldBack {
    pub wal: Arc<DocLog>,
    pub ratelimits: Arc<Mutex<RateLimitState>>,
    pub breakers: Arc<Mutex<BreakerState>>,
    pub clock: Arc<dyn Clock>,
}

impl HeldBack {
    /// The states, shared with the store.
    pub fn new(
        wal: Arc<DocLog>,
        ratelimits: RateLimitState,
        breakers: BreakerState,
        clock: Arc<dyn Clock>,
    ) -> HeldBack {
        let ratelimits = Arc::new(Mutex::new(ratelimits));
        HeldBack { wal, ratelimits, breakers: Arc::new(Mutex::new(breakers)), clock }
    }

    /// Enqueues every held-back record whose interval has passed, or every one with
    /// `closing` (written by the flusher's next group or the final sync; nobody waits for
    /// them). Each is enqueued under the lock of its state, so LSN order is change order.
    pub fn flush(&self, closing: bool) -> Result<()> {
        let now = self.clock.now_unix_ns();
        {
            let mut st = self.breakers.lock();
            for (name, body) in st.due_counts(now, closing) {
                let ticket = append_to(&self.wal, now, RecordKind::BreakerCounts, body)?;
                if let Some(e) = st.entries.get_mut(&name) {
                    e.counts_lsn = ticket.lsn;
                }
            }
        }
        let mut st = self.ratelimits.lock();
        let now = st.observe(now);
        for (limiter, key, h) in st.violations.take_due(now, closing) {
            let body = Violations::record(&limiter, &key, &h, now);
            let ticket = append_to(&self.wal, now, RecordKind::RateLimitViolations, body)?;
            st.violations.note_record(ticket.lsn, now);
        }
        Ok(())
    }
}

/// Queues a record of a kind other than documents on `wal`, stamped `now_unix_ns` (see
/// `Store::append_record`); also used by the flusher, which holds the log but not the store.
pub(crate) fn append_to(
    wal: &DocLog,
    now_unix_ns: u64,
    kind: RecordKind,
    body: Vec<u8>,
) -> Result<Ticket> {
    if body.len() > MAX_RECORD_BODY_BYTES {
        return Err(Error::TooLarge {
            what: LimitKind::Record,
            size: body.len(),
            limit: MAX_RECORD_BODY_BYTES,
        });
    }
    let mut q = wal.lock();
    DocLog::check_writable(&q)?;
    Ok(DocLog::enqueue(&mut q, now_unix_ns, kind, body, Effects::None))
}
