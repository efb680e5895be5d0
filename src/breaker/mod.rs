//! Durable circuit breakers. Placeholder: the record kind is reserved in the format and replayed
//! here; the breaker itself lands with its own issue.

/// Breaker state rebuilt from the log.
#[derive(Debug, Default)]
pub(crate) struct BreakerState {}

impl BreakerState {
    /// Re-applies one `Breaker` record during recovery.
    pub(crate) fn replay(
        &mut self,
        _lsn: u64,
        _timestamp_unix_ns: u64,
        _body: &[u8],
    ) -> Result<(), String> {
        Ok(())
    }

    /// Record bodies that recreate the live state when replayed (for snapshots); state that
    /// is equivalent to nothing at `now_unix_ns` is left out.
    pub(crate) fn snapshot_records(
        &self,
        _now_unix_ns: u64,
    ) -> Vec<crate::store::replay::SnapshotRecord> {
        Vec::new()
    }
}
