//! Lockout state rebuilt from the log: a circuit breaker per key for "5 failed logins within
//! 15 minutes, then locked out for 15 minutes", and its rules, free of locks and I/O.
//!
//! A key's whole state is the times of its recent failures (at most `max_failures`) and the
//! end of its lock. It is idle, and dropped, once the lock has ended and its newest failure
//! is older than the window: it then decides exactly like a key never seen.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::breaker::config::ns;
use crate::format::lockout::LockoutRecord;
use crate::limits::MIN_SWEEP_KEYS;
use crate::snapshot::SnapshotRecord;

/// One key's lockout state, as logged (a `Lockout` record) and held in memory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockoutKey {
    /// Times of the failures counted towards the next lock, oldest first.
    pub failures_unix_ns: Vec<u64>,
    /// End of the current lock (0 or past: not locked).
    pub locked_until_unix_ns: u64,
    /// When the key is idle if nothing else happens (lock over, newest failure out of the
    /// window): replay and sweeps drop it from then on.
    pub expires_unix_ns: u64,
}

/// What a check or a reported attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutStatus {
    /// Whether the key is locked out now.
    pub locked: bool,
    /// When locked: how long until it is not. Zero otherwise.
    pub retry_after: Duration,
    /// Failures counted in the window (0 while locked).
    pub failures: u32,
    /// Failures left before the lock (0 while locked).
    pub remaining_attempts: u32,
}

/// The rule a lockout applies (not logged: the log holds times, any rule reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rule {
    pub max_failures: u32,
    pub window_ns: u64,
    pub lockout_ns: u64,
}

/// Every non-idle key of every lockout.
#[derive(Debug)]
pub(crate) struct LockoutState {
    lockouts: HashMap<String, HashMap<Box<str>, LockoutKey>>,
    resident: usize,
    next_sweep_at: usize,
    pub swept: u64,
    /// LSN and timestamp of the newest `Lockout` record in this state (for snapshots).
    last_lsn: u64,
    last_timestamp_unix_ns: u64,
}

impl Default for LockoutState {
    fn default() -> Self {
        LockoutState {
            lockouts: HashMap::new(),
            resident: 0,
            next_sweep_at: MIN_SWEEP_KEYS,
            swept: 0,
            last_lsn: 0,
            last_timestamp_unix_ns: 0,
        }
    }
}

fn prune(k: &mut LockoutKey, rule: &Rule, now: u64) {
    let oldest = now.saturating_sub(rule.window_ns);
    k.failures_unix_ns.retain(|&t| t >= oldest);
}

fn status(k: Option<&LockoutKey>, rule: &Rule, now: u64) -> LockoutStatus {
    let locked_until = k.map_or(0, |k| k.locked_until_unix_ns);
    if locked_until > now {
        return LockoutStatus {
            locked: true,
            retry_after: Duration::from_nanos(locked_until - now),
            failures: 0,
            remaining_attempts: 0,
        };
    }
    let oldest = now.saturating_sub(rule.window_ns);
    let failures =
        k.map_or(0, |k| k.failures_unix_ns.iter().filter(|&&t| t >= oldest).count() as u32);
    LockoutStatus {
        locked: false,
        retry_after: Duration::ZERO,
        failures,
        remaining_attempts: rule.max_failures.saturating_sub(failures),
    }
}

impl LockoutState {
    /// The key's status at `now`; changes nothing.
    pub fn check(&self, name: &str, key: &str, rule: &Rule, now: u64) -> LockoutStatus {
        status(self.lockouts.get(name).and_then(|m| m.get(key)), rule, now)
    }

