//! Durable rate limiters (GCRA) whose state lives in the log.
//!
//! Every allowed check appends a `RateLimit` record holding the key's new theoretical arrival
//! time; recovery replays them, so a crash never hands out a fresh quota. Denials write nothing.
//! See `docs/LIMITERS.md` for the formulas, the bytes and what is durable when.

pub(crate) mod codec;
mod gcra;
mod record;
mod violations;

pub use codec::MAX_OBJECT_NAME_BYTES;
pub use gcra::{Decision, Quota, MAX_QUOTA_WINDOW_NS};
pub use record::{RateLimitRecord, RATELIMIT_BODY_VERSION};
pub use violations::{ViolationHistory, DEFAULT_VIOLATION_RETENTION_NS, VIOLATION_LOG_INTERVAL_NS};

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, LimitKind, Result};
use crate::format::RecordKind;
use crate::store::replay::SnapshotRecord;
use crate::store::{Durability, Store};
use codec::check_object_name;
use violations::Violations;

/// Resident keys below which no automatic sweep runs.
const MIN_SWEEP_KEYS: usize = 1024;

/// Rate-limiter state rebuilt from the log: the TAT of every non-idle key, per limiter.
#[derive(Debug)]
pub(crate) struct RateLimitState {
    limiters: HashMap<String, HashMap<Box<str>, u64>>,
    resident_keys: usize,
    /// Largest time any limiter has used: time never runs backwards for limiters.
    high_water_unix_ns: u64,
    /// Resident count at which the next automatic sweep runs (twice the count after the last
    /// one), so sweeping costs O(1) amortized per new key.
    next_sweep_at: usize,
    swept_keys: u64,
    /// LSN and timestamp of the newest `RateLimit` record in this state (for snapshots).
    last_lsn: u64,
    last_timestamp_unix_ns: u64,
    /// Denial counts per key (abuse tracking), logged at most once per key per interval.
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
    fn observe(&mut self, clock_ns: u64) -> u64 {
        self.high_water_unix_ns = self.high_water_unix_ns.max(clock_ns);
        self.high_water_unix_ns
    }

    fn tat(&self, limiter: &str, key: &str) -> u64 {
        self.limiters.get(limiter).and_then(|m| m.get(key)).copied().unwrap_or(0)
    }

    /// Stores a key's TAT; an idle one (`tat ≤ now`) is removed instead. May sweep.
    fn set(&mut self, limiter: &str, key: &str, tat: u64, now: u64) {
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
    fn note_record(&mut self, lsn: u64, timestamp_unix_ns: u64) {
        self.last_lsn = self.last_lsn.max(lsn);
        self.last_timestamp_unix_ns = self.last_timestamp_unix_ns.max(timestamp_unix_ns);
    }
}

/// Counters of the rate-limiter state, from [`Store::rate_limit_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimitStats {
    /// Limiters that hold at least one resident key.
    pub limiters: usize,
    /// Keys held in memory (not idle at the last sweep).
    pub resident_keys: usize,
    /// Keys dropped as idle by sweeps since open.
    pub swept_keys: u64,
    /// Largest time any limiter has used, ns since the Unix epoch (restored from the log).
    pub high_water_unix_ns: u64,
    /// Keys with a violation history (denials) held in memory.
    pub violation_keys: usize,
}

/// A keyed, durable rate limiter: a handle on the store, cheap to clone.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use walden::{Quota, Store};
/// let store = Store::open(dir.path())?;
/// let login = store.rate_limiter("login", Quota::per_minute(3))?;
/// for _ in 0..3 {
///     assert!(login.check("ip:10.0.0.1")?.allowed);
/// }
/// let denied = login.check("ip:10.0.0.1")?;
/// assert!(!denied.allowed);
/// assert_eq!(denied.retry_after.as_secs_f64().round(), 20.0); // one cell per 20 s
/// assert!(login.check("ip:10.0.0.2")?.allowed); // keys are independent
/// # Ok::<(), walden::Error>(())
/// ```
#[derive(Clone)]
pub struct RateLimiter {
    store: Store,
    name: Arc<str>,
    quota: Quota,
    durability: Durability,
    violation_retention_ns: u64,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.name)
            .field("quota", &self.quota)
            .field("durability", &self.durability)
            .finish()
    }
}

