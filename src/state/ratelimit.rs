//! Rate-limiter state rebuilt from the log: the theoretical arrival time (TAT) of every
//! non-idle key, per limiter, and the high-water mark of limiter time.

use std::collections::HashMap;

use crate::format::ratelimit::RateLimitRecord;
use crate::limits::MIN_SWEEP_KEYS;
use crate::snapshot::SnapshotRecord;
use crate::state::violations::Violations;

/// Rate-limiter state rebuilt from the log: the TAT of every non-idle key, per limiter.
#[derive(Debug)]
pub(crate) struct RateLimitState {
    pub(crate) limiters: HashMap<String, HashMap<Box<str>, u64>>,
    pub(crate) resident_keys: usize,
    /// Largest time any limiter has used: time never runs backwards for limiters.
    pub(crate) high_water_unix_ns: u64,
    /// Resident count at which the next automatic sweep runs (twice the count after the last
    /// one), so sweeping costs O(1) amortized per new key.
    next_sweep_at: usize,
    pub(crate) swept_keys: u64,
    /// LSN and timestamp of the newest `RateLimit` record in this state (for snapshots).
    last_lsn: u64,
    last_timestamp_unix_ns: u64,
    /// Denial counts per key (abuse tracking), logged at most once per key per second.
    pub(crate) violations: Violations,
}

impl Default for RateLimitState {
    fn default() -> Self {
        RateLimitState {
            limiters: HashMap::new(),
            resident_keys: 0,
            high_water_unix_ns: 0,
            next_sweep_at: MIN_SWEEP_KEYS,
            swept_keys: 0,
            last_lsn: 0,
            last_timestamp_unix_ns: 0,
            violations: Violations::default(),
        }
    }
}

impl RateLimitState {
    /// Re-applies one `RateLimit` record during recovery.
    pub(crate) fn replay(
        &mut self,
        lsn: u64,
        timestamp_unix_ns: u64,
        body: &[u8],
    ) -> Result<(), String> {
        let rec = RateLimitRecord::decode(body)?;
        self.note_record(lsn, timestamp_unix_ns);
        self.observe(rec.now_unix_ns.max(timestamp_unix_ns));
        self.set(rec.limiter, rec.key, rec.tat_unix_ns, rec.now_unix_ns);
        Ok(())
    }

    /// Raises the high-water mark to `clock_ns` and returns the limiter time: the clock, or
    /// the mark if the clock stepped back below it.
    pub(crate) fn observe(&mut self, clock_ns: u64) -> u64 {
        self.high_water_unix_ns = self.high_water_unix_ns.max(clock_ns);
        self.high_water_unix_ns
    }

    pub(crate) fn tat(&self, limiter: &str, key: &str) -> u64 {
        self.limiters.get(limiter).and_then(|m| m.get(key)).copied().unwrap_or(0)
    }

    /// Stores a key's TAT; an idle one (`tat ≤ now`) is removed instead. May sweep.
    pub(crate) fn set(&mut self, limiter: &str, key: &str, tat: u64, now: u64) {
        if tat <= now {
            if let Some(m) = self.limiters.get_mut(limiter) {
                if m.remove(key).is_some() {
                    self.resident_keys -= 1;
                }
            }
            return;
        }
        let m = match self.limiters.get_mut(limiter) {
            Some(m) => m,
            None => self.limiters.entry(limiter.to_owned()).or_default(),
        };
        if let Some(slot) = m.get_mut(key) {
            *slot = tat;
            return;
        }
        m.insert(key.into(), tat);
        self.resident_keys += 1;
        if self.resident_keys >= self.next_sweep_at {
            self.sweep(now);
        }
    }

    /// Drops every idle key (TAT ≤ `now`): it is identical to a fresh key. Returns how many.
    pub(crate) fn sweep(&mut self, now: u64) -> usize {
        let before = self.resident_keys;
        for m in self.limiters.values_mut() {
            m.retain(|_, tat| *tat > now);
            if m.capacity() > 4 * m.len().max(16) {
                m.shrink_to_fit();
            }
        }
        self.limiters.retain(|_, m| !m.is_empty());
        self.violations.sweep(now);
        self.resident_keys = self.limiters.values().map(HashMap::len).sum();
        self.next_sweep_at = (2 * self.resident_keys).max(MIN_SWEEP_KEYS);
        let dropped = before - self.resident_keys;
        self.swept_keys += dropped as u64;
        dropped
    }