    /// Counts a failure at `now`. Returns the key's new state (to log; `None`: the key is
    /// locked and the failure changes nothing) and its status.
    pub fn failure(
        &mut self,
        name: &str,
        key: &str,
        rule: &Rule,
        now: u64,
    ) -> (Option<LockoutKey>, LockoutStatus) {
        let current = self.lockouts.get(name).and_then(|m| m.get(key));
        if current.is_some_and(|k| k.locked_until_unix_ns > now) {
            return (None, status(current, rule, now));
        }
        let mut k = current.cloned().unwrap_or_default();
        prune(&mut k, rule, now);
        k.failures_unix_ns.push(now);
        let mut failures: VecDeque<u64> = k.failures_unix_ns.into();
        while failures.len() > rule.max_failures as usize {
            failures.pop_front();
        }
        k.failures_unix_ns = failures.into();
        if k.failures_unix_ns.len() >= rule.max_failures as usize {
            k.failures_unix_ns.clear();
            k.locked_until_unix_ns = now.saturating_add(rule.lockout_ns);
        }
        let newest = k.failures_unix_ns.last().map_or(0, |&t| t.saturating_add(rule.window_ns));
        k.expires_unix_ns = k.locked_until_unix_ns.max(newest);
        let st = status(Some(&k), rule, now);
        self.set(name, key, k.clone(), now);
        (Some(k), st)
    }

    /// Forgets `key`'s failures (a success) or, with `lift`, its lock too (a reset). Returns
    /// the state to log if anything changed.
    pub fn forgive(&mut self, name: &str, key: &str, now: u64, lift: bool) -> Option<LockoutKey> {
        let k = self.lockouts.get(name)?.get(key)?;
        let locked = k.locked_until_unix_ns > now;
        if locked && !lift {
            return None;
        }
        let after = LockoutKey::default();
        self.set(name, key, after.clone(), now);
        Some(after)
    }

    /// Stores a key's state; an idle one (`expires ≤ now`) is removed instead. May sweep.
    pub fn set(&mut self, name: &str, key: &str, k: LockoutKey, now: u64) {
        if k.expires_unix_ns <= now {
            if let Some(m) = self.lockouts.get_mut(name) {
                if m.remove(key).is_some() {
                    self.resident -= 1;
                }
            }
            return;
        }
        let m = match self.lockouts.get_mut(name) {
            Some(m) => m,
            None => self.lockouts.entry(name.to_owned()).or_default(),
        };
        if m.insert(key.into(), k).is_none() {
            self.resident += 1;
            if self.resident >= self.next_sweep_at {
                self.sweep(now);
            }
        }
    }

    /// Drops every idle key at `now`. Returns how many.
    pub fn sweep(&mut self, now: u64) -> usize {
        let before = self.resident;
        for m in self.lockouts.values_mut() {
            m.retain(|_, k| k.expires_unix_ns > now);
        }
        self.lockouts.retain(|_, m| !m.is_empty());
        self.resident = self.lockouts.values().map(HashMap::len).sum();
        self.next_sweep_at = (2 * self.resident).max(MIN_SWEEP_KEYS);
        let dropped = before - self.resident;
        self.swept += dropped as u64;
        dropped
    }

    /// Keys held in memory.
    pub fn resident(&self) -> usize {
        self.resident
    }

    /// The record of a key's new state at `now` (encode it under the same lock as the change).
    pub fn record(name: &str, key: &str, k: &LockoutKey, now: u64) -> Vec<u8> {
        LockoutRecord {
            now_unix_ns: now,
            locked_until_unix_ns: k.locked_until_unix_ns,
            expires_unix_ns: k.expires_unix_ns,
            failures_unix_ns: k.failures_unix_ns.clone(),
            name,
            key,
        }
        .encode()
    }

    /// Notes the LSN of a record just enqueued for this state.
    pub fn note_record(&mut self, lsn: u64, timestamp_unix_ns: u64) {
        self.last_lsn = self.last_lsn.max(lsn);
        self.last_timestamp_unix_ns = self.last_timestamp_unix_ns.max(timestamp_unix_ns);
    }

    /// Re-applies one `Lockout` record during recovery (the last record of a key wins; an
    /// idle one removes it).
    pub fn replay(&mut self, lsn: u64, timestamp_unix_ns: u64, body: &[u8]) -> Result<(), String> {
        let rec = LockoutRecord::decode(body)?;
        self.note_record(lsn, timestamp_unix_ns);
        let k = LockoutKey {
            failures_unix_ns: rec.failures_unix_ns,
            locked_until_unix_ns: rec.locked_until_unix_ns,
            expires_unix_ns: rec.expires_unix_ns,
        };
        self.set(rec.name, rec.key, k, rec.now_unix_ns);
        Ok(())
    }

