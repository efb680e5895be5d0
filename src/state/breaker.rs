//! Breaker state rebuilt from the log, by name: each breaker's state machine entry.

use std::collections::BTreeMap;

use crate::breaker::config::CircuitState;
use crate::breaker::machine::Entry;
use crate::format::breaker::BreakerRecord;
use crate::snapshot::SnapshotRecord;

/// Breaker state rebuilt from the log, by name.
#[derive(Debug, Default)]
pub(crate) struct BreakerState {
    pub(crate) entries: BTreeMap<String, Entry>,
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

    /// Record bodies that recreate every breaker's durable state (state, generation,
    /// open_until, transition time) when replayed (for snapshots), each with the LSN of the
    /// breaker's last transition. Breakers that never left Closed need none. All breaker state
    /// matters whatever the time (an expired Open still means "probe first"), so `_now_unix_ns`
    /// drops nothing.
    pub(crate) fn snapshot_records(&self, _now_unix_ns: u64) -> Vec<SnapshotRecord> {
        self.entries
            .iter()
            .filter(|(_, e)| e.generation > 0)
            .map(|(name, e)| SnapshotRecord {
                lsn: e.lsn,
                timestamp_unix_ns: e.last_transition_unix_ns,
                body: BreakerRecord {
                    state: e.state,
                    generation: e.generation,
                    open_until_unix_ns: e.open_until_unix_ns,
                    transition_unix_ns: e.last_transition_unix_ns,
                    name,
                }
                .encode(),
            })
            .collect()
    }
}
