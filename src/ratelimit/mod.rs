//! Durable rate limiters (GCRA). Placeholder: the record kind is reserved in the format and
//! replayed here; the limiter itself lands with its own issue.

/// Rate-limiter state rebuilt from the log.
#[derive(Debug, Default)]
pub(crate) struct RateLimitState {}

impl RateLimitState {
    /// Re-applies one `RateLimit` record during recovery.
    pub(crate) fn replay(
        &mut self,
        _lsn: u64,
        _timestamp_unix_ns: u64,
        _body: &[u8],
    ) -> Result<(), String> {
        Ok(())
    }
}
