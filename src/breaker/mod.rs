//! Durable circuit breakers whose transitions live in the log.
//!
//! Every transition (Closed → Open → HalfOpen → Closed/Open, and the manual ForcedOpen,
//! Disabled and reset) appends a `Breaker` record and is fsynced before the call that caused it
//! returns; recovery replays them, so an open breaker stays open across a restart until its
//! wall-clock `open_until`. Closed-state counters are logged too, at most once per breaker per
//! `counts_log_interval` and without an fsync of their own, so failures add up across
//! processes. See `docs/LIMITERS.md`.

mod call;
pub(crate) mod config;
pub(crate) mod counters;
pub(crate) mod health;
mod lockout_handle;
pub(crate) mod machine;

pub use call::CallError;
pub use config::{
    Backoff, BreakerConfig, CircuitState, FailureRate, TripPredicate, MAX_BREAKER_WINDOW_CALLS,
    MAX_HALF_OPEN_PROBES,
};
pub use health::{BreakerCounts, BreakerHealth, HalfOpenProgress, StateChange, TripReason};
pub use lockout_handle::{Lockout, LockoutConfig, LockoutStats};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::MutexGuard;

use crate::error::{LimitKind, Result};
use crate::format::RecordKind;
use crate::state::breaker::{counts_record, BreakerState};
use crate::store::names::check_object_name;
use crate::store::{Durability, Store};
use crate::wal::commit::Ticket;
use machine::{Admit, Entry, Move, Outcome};

/// A breaker's health from its state-machine entry at `now` (for handles and followers).
pub(crate) fn health(name: &str, e: &mut Entry, now: u64) -> BreakerHealth {
    e.counters.prune(&e.config, now);
    let view = e.view(now);
    let opened = matches!(view.state, CircuitState::Open | CircuitState::HalfOpen);
    BreakerHealth {
        name: name.to_owned(),
        state: view.state,
        logged_state: e.state,
        generation: e.generation,
        reason: if opened { e.reason } else { None },
        counts: e.counters.totals,
        failure_rate_percent: e.config.failure_rate.and_then(|_| e.counters.failure_rate_percent()),
        open_until_unix_ns: view.open_until_unix_ns,
        half_open: e.half_open_progress().filter(|_| view.state == CircuitState::HalfOpen),
        last_transition_unix_ns: e.last_transition_unix_ns,
        shadow: e.registered && e.config.shadow,
        registered: e.registered,
    }
}

/// A durable circuit breaker: a handle on the store, cheap to clone.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use walden::{BreakerConfig, CallError, CircuitState, Store};
/// let store = Store::open(dir.path())?;
/// let db = store.breaker("payments-db", BreakerConfig::default())?;
/// for _ in 0..3 {
///     let r: Result<(), CallError<&str>> = db.call(|| Err("connection refused"));
///     assert!(matches!(r, Err(CallError::Failed(_))));
/// }
/// assert_eq!(db.state(), CircuitState::Open);
/// let r = db.call(|| Ok::<_, &str>("not called"));
/// assert!(matches!(r, Err(CallError::Rejected { retry_after: Some(_) })));
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

// A permit dropped without an outcome (an async caller cancelled by a timeout, a panic, a
// forgotten permit) counts as a failed call with its elapsed time, so it is also a slow call
// past the slow-call threshold. The same rule holds for every breaker in walden.
/// Permission for one call. Report its outcome with [`success`](Self::success),
/// [`failure`](Self::failure) or [`finish`](Self::finish); dropping it unreported counts as
/// a failure that took the time since the permit was issued.
#[must_use = "report the call's outcome with success() or failure()"]
pub struct Permit {
    breaker: CircuitBreaker,
    generation: u64,
    /// `false` for a call a shadow breaker would have rejected: its outcome counts nothing.
    counted: bool,
    started_unix_ns: u64,
    reported: bool,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name)
            .field("generation", &self.generation)
            .field("counted", &self.counted)
            .finish_non_exhaustive()
    }
}

impl Permit {
    pub(crate) fn new(
        breaker: CircuitBreaker,
        generation: u64,
        counted: bool,
        started_unix_ns: u64,
    ) -> Permit {
        Permit { breaker, generation, counted, started_unix_ns, reported: false }
    }

    /// The breaker generation this call started in.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the outcome will count: `false` for a call a shadow breaker lets through
    /// although it would have rejected it.
    pub fn is_counted(&self) -> bool {
        self.counted
    }