impl Store {
    /// A rate limiter named `name` (1–64 bytes of `[A-Za-z0-9_.-]`) with a default quota.
    /// Its keys' state is shared by every handle with the same name, and survives restarts.
    /// Checks use the store's default durability (see [`RateLimiter::with_durability`]).
    pub fn rate_limiter(&self, name: &str, quota: Quota) -> Result<RateLimiter> {
        check_object_name(LimitKind::LimiterName, name)?;
        quota.validate()?;
        Ok(RateLimiter {
            store: self.clone(),
            name: Arc::from(name),
            quota,
            durability: self.inner.options.durability,
            violation_retention_ns: DEFAULT_VIOLATION_RETENTION_NS,
        })
    }

    /// Counters of the rate-limiter state (resident keys, sweeps, high-water mark).
    pub fn rate_limit_stats(&self) -> RateLimitStats {
        let st = self.inner.ratelimits.lock();
        RateLimitStats {
            limiters: st.limiters.len(),
            resident_keys: st.resident_keys,
            swept_keys: st.swept_keys,
            high_water_unix_ns: st.high_water_unix_ns,
            violation_keys: st.violations.resident(),
        }
    }

    /// Drops every idle rate-limit key now (sweeps also run on their own as keys are added)
    /// and returns how many were dropped. Nothing is written: an idle key needs no record.
    pub fn sweep_rate_limits(&self) -> usize {
        let clock_ns = self.inner.options.clock.now_unix_ns();
        let mut st = self.inner.ratelimits.lock();
        let now = st.observe(clock_ns);
        st.sweep(now)
    }
}

impl RateLimiter {
    /// The limiter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The default quota of [`check`](Self::check), [`check_n`](Self::check_n) and
    /// [`peek`](Self::peek).
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The same limiter with another durability for its allowed checks:
    /// [`Durability::Immediate`] returns only after the record is fsynced;
    /// [`Durability::Buffered`] after it is written to the OS (a power loss may forget the
    /// checks of the last flush interval; a process crash forgets nothing).
    pub fn with_durability(self, durability: Durability) -> RateLimiter {
        RateLimiter { durability, ..self }
    }

    /// The same limiter keeping each key's violation history (denial count, first and last
    /// denial) for `retention` after its last denial (default 24 hours, at least 1 ns).
    pub fn with_violation_retention(self, retention: Duration) -> RateLimiter {
        let ns = u64::try_from(retention.as_nanos()).unwrap_or(u64::MAX).max(1);
        RateLimiter { violation_retention_ns: ns.min(MAX_QUOTA_WINDOW_NS), ..self }
    }

    /// Spends one cell of `key`'s quota if available.
    pub fn check(&self, key: &str) -> Result<Decision> {
        self.check_with(key, 1, &self.quota)
    }

    /// Spends `n ≥ 1` cells at once (weighted request), all or nothing. `n = 0` fails with
    /// [`Error::ZeroCost`] (use [`peek`](Self::peek)); `n` above the burst fails with
    /// [`Error::InsufficientCapacity`], since it could never be allowed.
    pub fn check_n(&self, key: &str, n: u32) -> Result<Decision> {
        self.check_with(key, n, &self.quota)
    }

    /// Whether a check of one cell would be allowed now, and how many cells are available
    /// (`remaining`), consuming nothing and writing nothing. A spent key is reported as
    /// denied (unlike redis-cell's quantity-0 call, which is always "allowed").
    pub fn peek(&self, key: &str) -> Result<Decision> {
        self.store.check_key(key)?;
        let mut st = self.store.inner.ratelimits.lock();
        let now = st.observe(self.clock_ns());
        Ok(gcra::decide(&self.quota, st.tat(&self.name, key), now, 0).0)
    }