    /// Record bodies that recreate the live state when replayed (for snapshots): first a
    /// mark-only record (empty limiter and key) carrying the high-water mark, then one record
    /// per key still live at `now_unix_ns`; idle keys are left out. Entries carry the LSN and
    /// timestamp of the newest `RateLimit` record folded into this state.
    pub(crate) fn snapshot_records(&self, now_unix_ns: u64) -> Vec<SnapshotRecord> {
        if self.last_lsn == 0 {
            return Vec::new();
        }
        let now = self.high_water_unix_ns.max(now_unix_ns);
        let entry = |limiter: &str, key: &str, tat_unix_ns| SnapshotRecord {
            lsn: self.last_lsn,
            timestamp_unix_ns: self.last_timestamp_unix_ns,
            body: RateLimitRecord { now_unix_ns: now, tat_unix_ns, limiter, key }.encode(),
        };
        let mut out = Vec::with_capacity(1 + self.resident_keys);
        out.push(entry("", "", 0));
        for (limiter, m) in &self.limiters {
            out.extend(
                m.iter().filter(|(_, &tat)| tat > now).map(|(k, &tat)| entry(limiter, k, tat)),
            );
        }
        out
    }

    /// Notes the newest record folded into this state.
    pub(crate) fn note_record(&mut self, lsn: u64, timestamp_unix_ns: u64) {
        self.last_lsn = self.last_lsn.max(lsn);
        self.last_timestamp_unix_ns = self.last_timestamp_unix_ns.max(timestamp_unix_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(limiter: &str, key: &str, now: u64, tat: u64) -> Vec<u8> {
        RateLimitRecord { now_unix_ns: now, tat_unix_ns: tat, limiter, key }.encode()
    }

    #[test]
    fn replay_keeps_live_keys_drops_idle_ones_and_restores_the_high_water_mark() {
        let mut st = RateLimitState::default();
        st.replay(1, 100, &body("a", "k1", 100, 500)).unwrap();
        st.replay(2, 100, &body("a", "k2", 100, 200)).unwrap();
        st.replay(3, 300, &body("a", "k2", 300, 300)).unwrap(); // reset to idle
        assert_eq!((st.tat("a", "k1"), st.tat("a", "k2"), st.resident_keys), (500, 0, 1));
        assert_eq!(st.high_water_unix_ns, 300);
        assert_eq!(st.observe(50), 300, "a clock behind the mark reads as the mark");
        assert!(st.replay(4, 0, b"\x01garbage").is_err());
    }

    #[test]
    fn automatic_sweeps_bound_the_resident_keys() {
        let mut st = RateLimitState::default();
        let mut max_resident = 0;
        for i in 0..100_000u64 {
            // Each key lives 10 ticks; only the last 10 are ever live.
            st.set("l", &format!("k{i}"), i + 10, i);
            max_resident = max_resident.max(st.resident_keys);
        }
        assert!(max_resident <= MIN_SWEEP_KEYS, "max resident {max_resident}");
        let left = st.resident_keys;
        assert!(left > 0);
        assert_eq!(st.sweep(100_000 + 10), left, "every key is idle 10 ticks after the last");
        assert_eq!((st.resident_keys, st.limiters.len()), (0, 0));
    }

    #[test]
    fn snapshot_records_rebuild_the_live_state_and_the_mark() {
        let mut st = RateLimitState::default();
        assert!(st.snapshot_records(5).is_empty(), "no records, nothing to keep");
        st.replay(7, 10, &body("a", "x", 10, 1_000)).unwrap();
        st.replay(8, 10, &body("b", "y", 10, 2_000)).unwrap();
        st.replay(9, 10, &body("b", "z", 10, 20)).unwrap();
        let records = st.snapshot_records(50);
        assert_eq!(records.len(), 3, "the mark, x and y; z is idle at 50");
        assert!(records.iter().all(|r| (r.lsn, r.timestamp_unix_ns) == (9, 10)));
        let mut rebuilt = RateLimitState::default();
        for r in &records {
            rebuilt.replay(r.lsn, r.timestamp_unix_ns, &r.body).unwrap();
        }
        assert_eq!((rebuilt.tat("a", "x"), rebuilt.tat("b", "y")), (1_000, 2_000));
        assert_eq!((rebuilt.resident_keys, rebuilt.high_water_unix_ns), (2, 50));
        // Only the mark survives once every key is idle: time still cannot step back.
        let records = st.snapshot_records(5_000);
        assert_eq!(records.len(), 1);
        let mut rebuilt = RateLimitState::default();
        rebuilt.replay(9, 10, &records[0].body).unwrap();
        assert_eq!((rebuilt.resident_keys, rebuilt.high_water_unix_ns), (0, 5_000));
    }
}