    /// Record bodies that recreate every key still live at `now` (for snapshots), each with
    /// the LSN and timestamp of the newest `Lockout` record folded into this state.
    pub fn snapshot_records(&self, now: u64) -> Vec<SnapshotRecord> {
        let mut out = Vec::new();
        for (name, m) in &self.lockouts {
            for (key, k) in m.iter().filter(|(_, k)| k.expires_unix_ns > now) {
                out.push(SnapshotRecord {
                    lsn: self.last_lsn,
                    timestamp_unix_ns: self.last_timestamp_unix_ns,
                    body: Self::record(name, key, k, now),
                });
            }
        }
        out
    }
}

impl Rule {
    pub fn new(max_failures: u32, window: Duration, lockout: Duration) -> Rule {
        Rule { max_failures, window_ns: ns(window), lockout_ns: ns(lockout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const MIN: u64 = 60 * S;

    fn rule() -> Rule {
        Rule::new(5, Duration::from_secs(15 * 60), Duration::from_secs(15 * 60))
    }

    #[test]
    fn five_failures_within_the_window_lock_the_key_for_the_lockout() {
        let mut st = LockoutState::default();
        let r = rule();
        for i in 0..4 {
            let (_, s) = st.failure("login", "alice", &r, i * MIN);
            assert_eq!(
                (s.locked, s.failures, s.remaining_attempts),
                (false, i as u32 + 1, 4 - i as u32)
            );
        }
        let (k, s) = st.failure("login", "alice", &r, 4 * MIN);
        assert!(s.locked);
        assert_eq!(s.retry_after, Duration::from_secs(15 * 60));
        assert_eq!(k.unwrap().locked_until_unix_ns, 19 * MIN);
        // Locked: every attempt is denied until the lock ends, and more failures change nothing.
        assert!(st.check("login", "alice", &r, 18 * MIN).locked);
        assert_eq!(st.failure("login", "alice", &r, 18 * MIN).0, None);
        let s = st.check("login", "alice", &r, 19 * MIN);
        assert_eq!((s.locked, s.failures, s.remaining_attempts), (false, 0, 5), "a fresh start");
        assert!(!st.check("login", "bob", &r, 4 * MIN).locked, "keys are independent");
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let mut st = LockoutState::default();
        let r = rule();
        for t in [0, 5, 10, 14] {
            st.failure("login", "alice", &r, t * MIN);
        }
        // At 16 min the failure at 0 has left the 15-minute window: 4 in the window after this.
        let (_, s) = st.failure("login", "alice", &r, 16 * MIN);
        assert_eq!((s.locked, s.failures), (false, 4));
        assert!(st.failure("login", "alice", &r, 17 * MIN).1.locked);
    }

    #[test]
    fn success_forgives_failures_but_not_an_active_lock() {
        let mut st = LockoutState::default();
        let r = rule();
        st.failure("login", "alice", &r, 0);
        st.failure("login", "alice", &r, 0);
        assert!(st.forgive("login", "alice", MIN, false).is_some());
        assert_eq!(st.check("login", "alice", &r, MIN).failures, 0);
        assert_eq!(st.resident(), 0, "a forgiven key is idle");
        for _ in 0..5 {
            st.failure("login", "alice", &r, 2 * MIN);
        }
        assert_eq!(st.forgive("login", "alice", 3 * MIN, false), None, "locked stays locked");
        assert!(st.forgive("login", "alice", 3 * MIN, true).is_some(), "reset lifts it");
        assert!(!st.check("login", "alice", &r, 3 * MIN).locked);
    }

    #[test]
    fn idle_keys_are_swept_and_memory_stays_bounded() {
        let mut st = LockoutState::default();
        let r = Rule::new(3, Duration::from_nanos(10), Duration::from_nanos(10));
        let mut max = 0;
        for i in 0..100_000u64 {
            st.failure("l", &format!("k{i}"), &r, i);
            max = max.max(st.resident());
        }
        assert!(max <= MIN_SWEEP_KEYS, "max resident {max}");
        st.sweep(100_000 + 10);
        assert_eq!(st.resident(), 0);
    }
}
