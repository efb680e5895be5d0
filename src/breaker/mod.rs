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
}
