//! Durable circuit breakers whose transitions live in the log.
//!
//! Every transition (Closed → Open → HalfOpen → Closed/Open, and the manual ForcedOpen,
//! Disabled and reset) appends a `Breaker` record and is fsynced before the call that caused it
//! returns; recovery replays them, so an open breaker stays open across a restart until its
//! wall-clock `open_until`. Counters inside Closed live in memory only. See `docs/LIMITERS.md`.

pub(crate) mod config;
pub(crate) mod machine;

pub use config::{
    BreakerConfig, CircuitState, FailureRate, MAX_BREAKER_WINDOW_CALLS, MAX_HALF_OPEN_PROBES,
};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::MutexGuard;

use crate::error::{LimitKind, Result};
use crate::format::RecordKind;
use crate::state::breaker::BreakerState;
use crate::store::names::check_object_name;
use crate::store::{Durability, Store};
use crate::wal::commit::Ticket;
use machine::{Admit, Entry, Outcome};

/// One breaker's state and counters, from [`Store::breakers`] or [`CircuitBreaker::health`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerHealth {
    /// The breaker's name.
    pub name: String,
    /// Its state.
    pub state: CircuitState,
    /// Transitions so far (+1 on each); outcomes of older generations are ignored.
    pub generation: u64,
    /// Failures in a row in Closed (in memory only: 0 after a restart).
    pub consecutive_failures: u32,
    /// Calls in the failure-rate window (0 without a rate condition).
    pub window_calls: usize,
    /// Failed calls in the failure-rate window.
    pub window_failures: u32,
    /// When Open: the time probes may start, ns since the Unix epoch.
    pub open_until_unix_ns: Option<u64>,
    /// Time of the last transition, ns since the Unix epoch (0: never left Closed).
    pub last_transition_unix_ns: u64,
}

/// A breaker's health from its state-machine entry (for handles and followers).
pub(crate) fn health(name: &str, e: &Entry) -> BreakerHealth {
    BreakerHealth {
        name: name.to_owned(),
        state: e.state,
        generation: e.generation,
        consecutive_failures: e.consecutive_failures,
        window_calls: e.window_calls(),
        window_failures: e.window_failures,
        open_until_unix_ns: (e.state == CircuitState::Open).then_some(e.open_until_unix_ns),
        last_transition_unix_ns: e.last_transition_unix_ns,
    }
}

/// A durable circuit breaker: a handle on the store, cheap to clone.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use walden::{Acquire, BreakerConfig, CircuitState, Store};
/// let store = Store::open(dir.path())?;
/// let db = store.breaker("payments-db", BreakerConfig::default())?;
/// for _ in 0..3 {
///     if let Acquire::Permitted(permit) = db.try_acquire()? {
///         permit.failure()?; // the call failed
///     }
/// }
/// assert_eq!(db.state(), CircuitState::Open);
/// assert!(matches!(db.try_acquire()?, Acquire::Rejected { retry_after: Some(_) }));
/// # Ok::<(), walden::Error>(())
/// ```
#[derive(Clone)]
pub struct CircuitBreaker {
    store: Store,
    name: Arc<str>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The answer of [`CircuitBreaker::try_acquire`].
#[derive(Debug)]
#[must_use = "a permit must be finished with success() or failure()"]
pub enum Acquire {
    /// The call may proceed; report its outcome through the permit.
    Permitted(Permit),
    /// The call must not be made.
    Rejected {
        /// `Some`: the breaker is open for this much longer. `None`: unknown (forced open, or
        /// half-open with every probe slot taken).
        retry_after: Option<Duration>,
    },
}

/// Permission for one call. Report its outcome with [`success`](Self::success),
/// [`failure`](Self::failure) or [`finish`](Self::finish); dropping it unreported counts
/// nothing (and frees a half-open probe slot).
#[must_use = "report the call's outcome with success() or failure()"]
pub struct Permit {
    breaker: CircuitBreaker,
    generation: u64,
    started_unix_ns: u64,
    reported: bool,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The circuit breaker named `name` (1–64 bytes of `[A-Za-z0-9_.-]`), created Closed if
    /// the log knows nothing of it. `config` applies from now on (it is not persisted; the
    /// last call wins). A breaker recovered in HalfOpen had probes in flight when the process
    /// died: they are treated as failed, so this call reopens it for `open_duration`
    /// (durably) before returning.
    pub fn breaker(&self, name: &str, config: BreakerConfig) -> Result<CircuitBreaker> {
        self.check_open()?;
        check_object_name(LimitKind::BreakerName, name)?;
        config.validate()?;
        let b = CircuitBreaker { store: self.clone(), name: Arc::from(name) };
        let now = self.inner.options.clock.now_unix_ns();
        let mut st = self.inner.breakers.lock();
        let e = st.entries.entry(name.to_owned()).or_default();
        e.configure(config);
        if e.interrupted_probe {
            let pending = b.log_transition(e, CircuitState::Open, now)?;
            drop(st);
            b.wait(pending)?;
        }
        Ok(b)
    }

