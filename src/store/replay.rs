//! Rebuilding state from records: shared by recovery (snapshot + log at open) and compaction
//! (previous snapshot + sealed segments, folded into the next snapshot).

use std::sync::Arc;

use super::{apply_doc, Doc, Docs};
use crate::breaker::BreakerState;
use crate::error::CorruptionKind;
use crate::format::{decode_batch, BatchOpKind, Frame, RecordKind};
use crate::ratelimit::RateLimitState;

/// Everything the log describes, as of `applied_lsn`.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub docs: Docs,
    pub ratelimits: RateLimitState,
    pub breakers: BreakerState,
    /// LSN of the last record applied (0: none).
    pub applied_lsn: u64,
    /// Timestamp of the last record applied.
    pub last_timestamp_unix_ns: u64,
}

impl State {
    /// Applies one verified record (from the log, or an entry of a snapshot).
    pub fn apply_frame(&mut self, f: &Frame<'_>) -> Result<(), CorruptionKind> {
        match RecordKind::from_u8(f.kind) {
            Some(RecordKind::Batch) => {
                for op in decode_batch(f.body).map_err(CorruptionKind::BadBody)? {
                    let doc = match op.kind {
                        BatchOpKind::Put => Some(Doc {
                            version: op.version,
                            written_unix_ns: f.timestamp_unix_ns,
                            lsn: f.lsn,
                            json: Arc::from(op.value),
                        }),
                        BatchOpKind::Delete => None,
                    };
                    apply_doc(&mut self.docs, op.collection, op.key, doc);
                }
            }
            Some(RecordKind::RateLimit) => self
                .ratelimits
                .replay(f.lsn, f.timestamp_unix_ns, f.body)
                .map_err(CorruptionKind::BadBody)?,
            Some(RecordKind::Breaker) => self
                .breakers
                .replay(f.lsn, f.timestamp_unix_ns, f.body)
                .map_err(CorruptionKind::BadBody)?,
            None => return Err(CorruptionKind::UnknownRecordKind(f.kind)),
        }
        self.applied_lsn = self.applied_lsn.max(f.lsn);
        self.last_timestamp_unix_ns = self.last_timestamp_unix_ns.max(f.timestamp_unix_ns);
        Ok(())
    }
}

/// A record body that, replayed, recreates one piece of rate-limit or breaker state; what
/// those kinds contribute to a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotRecord {
    pub lsn: u64,
    pub timestamp_unix_ns: u64,
    pub body: Vec<u8>,
}
