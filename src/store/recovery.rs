//! What the last open found and did, as [`Store::stats`](super::Store::stats) reports it.

use crate::wal::TornTail;

/// What the last open found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// Records replayed from the log.
    pub records_replayed: u64,
    /// Segment files read.
    pub segments_read: u64,
    /// Bytes of log read.
    pub bytes_read: u64,
    /// Time the replay took, in microseconds.
    pub replay_us: u64,
    /// The torn tail cut off the log, if any.
    pub torn_tail: Option<TornTail>,
    /// Where the cut bytes were kept for forensics.
    pub torn_saved_to: Option<std::path::PathBuf>,
    /// LSN of the snapshot the state was loaded from, if any.
    pub snapshot_lsn: Option<u64>,
    /// Snapshots that failed verification and were passed over for an older one (left on
    /// disk for forensics; removed by the next compaction).
    pub snapshots_rejected: Vec<std::path::PathBuf>,
}
