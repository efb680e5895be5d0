//! Forgetting a key's state (`reset`): a logged record that makes the key idle.

use super::RateLimiter;
use crate::error::Result;
use crate::format::ratelimit::RateLimitRecord;
use crate::format::RecordKind;

impl RateLimiter {
    /// Makes `key` idle (its next check sees the full burst), durably: a record with
    /// `tat = now` replays as "idle". Writes nothing if the key is idle already. Returns
    /// whether the key had spent cells.
    pub(crate) fn forget_key(&self, key: &str) -> Result<bool> {
        self.store.check_key(key)?;
        let inner = &self.store.inner;
        let clock_ns = inner.options.clock.now_unix_ns();
        let mut st = inner.ratelimits.lock();
        let now = st.observe(clock_ns);
        if st.tat(&self.name, key) <= now {
            return Ok(false);
        }
        let body = RateLimitRecord { now_unix_ns: now, tat_unix_ns: now, limiter: &self.name, key }
            .encode();
        // Enqueued under our lock, so LSN order is the order of TAT updates.
        let ticket = self.store.append_record(RecordKind::RateLimit, body)?;
        st.note_record(ticket.lsn, now);
        st.set(&self.name, key, now, now);
        drop(st);
        self.store.wait_for(ticket, self.durability)?;
        Ok(true)
    }
}