    /// The call succeeded; its duration is measured with the store's clock. Returns whether
    /// the outcome counted (`false`: the breaker changed generation since the call started,
    /// it is disabled or forced open, states that count nothing, or the permit is a shadow
    /// one).
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
        self.breaker.store.check_open()?;
        if !self.counted {
            return Ok(false);
        }
        self.breaker.report(self.generation, ok, duration, true)
    }
}

impl Drop for Permit {
    /// No outcome: a failed call of the elapsed time. A transition it causes is logged and
    /// written before the drop returns, but not waited for to be fsynced (the store's
    /// flusher syncs it within `buffered_flush_interval_ms`): a drop may run on an async
    /// executor's thread, and it has nobody to acknowledge to.
    fn drop(&mut self) {
        if self.reported || !self.counted {
            return;
        }
        let elapsed = self.elapsed();
        if let Err(error) = self.breaker.report(self.generation, false, elapsed, false) {
            tracing::warn!(
                target: "walden::breaker",
                breaker = %self.breaker.name, %error,
                "could not record a permit dropped without an outcome"
            );
        }
    }
}

/// A logged transition whose record the caller waits for before telling anyone.
pub(crate) struct Pending {
    ticket: Ticket,
    durability: Durability,
    change: StateChange,
    /// The counts record that follows the transition, if counts are logged.
    counts: Option<Ticket>,
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
        let mut st = self.inner.held_back.breakers.lock();
        let e = st.entries.entry(name.to_owned()).or_default();
        e.configure(config);
        if e.interrupted_probe {
            let reason = Some(TripReason::ProbeInterrupted);
            let m = Move { to: CircuitState::Open, at_unix_ns: now, reason };
            let pending = b.log_transition(e, m)?;
            drop(st);
            b.finish_pending(vec![pending], true)?;
        }
        Ok(b)
    }

    /// Every breaker the store knows, sorted by name: those with a transition or counts in
    /// the log, and those opened with [`Store::breaker`] in this process. Each reports its
    /// effective state now (see [`BreakerHealth::state`]).
    pub fn breakers(&self) -> Vec<BreakerHealth> {
        let now = self.inner.options.clock.now_unix_ns();
        let mut st = self.inner.held_back.breakers.lock();
        st.entries.iter_mut().map(|(n, e)| health(n, e, now)).collect()
    }
}

