//! Violation history: per limiter and key, how many checks were denied and when, kept for a
//! retention period after the last denial ("abuse tracking").
//!
//! A denial writes nothing on the check's path beyond a map update; the history reaches the
//! log at most once per key per [`VIOLATION_LOG_INTERVAL_NS`], so a flood of denials is never
//! a flood of records (and never an fsync: the records are written, not waited for). Each
//! record carries the key's whole history, so replay keeps the last one; an entry whose
//! `expires_unix_ns` has passed is dropped like an idle limiter key.

use std::collections::HashMap;

use crate::format::violations::ViolationsRecord;
use crate::limits::VIOLATION_LOG_INTERVAL_NS;
use crate::snapshot::SnapshotRecord;

/// One key's denials, from `RateLimiter::violations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ViolationHistory {
    /// Denied checks since the history started (it starts again after it expired).
    pub denials: u64,
    /// Time of the first denial of this history, ns since the Unix epoch.
    pub first_denied_unix_ns: u64,
    /// Time of the last denial, ns since the Unix epoch.
    pub last_denied_unix_ns: u64,
    /// When the history is forgotten if no further denial comes, ns since the Unix epoch.
    pub expires_unix_ns: u64,
}

/// A key's history and its logging state.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    history: ViolationHistory,
    /// Time of the last record of this key (0: never logged).
    logged_unix_ns: u64,
    /// Denials counted since that record.
    dirty: bool,
}

/// Every live violation history, per limiter and key.
#[derive(Debug, Default)]
pub(crate) struct Violations {
    limiters: HashMap<String, HashMap<Box<str>, Slot>>,
    resident: usize,
    /// Keys whose denials are not all in the log yet, as `(limiter, key)`, so a flush costs
    /// O(pending keys) rather than O(histories). An entry whose slot was logged or dropped
    /// since is skipped.
    dirty: Vec<(String, Box<str>)>,
    /// LSN and timestamp of the newest violations record in this state (for snapshots).
    last_lsn: u64,
    last_timestamp_unix_ns: u64,
}