    /// Every breaker the store knows (from the log or created since open), sorted by name.
    /// Breakers recovered but not yet opened with [`Store::breaker`] show their logged state.
    pub fn breakers(&self) -> Vec<BreakerHealth> {
        self.inner.breakers.lock().entries.iter().map(|(n, e)| health(n, e)).collect()
    }
}

impl CircuitBreaker {
    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its current state.
    pub fn state(&self) -> CircuitState {
        self.with_entry(|e| e.state)
    }

    /// Its state and counters.
    pub fn health(&self) -> BreakerHealth {
        self.with_entry(|e| health(&self.name, e))
    }

    fn with_entry<T>(&self, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut st = self.store.inner.breakers.lock();
        f(self.entry(&mut st))
    }

    fn entry<'a>(&self, st: &'a mut MutexGuard<'_, BreakerState>) -> &'a mut Entry {
        // Entries are never removed, and a handle exists only after `Store::breaker`.
        st.entries.get_mut(&*self.name).expect("a breaker handle's entry exists")
    }

    fn now(&self) -> u64 {
        self.store.inner.options.clock.now_unix_ns()
    }

    /// Enqueues the record of a transition under the caller's lock, then applies it. The
    /// caller releases the lock and [`wait`](Self::wait)s before acting on the new state.
    fn log_transition(
        &self,
        e: &mut Entry,
        to: CircuitState,
        now: u64,
    ) -> Result<(Ticket, Durability)> {
        let rec = e.transition_record(&self.name, to, now);
        let ticket = self.store.append_record(RecordKind::Breaker, rec.encode())?;
        e.enter(&rec);
        e.lsn = ticket.lsn;
        Ok((ticket, e.config.durability))
    }

    fn wait(&self, (ticket, durability): (Ticket, Durability)) -> Result<()> {
        self.store.wait_for(ticket, durability)
    }

    /// Asks to make one call: a [`Permit`], or a rejection with how long the breaker stays
    /// open. The first call after `open_until` turns the breaker half-open (durably) and gets
    /// the first probe.
    pub fn try_acquire(&self) -> Result<Acquire> {
        self.store.check_open()?;
        let now = self.now();
        let mut st = self.store.inner.breakers.lock();
        let e = self.entry(&mut st);
        let mut pending = None;
        let generation = loop {
            match e.admit(now) {
                Admit::Permit { generation } => break generation,
                Admit::Reject { retry_after } => return Ok(Acquire::Rejected { retry_after }),
                Admit::Transition(to) => pending = Some(self.log_transition(e, to, now)?),
            }
        };
        drop(st);
        let permit =
            Permit { breaker: self.clone(), generation, started_unix_ns: now, reported: false };
        if let Some(p) = pending {
            self.wait(p)?; // on error the permit is dropped, freeing its probe slot
        }
        Ok(Acquire::Permitted(permit))
    }

    /// Closes the breaker (from any state, including the manual ones) with fresh counters.
    pub fn reset(&self) -> Result<()> {
        self.set_state(CircuitState::Closed)
    }

    /// Opens the breaker until [`reset`](Self::reset), across restarts.
    pub fn force_open(&self) -> Result<()> {
        self.set_state(CircuitState::ForcedOpen)
    }

    /// Lets every call through and counts nothing until [`reset`](Self::reset), across
    /// restarts.
    pub fn disable(&self) -> Result<()> {
        self.set_state(CircuitState::Disabled)
    }

    fn set_state(&self, to: CircuitState) -> Result<()> {
        let now = self.now();
        let mut st = self.store.inner.breakers.lock();
        let pending = self.log_transition(self.entry(&mut st), to, now)?;
        drop(st);
        self.wait(pending)
    }
}

impl Permit {
    /// The breaker generation this call started in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The call succeeded; its duration is measured with the store's clock. Returns whether
    /// the outcome counted (`false`: the breaker changed generation since the call started,
    /// or it is disabled or forced open, states that count nothing).
    pub fn success(self) -> Result<bool> {
        let elapsed = self.elapsed();
        self.finish(true, elapsed)
    }

    /// The call failed. Returns whether the outcome counted (see [`success`](Self::success)).
    pub fn failure(self) -> Result<bool> {
        let elapsed = self.elapsed();
        self.finish(false, elapsed)
    }

    fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.breaker.now().saturating_sub(self.started_unix_ns))
    }

    /// Reports the outcome with an explicit duration (checked against the slow-call
    /// threshold). A transition it causes is durable before this returns.
    pub fn finish(mut self, ok: bool, duration: Duration) -> Result<bool> {
        self.reported = true;
        let b = &self.breaker;
        b.store.check_open()?;
        let now = b.now();
        let mut st = b.store.inner.breakers.lock();
        let e = b.entry(&mut st);
        let pending = match e.outcome(self.generation, ok, duration) {
            Outcome::Stale => return Ok(false),
            Outcome::Counted => return Ok(true),
            Outcome::Transition(to) => b.log_transition(e, to, now)?,
        };
        drop(st);
        b.wait(pending)?;
        Ok(true)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.reported {
            let mut st = self.breaker.store.inner.breakers.lock();
            self.breaker.entry(&mut st).release(self.generation);
        }
    }
}