impl CircuitBreaker {
    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its effective state now: what the next call meets (an Open breaker whose wait is
    /// over is HalfOpen, a half-open period past its timeout is Open).
    pub fn state(&self) -> CircuitState {
        let now = self.now();
        self.with_entry(|e| e.view(now).state)
    }

    /// Its state and counters.
    pub fn health(&self) -> BreakerHealth {
        let now = self.now();
        self.with_entry(|e| health(&self.name, e, now))
    }

    /// Calls `listener` after every transition of this breaker (by any handle of this store),
    /// once its record is durable, outside the breaker's lock. Listeners live as long as the
    /// store; they must not panic. Every transition is also a `tracing` event (target
    /// `walden::breaker`).
    pub fn on_state_change(&self, listener: impl Fn(&StateChange) + Send + Sync + 'static) {
        let mut st = self.store.inner.held_back.breakers.lock();
        st.listeners.entry(self.name.to_string()).or_default().push(Arc::new(listener));
    }

    fn with_entry<T>(&self, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut st = self.store.inner.held_back.breakers.lock();
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
    /// caller releases the lock and calls [`finish_pending`](Self::finish_pending).
    fn log_transition(&self, e: &mut Entry, m: Move) -> Result<Pending> {
        let rec = e.transition_record(&self.name, &m);
        let ticket = self.store.append_record(RecordKind::Breaker, rec.encode())?;
        let from = e.state;
        e.enter(&rec);
        e.lsn = ticket.lsn;
        if m.to == CircuitState::Open {
            e.reason = m.reason;
        }
        let change = StateChange {
            breaker: self.name.to_string(),
            from,
            to: m.to,
            generation: e.generation,
            at_unix_ns: m.at_unix_ns,
            open_until_unix_ns: (m.to == CircuitState::Open).then_some(e.open_until_unix_ns),
            reason: e.reason.filter(|_| m.to == CircuitState::Open),
        };
        // The new generation's counters (totals, why it opened, the open period) follow the
        // transition, so a restart or a snapshot finds them.
        let counts = self.log_counts(e, m.at_unix_ns, true)?;
        Ok(Pending { ticket, durability: e.config.durability, change, counts })
    }

    /// Enqueues a `BreakerCounts` record of `e` if one is due at `now` (or, with `force`,
    /// whenever counts are logged at all); returns its ticket.
    fn log_counts(&self, e: &mut Entry, now: u64, force: bool) -> Result<Option<Ticket>> {
        let Some(s) = e.counts_due(now, force) else { return Ok(None) };
        let body = counts_record(&self.name, e, &s, now);
        let ticket = self.store.append_record(RecordKind::BreakerCounts, body)?;
        e.counts_lsn = ticket.lsn;
        Ok(Some(ticket))
    }

    /// Waits for logged transitions (for the fsync if `durable` and the breaker's
    /// durability asks for it, else until written), then reports them to `tracing` and the
    /// listeners.
    fn finish_pending(&self, pending: Vec<Pending>, durable: bool) -> Result<()> {
        for p in &pending {
            let durability = if durable { p.durability } else { Durability::Buffered };
            self.store.wait_for(p.ticket, durability)?;
            if let Some(counts) = p.counts {
                // Counts are written, never waited for to be fsynced.
                self.store.wait_for(counts, Durability::Buffered)?;
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        let listeners =
            self.store.inner.held_back.breakers.lock().listeners.get(&*self.name).cloned();
        for p in &pending {
            trace_change(&p.change);
            for l in listeners.iter().flatten() {
                l(&p.change);
            }
        }
        Ok(())
    }

    /// Asks to make one call: a [`Permit`], or a rejection with how long the breaker stays
    /// open. The first call after `open_until` turns the breaker half-open (durably) and gets
    /// the first probe.
    pub fn try_acquire(&self) -> Result<Acquire> {
        self.store.check_open()?;
        let now = self.now();
        let mut st = self.store.inner.held_back.breakers.lock();
        let e = self.entry(&mut st);
        let mut pending = Vec::new();
        let (generation, counted) = loop {
            match e.admit(now) {
                Admit::Permit { generation, counted } => break (generation, counted),
                Admit::Reject { retry_after } => {
                    drop(st);
                    self.finish_pending(pending, true)?;
                    return Ok(Acquire::Rejected { retry_after });
                }
                Admit::Transition(m) => pending.push(self.log_transition(e, m)?),
            }
        };
        drop(st);
        let permit = Permit::new(self.clone(), generation, counted, now);
        // On error the permit is dropped: a probe that never ran counts as failed.
        self.finish_pending(pending, true)?;
        Ok(Acquire::Permitted(permit))
    }

    /// Counts a call's outcome; `durable`: wait for a transition's fsync (else until
    /// written, for a permit dropped without an outcome). Returns whether it counted.
    pub(crate) fn report(
        &self,
        generation: u64,
        ok: bool,
        duration: Duration,
        durable: bool,
    ) -> Result<bool> {
        let now = self.now();
        let mut st = self.store.inner.held_back.breakers.lock();
        let e = self.entry(&mut st);
        let pending = match e.outcome(generation, ok, duration, now) {
            Outcome::Stale => return Ok(false),
            Outcome::Counted => {
                let counts = self.log_counts(e, now, false)?;
                drop(st);
                if let Some(ticket) = counts {
                    self.store.wait_for(ticket, Durability::Buffered)?;
                }
                return Ok(true);
            }
            Outcome::Transition(m) => vec![self.log_transition(e, m)?],
        };
        drop(st);
        self.finish_pending(pending, durable)?;
        Ok(true)
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
        let mut st = self.store.inner.held_back.breakers.lock();
        let m = Move { to, at_unix_ns: now, reason: None };
        let pending = self.log_transition(self.entry(&mut st), m)?;
        drop(st);
        self.finish_pending(vec![pending], true)
    }
}

/// The `tracing` event of a transition: WARN when a breaker opens, INFO otherwise.
fn trace_change(c: &StateChange) {
    let (from, to, reason) = (c.from, c.to, c.reason);
    if c.to == CircuitState::Open {
        tracing::warn!(
            target: "walden::breaker",
            breaker = %c.breaker, ?from, ?to, ?reason, generation = c.generation,
            open_until_unix_ns = c.open_until_unix_ns,
            "circuit breaker opened"
        );
    } else {
        tracing::info!(
            target: "walden::breaker",
            breaker = %c.breaker, ?from, ?to, generation = c.generation,
            "circuit breaker changed state"
        );
    }
}
