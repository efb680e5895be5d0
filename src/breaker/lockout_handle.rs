//! The lockout handle: [`Store::lockout`] and [`Lockout`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, LimitKind, Result};
use crate::format::RecordKind;
use crate::limits::{MAX_LOCKOUT_FAILURES, MAX_QUOTA_WINDOW_NS};
use crate::state::lockout::{LockoutKey, LockoutState, LockoutStatus, Rule};
use crate::store::names::check_object_name;
use crate::store::{Durability, Store};
use crate::wal::commit::Ticket;

/// The rule of a [`Lockout`]: `max_failures` failures within `window` lock a key out for
/// `lockout`.
///
/// ```
/// use std::time::Duration;
/// use walden::LockoutConfig;
/// let logins = LockoutConfig::new(5, Duration::from_secs(15 * 60), Duration::from_secs(15 * 60));
/// assert_eq!(logins.max_failures, 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutConfig {
    /// Failures (1–[`MAX_LOCKOUT_FAILURES`]) within `window` that lock a key.
    pub max_failures: u32,
    /// How far back failures count.
    pub window: Duration,
    /// How long a locked key stays locked.
    pub lockout: Duration,
    /// When the record of the failure that locks a key, a reset or a forgiving success is
    /// done: `Immediate` (default) waits for the fsync. Other failures are written without an
    /// fsync of their own (they survive a process crash; a power loss may lose the last
    /// flush interval's), so a brute-force flood never becomes a flood of fsyncs.
    pub durability: Durability,
}

impl LockoutConfig {
    /// `max_failures` within `window` lock a key for `lockout`; locks are fsynced.
    pub fn new(max_failures: u32, window: Duration, lockout: Duration) -> LockoutConfig {
        LockoutConfig { max_failures, window, lockout, durability: Durability::Immediate }
    }

    fn validate(&self) -> Result<()> {
        let bad = |reason| Err(Error::InvalidLockoutConfig { reason });
        let ok = |d: Duration| d.as_nanos() > 0 && d.as_nanos() <= u128::from(MAX_QUOTA_WINDOW_NS);
        if !(1..=MAX_LOCKOUT_FAILURES).contains(&self.max_failures) {
            return bad("max_failures must be 1 to MAX_LOCKOUT_FAILURES");
        }
        if !ok(self.window) {
            return bad("window must be positive and at most MAX_QUOTA_WINDOW_NS");
        }
        if !ok(self.lockout) {
            return bad("lockout must be positive and at most MAX_QUOTA_WINDOW_NS");
        }
        Ok(())
    }
}

/// Per-key lockouts ("5 failed logins within 15 minutes: locked out for 15 minutes"), durable
/// and bounded in memory: a handle on the store, cheap to clone.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use std::time::Duration;
/// use walden::{LockoutConfig, Store};
/// let store = Store::open(dir.path())?;
/// let min15 = Duration::from_secs(15 * 60);
/// let logins = store.lockout("login", LockoutConfig::new(5, min15, min15))?;
/// if logins.check("alice")?.locked { /* 429, Retry-After */ }
/// for _ in 0..5 {
///     logins.failure("alice")?; // wrong password
/// }
/// assert!(logins.check("alice")?.locked);
/// logins.success("bob")?; // a good login forgives bob's failed attempts
/// # Ok::<(), walden::Error>(())
/// ```
#[derive(Clone)]
pub struct Lockout {
    store: Store,
    name: Arc<str>,
    config: LockoutConfig,
    rule: Rule,
}

impl fmt::Debug for Lockout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lockout")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Counters of the lockout state, from [`Store::lockout_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockoutStats {
    /// Keys held in memory (locked, or with failures in their window).
    pub resident_keys: usize,
    /// Keys dropped as idle since open.
    pub swept_keys: u64,
}

impl Store {
    /// The lockout named `name` (1–64 bytes of `[A-Za-z0-9_.-]`). Its keys' state is shared
    /// by every handle with that name and survives restarts; `config` is this handle's rule.
    pub fn lockout(&self, name: &str, config: LockoutConfig) -> Result<Lockout> {
        check_object_name(LimitKind::LockoutName, name)?;
        config.validate()?;
        let rule = Rule::new(config.max_failures, config.window, config.lockout);
        Ok(Lockout { store: self.clone(), name: Arc::from(name), config, rule })
    }

    /// Counters of the lockout state.
    pub fn lockout_stats(&self) -> LockoutStats {
        let st = self.inner.lockouts.lock();
        LockoutStats { resident_keys: st.resident(), swept_keys: st.swept }
    }

    /// Drops every idle lockout key now (sweeps also run on their own as keys are added).
    pub fn sweep_lockouts(&self) -> usize {
        let now = self.inner.options.clock.now_unix_ns();
        self.inner.lockouts.lock().sweep(now)
    }
}

impl Lockout {
    /// The lockout's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn now(&self) -> u64 {
        self.store.inner.options.clock.now_unix_ns()
    }

    /// Whether `key` is locked out now, and how many attempts it has left. Writes nothing.
    pub fn check(&self, key: &str) -> Result<LockoutStatus> {
        self.store.check_key(key)?;
        let now = self.now();
        Ok(self.store.inner.lockouts.lock().check(&self.name, key, &self.rule, now))
    }

    /// Counts a failed attempt of `key` (logged); the one that reaches `max_failures` locks
    /// it, durably before this returns. While locked, failures change nothing.
    pub fn failure(&self, key: &str) -> Result<LockoutStatus> {
        self.store.check_key(key)?;
        let now = self.now();
        let mut st = self.store.inner.lockouts.lock();
        let (k, status) = st.failure(&self.name, key, &self.rule, now);
        let Some(k) = k else { return Ok(status) };
        let durability = if status.locked { self.config.durability } else { Durability::Buffered };
        let ticket = self.log(&mut st, key, &k, now)?;
        drop(st);
        self.store.wait_for(ticket, durability)?;
        Ok(status)
    }

    /// A successful attempt: forgets `key`'s failures (logged if it had any). An active lock
    /// stays (the caller should not have let the attempt through); see [`reset`](Self::reset).
    pub fn success(&self, key: &str) -> Result<LockoutStatus> {
        self.forgive(key, false)?;
        self.check(key)
    }

    /// Lifts `key`'s lock and forgets its failures (logged). Returns whether it had any.
    pub fn reset(&self, key: &str) -> Result<bool> {
        self.forgive(key, true)
    }

    fn forgive(&self, key: &str, lift: bool) -> Result<bool> {
        self.store.check_key(key)?;
        let now = self.now();
        let mut st = self.store.inner.lockouts.lock();
        let Some(k) = st.forgive(&self.name, key, now, lift) else { return Ok(false) };
        let ticket = self.log(&mut st, key, &k, now)?;
        drop(st);
        self.store.wait_for(ticket, self.config.durability)?;
        Ok(true)
    }
}

impl Lockout {
    /// Enqueues the `Lockout` record of one key's new state, under the lockout lock (`st`),
    /// so LSN order is change order.
    fn log(&self, st: &mut LockoutState, key: &str, k: &LockoutKey, now: u64) -> Result<Ticket> {
        let body = LockoutState::record(&self.name, key, k, now);
        let ticket = self.store.append_record(RecordKind::Lockout, body)?;
        st.note_record(ticket.lsn, now);
        Ok(ticket)
    }
}