    /// Spends `n` cells of `key` under a per-call `quota` (for keys with their own limits,
    /// e.g. per plan). The key's state is its TAT alone, so quotas may differ between calls.
    pub fn check_with(&self, key: &str, n: u32, quota: &Quota) -> Result<Decision> {
        self.spend(key, n, quota, true)
    }

    /// Blocks until one cell of `key` is available and spends it, or returns the denial at
    /// once if it would take longer than `max_wait` (`retry_after` says how long). Waiting
    /// uses the process's monotonic clock; the checks themselves use the store's clock, and
    /// the denials seen while waiting are not counted as violations.
    pub fn wait_until_ready(&self, key: &str, max_wait: Duration) -> Result<Decision> {
        let deadline = Instant::now() + max_wait;
        loop {
            let d = self.spend(key, 1, &self.quota, false)?;
            let left = deadline.saturating_duration_since(Instant::now());
            if d.allowed || d.retry_after > left {
                return Ok(d);
            }
            std::thread::sleep(d.retry_after.max(Duration::from_micros(100)));
        }
    }

    /// Forgives `key`: it gets its full burst back (a successful login forgiving its failed
    /// attempts). Logged like an allowed check; returns whether the key had spent cells. Its
    /// violation history is kept.
    pub fn reset(&self, key: &str) -> Result<bool> {
        self.store.check_key(key)?;
        let mut st = self.store.inner.ratelimits.lock();
        let now = st.observe(self.clock_ns());
        if st.tat(&self.name, key) <= now {
            return Ok(false);
        }
        // A TAT equal to `now` reads as idle: replay removes the key.
        let body = RateLimitRecord { now_unix_ns: now, tat_unix_ns: now, limiter: &self.name, key }
            .encode();
        let ticket = self.store.append_record(RecordKind::RateLimit, body)?;
        st.note_record(ticket.lsn, now);
        st.set(&self.name, key, now, now);
        drop(st);
        self.store.wait_for(ticket, self.durability)?;
        Ok(true)
    }

    /// `key`'s violation history (denied checks), if it has one that has not expired.
    pub fn violations(&self, key: &str) -> Option<ViolationHistory> {
        let mut st = self.store.inner.ratelimits.lock();
        let now = st.observe(self.clock_ns());
        st.violations.get(&self.name, key, now)
    }

    /// Every key of this limiter with a live violation history, most denials first.
    pub fn violators(&self) -> Vec<(String, ViolationHistory)> {
        let mut st = self.store.inner.ratelimits.lock();
        let now = st.observe(self.clock_ns());
        st.violations.list(&self.name, now)
    }

    fn clock_ns(&self) -> u64 {
        self.store.inner.options.clock.now_unix_ns()
    }

    fn spend(&self, key: &str, n: u32, quota: &Quota, count_denial: bool) -> Result<Decision> {
        self.store.check_key(key)?;
        quota.validate()?;
        if n == 0 {
            return Err(Error::ZeroCost);
        }
        if n > quota.burst() {
            return Err(Error::InsufficientCapacity { cost: n, burst: quota.burst() });
        }
        let mut st = self.store.inner.ratelimits.lock();
        let now = st.observe(self.clock_ns());
        let (decision, new_tat) = gcra::decide(quota, st.tat(&self.name, key), now, n);
        let Some(tat_unix_ns) = new_tat else {
            if count_denial {
                st.violations.note_denial(&self.name, key, now, self.violation_retention_ns);
            }
            return Ok(decision);
        };
        let body =
            RateLimitRecord { now_unix_ns: now, tat_unix_ns, limiter: &self.name, key }.encode();
        // Enqueued under our lock, so LSN order is the order of TAT updates.
        let ticket = self.store.append_record(RecordKind::RateLimit, body)?;
        st.note_record(ticket.lsn, now);
        st.set(&self.name, key, tat_unix_ns, now);
        drop(st);
        self.store.wait_for(ticket, self.durability)?;
        Ok(decision)
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
