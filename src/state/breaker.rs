//! Breaker state rebuilt from the log, by name: each breaker's state machine entry (its
//! transitions and its logged counters), and the listeners registered in this process.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use crate::breaker::config::CircuitState;
use crate::breaker::counters::CountsSnapshot;
use crate::breaker::health::{BreakerCounts, StateChange, TripReason};
use crate::breaker::machine::Entry;
use crate::format::breaker::BreakerRecord;
use crate::format::breaker_counts::BreakerCountsRecord;
use crate::format::RecordKind;
use crate::snapshot::SnapshotRecord;

/// A state-change listener.
pub(crate) type Listener = Arc<dyn Fn(&StateChange) + Send + Sync>;

/// Breaker state rebuilt from the log, by name.
#[derive(Default)]
pub(crate) struct BreakerState {
    pub(crate) entries: BTreeMap<String, Entry>,
    pub(crate) listeners: HashMap<String, Vec<Listener>>,
}

impl fmt::Debug for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerState").field("entries", &self.entries).finish_non_exhaustive()
    }
}

/// The body of a `BreakerCounts` record of breaker `name` taken at `now`.
pub(crate) fn counts_record(name: &str, e: &Entry, s: &CountsSnapshot, now: u64) -> Vec<u8> {
    let (reason, reason_a, reason_b) = e.reason.map_or((0, 0, 0), TripReason::to_parts);
    let c = &s.counts;
    BreakerCountsRecord {
        generation: e.generation,
        logged_unix_ns: now,
        reason,
        reason_a,
        reason_b,
        last_open_ns: e.last_open_ns,
        calls: c.calls,
        successes: c.successes,
        failures: c.failures,
        slow_calls: c.slow_calls,
        rejected: c.rejected,
        consecutive_failures: c.consecutive_failures,
        consecutive_successes: c.consecutive_successes,
        window_calls: c.window_calls,
        window_failures: c.window_failures,
        window_newest_unix_ns: s.window_newest_unix_ns,
        streak_unix_ns: s.streak_unix_ns.clone(),
        name,
    }
    .encode()
}

impl BreakerState {
    /// Re-applies one `Breaker` record during recovery.
    pub(crate) fn replay(
        &mut self,
        lsn: u64,
        _timestamp_unix_ns: u64,
        body: &[u8],
    ) -> Result<(), String> {
        let rec = BreakerRecord::decode(body)?;
        let e = self.entries.entry(rec.name.to_owned()).or_default();
        e.enter(&rec);
        e.lsn = lsn;
        // A half-open breaker at a crash had probes in flight; their fate is unknown.
        e.interrupted_probe = rec.state == CircuitState::HalfOpen;
        Ok(())
    }

    /// Re-applies one `BreakerCounts` record during recovery: the counters of the breaker's
    /// current generation (a record of an older generation is ignored).
    pub(crate) fn replay_counts(
        &mut self,
        lsn: u64,
        _timestamp_unix_ns: u64,
        body: &[u8],
    ) -> Result<(), String> {
        let rec = BreakerCountsRecord::decode(body)?;
        let reason = TripReason::from_parts(rec.reason, rec.reason_a, rec.reason_b)
            .map_err(|code| format!("unknown trip reason {code}"))?;
        let e = self.entries.entry(rec.name.to_owned()).or_default();
        let counts = BreakerCounts {
            calls: rec.calls,
            successes: rec.successes,
            failures: rec.failures,
            slow_calls: rec.slow_calls,
            rejected: rec.rejected,
            consecutive_failures: rec.consecutive_failures,
            consecutive_successes: rec.consecutive_successes,
            window_calls: rec.window_calls,
            window_failures: rec.window_failures,
        };
        let s = CountsSnapshot {
            counts,
            streak_unix_ns: rec.streak_unix_ns,
            window_newest_unix_ns: rec.window_newest_unix_ns,
        };
        if e.restore_counts(rec.generation, reason, rec.last_open_ns, &s, rec.logged_unix_ns) {
            e.counts_lsn = lsn;
        }
        Ok(())
    }

    /// Records that recreate every breaker's durable state when replayed (for snapshots):
    /// for each breaker that ever left Closed, its last transition (with that transition's
    /// LSN); for each breaker whose counters were ever logged, its counters (with the LSN of
    /// its last counts record). All breaker state matters whatever the time (an expired Open
    /// still means "probe first"), so `_now_unix_ns` drops nothing.
    pub(crate) fn snapshot_records(&self, _now_unix_ns: u64) -> Vec<(RecordKind, SnapshotRecord)> {
        let mut out = Vec::new();
        for (name, e) in &self.entries {
            if e.generation > 0 {
                let body = BreakerRecord {
                    state: e.state,
                    generation: e.generation,
                    open_until_unix_ns: e.open_until_unix_ns,
                    transition_unix_ns: e.last_transition_unix_ns,
                    name,
                }
                .encode();
                let timestamp_unix_ns = e.last_transition_unix_ns;
                out.push((
                    RecordKind::Breaker,
                    SnapshotRecord { lsn: e.lsn, timestamp_unix_ns, body },
                ));
            }
            if e.counts_lsn > 0 {
                let at = e.counts_logged_unix_ns;
                let body = counts_record(name, e, &e.logged_snapshot(), at);
                let r = SnapshotRecord { lsn: e.counts_lsn, timestamp_unix_ns: at, body };
                out.push((RecordKind::BreakerCounts, r));
            }
        }
        out
    }

    /// Counters changed since their last record whose interval has passed at `now` (with
    /// `closing`: all changed ones), as `(name, record body)`; they count as logged from here
    /// on (the caller logs them).
    pub(crate) fn due_counts(&mut self, now: u64, closing: bool) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for (name, e) in &mut self.entries {
            let force = closing && e.counts_dirty;
            if let Some(s) = e.counts_due(now, force) {
                out.push((name.clone(), counts_record(name, e, &s, now)));
            }
        }
        out
    }
}