impl Violations {
    /// Counts one denial of `key` at `now`; the history is kept `retention_ns` after it.
    /// Returns the history to log now, if the key's last record is older than the interval.
    pub fn note_denial(
        &mut self,
        limiter: &str,
        key: &str,
        now: u64,
        retention_ns: u64,
    ) -> Option<ViolationHistory> {
        let m = match self.limiters.get_mut(limiter) {
            Some(m) => m,
            None => self.limiters.entry(limiter.to_owned()).or_default(),
        };
        let slot = match m.get_mut(key) {
            Some(s) => s,
            None => {
                self.resident += 1;
                m.entry(key.into()).or_default()
            }
        };
        let h = &mut slot.history;
        if h.expires_unix_ns <= now {
            *h = ViolationHistory { first_denied_unix_ns: now, ..ViolationHistory::default() };
        }
        h.denials += 1;
        h.last_denied_unix_ns = now;
        h.expires_unix_ns = now.saturating_add(retention_ns).max(h.expires_unix_ns);
        if slot.logged_unix_ns == 0 || now >= slot.logged_unix_ns + VIOLATION_LOG_INTERVAL_NS {
            slot.logged_unix_ns = now.max(1);
            slot.dirty = false;
            Some(slot.history)
        } else {
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push((limiter.to_owned(), key.into()));
            }
            None
        }
    }

    /// The histories with denials not yet logged whose last record is at least
    /// [`VIOLATION_LOG_INTERVAL_NS`] old at `now` (with `all`: every one), as
    /// `(limiter, key, history)`; they count as logged at `now` from here on. The others stay
    /// pending.
    pub fn take_due(&mut self, now: u64, all: bool) -> Vec<(String, String, ViolationHistory)> {
        let mut out = Vec::new();
        let limiters = &mut self.limiters;
        self.dirty.retain(|(limiter, key)| {
            let Some(slot) = limiters.get_mut(limiter).and_then(|m| m.get_mut(key)) else {
                return false; // swept since
            };
            if !slot.dirty {
                return false; // logged by a later denial
            }
            if !all && now < slot.logged_unix_ns.saturating_add(VIOLATION_LOG_INTERVAL_NS) {
                return true;
            }
            slot.dirty = false;
            slot.logged_unix_ns = now.max(1);
            out.push((limiter.clone(), key.to_string(), slot.history));
            false
        });
        out
    }

    /// A key's history, if it has one that has not expired at `now`.
    pub fn get(&self, limiter: &str, key: &str, now: u64) -> Option<ViolationHistory> {
        let h = self.limiters.get(limiter)?.get(key)?.history;
        (h.expires_unix_ns > now).then_some(h)
    }

    /// Every live history of `limiter` at `now`, most denials first.
    pub fn list(&self, limiter: &str, now: u64) -> Vec<(String, ViolationHistory)> {
        let Some(m) = self.limiters.get(limiter) else { return Vec::new() };
        let mut v: Vec<_> = m
            .iter()
            .filter(|(_, s)| s.history.expires_unix_ns > now)
            .map(|(k, s)| (k.to_string(), s.history))
            .collect();
        v.sort_by(|a, b| b.1.denials.cmp(&a.1.denials).then_with(|| a.0.cmp(&b.0)));
        v
    }

    /// Replays a logged history (the last record of a key wins; an expired one removes it).
    pub fn restore(&mut self, limiter: &str, key: &str, h: ViolationHistory, now: u64) {
        if h.expires_unix_ns <= now {
            if let Some(m) = self.limiters.get_mut(limiter) {
                if m.remove(key).is_some() {
                    self.resident -= 1;
                }
            }
            return;
        }
        let m = self.limiters.entry(limiter.to_owned()).or_default();
        let slot = Slot { history: h, logged_unix_ns: h.last_denied_unix_ns.max(1), dirty: false };
        if m.insert(key.into(), slot).is_none() {
            self.resident += 1;
        }
    }

    /// Drops every history expired at `now` (dirty ones too: an expired history needs no
    /// record, replay drops it as well). Returns how many.
    pub fn sweep(&mut self, now: u64) -> usize {
        let before = self.resident;
        for m in self.limiters.values_mut() {
            m.retain(|_, s| s.history.expires_unix_ns > now);
        }
        self.limiters.retain(|_, m| !m.is_empty());
        self.resident = self.limiters.values().map(HashMap::len).sum();
        before - self.resident
    }

    /// Histories held in memory.
    pub fn resident(&self) -> usize {
        self.resident
    }

    /// The record of a key's history at `now`.
    pub fn record(limiter: &str, key: &str, h: &ViolationHistory, now: u64) -> Vec<u8> {
        ViolationsRecord {
            now_unix_ns: now,
            denials: h.denials,
            first_denied_unix_ns: h.first_denied_unix_ns,
            last_denied_unix_ns: h.last_denied_unix_ns,
            expires_unix_ns: h.expires_unix_ns,
            limiter,
            key,
        }
        .encode()
    }

    /// Notes the LSN of a record just enqueued for this state.
    pub fn note_record(&mut self, lsn: u64, timestamp_unix_ns: u64) {
        self.last_lsn = self.last_lsn.max(lsn);
        self.last_timestamp_unix_ns = self.last_timestamp_unix_ns.max(timestamp_unix_ns);
    }

    /// Re-applies one `RateLimitViolations` record during recovery.
    pub fn replay(&mut self, lsn: u64, timestamp_unix_ns: u64, body: &[u8]) -> Result<(), String> {
        let rec = ViolationsRecord::decode(body)?;
        self.note_record(lsn, timestamp_unix_ns);
        let h = ViolationHistory {
            denials: rec.denials,
            first_denied_unix_ns: rec.first_denied_unix_ns,
            last_denied_unix_ns: rec.last_denied_unix_ns,
            expires_unix_ns: rec.expires_unix_ns,
        };
        self.restore(rec.limiter, rec.key, h, rec.now_unix_ns);
        Ok(())
    }

    /// Record bodies that recreate every history live at `now` (for snapshots), including
    /// denials not yet logged, each with the LSN and timestamp of the newest violations record.
    pub fn snapshot_records(&self, now: u64) -> Vec<SnapshotRecord> {
        let mut out = Vec::new();
        for (limiter, m) in &self.limiters {
            for (key, slot) in m.iter().filter(|(_, s)| s.history.expires_unix_ns > now) {
                out.push(SnapshotRecord {
                    lsn: self.last_lsn,
                    timestamp_unix_ns: self.last_timestamp_unix_ns,
                    body: Self::record(limiter, key, &slot.history, now),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_flood_of_denials_is_logged_once_per_interval() {
        let mut v = Violations::default();
        let mut logged = 0;
        // 10,000 denials over 10 s: one record per second at most.
        for i in 0..10_000u64 {
            if v.note_denial("api", "k", 100 * S + i * 1_000_000, 60 * S).is_some() {
                logged += 1;
            }
        }
        assert!((10..=11).contains(&logged), "{logged} records");
        let h = v.get("api", "k", 110 * S).unwrap();
        assert_eq!((h.denials, h.first_denied_unix_ns), (10_000, 100 * S));
        assert!(v.take_due(109 * S + S / 2, false).is_empty(), "the last record is under 1 s old");
        let due = v.take_due(111 * S, false);
        assert_eq!(due.len(), 1, "the denials since the last record are pending");
        assert_eq!(due[0].2.denials, 10_000);
        assert!(v.take_due(112 * S, true).is_empty());
    }

    #[test]
    fn histories_expire_and_start_again() {
        let mut v = Violations::default();
        v.note_denial("api", "k", S, 10 * S);
        v.note_denial("api", "k", 2 * S, 10 * S);
        assert_eq!(v.get("api", "k", 11 * S).unwrap().denials, 2);
        assert_eq!(v.get("api", "k", 12 * S), None, "expired 10 s after the last denial");
        v.note_denial("api", "k", 13 * S, 10 * S);
        assert_eq!(v.get("api", "k", 13 * S).unwrap().denials, 1, "a new history");
        assert_eq!(v.sweep(30 * S), 1);
        assert_eq!(v.resident(), 0);
    }

    #[test]
    fn restore_keeps_the_last_record_and_drops_expired_ones() {
        let mut v = Violations::default();
        let h = ViolationHistory {
            denials: 5,
            first_denied_unix_ns: S,
            last_denied_unix_ns: 2 * S,
            expires_unix_ns: 10 * S,
        };
        v.restore("a", "k", h, 3 * S);
        v.restore("a", "k", ViolationHistory { denials: 7, ..h }, 3 * S);
        assert_eq!(v.get("a", "k", 3 * S).unwrap().denials, 7);
        assert_eq!(v.resident(), 1);
        v.restore("a", "k", h, 11 * S);
        assert_eq!((v.get("a", "k", 3 * S), v.resident()), (None, 0));
    }
}
