//! `Store::stats`: counters and positions.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use super::recovery::RecoveryStats;
use super::{Inner, Store};
use crate::error::PoisonCause;
use crate::wal::recovery::list_segments;

/// A picture of the store's state and work so far (this process, since open).
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Documents per collection.
    pub documents_per_collection: BTreeMap<String, u64>,
    /// Documents in all collections.
    pub documents: u64,
    /// LSN of the newest record sequenced (0: none yet).
    pub last_lsn: u64,
    /// Every record up to this LSN has been written to the OS.
    pub written_lsn: u64,
    /// Every record up to this LSN is fsynced.
    pub durable_lsn: u64,
    /// Epoch of this open.
    pub epoch: u64,
    /// Segment being appended to.
    pub active_segment_no: u64,
    /// WAL bytes on disk (all segments).
    pub wal_bytes: u64,
    /// WAL segment files on disk.
    pub wal_segments: u64,
    /// Bytes this process wrote to the log.
    pub wal_bytes_written: u64,
    /// `fdatasync` calls made for commits.
    pub fsyncs: u64,
    /// Records committed (acknowledged groups' records).
    pub commits: u64,
    /// Write groups (one write call each).
    pub groups: u64,
    /// Mean records per group.
    pub avg_group_size: f64,
    /// Largest group, in records.
    pub max_group_size: u64,
    /// Mean commit latency (enqueue to acknowledgement), microseconds.
    pub commit_latency_mean_us: u64,
    /// Median commit latency, as an **upper bound**, microseconds: latencies are counted in
    /// power-of-two buckets (`[2^(i-1), 2^i)` µs), and this is the largest value of the bucket
    /// that holds the median, `2^i - 1` (so 65,535 means "between 32,768 and 65,535 µs"). Not
    /// interpolated: the true median is at most this and more than half of it.
    pub commit_latency_p50_upper_bound_us: u64,
    /// 99th-percentile commit latency, as an upper bound, microseconds: the largest value of
    /// the power-of-two bucket that holds it (see
    /// [`commit_latency_p50_upper_bound_us`](Self::commit_latency_p50_upper_bound_us)).
    pub commit_latency_p99_upper_bound_us: u64,
    /// Slowest commit, microseconds.
    pub commit_latency_max_us: u64,
    /// LSN of the newest snapshot (0: none).
    pub snapshot_lsn: u64,
    /// Size of the newest snapshot file.
    pub snapshot_bytes: u64,
    /// Bytes of live documents (keys and JSON).
    pub live_bytes: u64,
    /// Bytes a compaction could free, estimated: log and snapshot bytes beyond the live bytes.
    pub reclaimable_bytes: u64,
    /// Snapshots written by this process.
    pub snapshots_written: u64,
    /// Duration of the last compaction, microseconds.
    pub last_compaction_us: u64,
    /// Compactions that failed (the log is intact; they are retried).
    pub compaction_failures: u64,
    /// Why the store stopped accepting writes, if it has.
    pub poisoned: Option<PoisonCause>,
    /// What the open's recovery did.
    pub recovery: RecoveryStats,
}

impl Store {
    /// Counters and positions: see [`Stats`]. Still answers after [`Store::close`], with the
    /// counters as they were.
    #[must_use]
    pub fn stats(&self) -> Stats {
        collect(&self.inner)
    }
}

fn collect(inner: &Inner) -> Stats {
    let documents_per_collection: BTreeMap<String, u64> =
        inner.docs.read().iter().map(|(c, m)| (c.clone(), m.len() as u64)).collect();
    let pos = inner.wal.positions();
    let c = &inner.wal.counters;
    let groups = c.groups.load(Ordering::Relaxed);
    let commits = c.records.load(Ordering::Relaxed);
    let wal_bytes = c.wal_bytes_on_disk.load(Ordering::Relaxed);
    let wal_dir = inner.dir.join(crate::wal::WAL_DIR);
    let wal_segments = list_segments(&*inner.options.io, &wal_dir).map_or(0, |s| s.len() as u64);
    let live_bytes: u64 = inner
        .docs
        .read()
        .values()
        .flat_map(|c| c.iter())
        .map(|(k, d)| (k.len() + d.json.len()) as u64)
        .sum();
    let (snapshot_lsn, snapshot_bytes) =
        inner.compactor.current.lock().as_ref().map_or((0, 0), |s| (s.lsn, s.bytes));
    let cc = &inner.compactor.counters;
    Stats {
        documents: documents_per_collection.values().sum(),
        documents_per_collection,
        last_lsn: pos.last_lsn,
        written_lsn: pos.written_lsn,
        durable_lsn: pos.durable_lsn,
        epoch: pos.epoch,
        active_segment_no: pos.segment_no,
        wal_bytes,
        wal_segments,
        wal_bytes_written: c.bytes_written.load(Ordering::Relaxed),
        fsyncs: c.fsyncs.load(Ordering::Relaxed),
        commits,
        groups,
        avg_group_size: if groups == 0 { 0.0 } else { commits as f64 / groups as f64 },
        max_group_size: c.max_group_records.load(Ordering::Relaxed),
        commit_latency_mean_us: c.latency.mean_us(),
        commit_latency_p50_upper_bound_us: c.latency.quantile_upper_bound_us(0.5),
        commit_latency_p99_upper_bound_us: c.latency.quantile_upper_bound_us(0.99),
        commit_latency_max_us: c.latency.max_us(),
        snapshot_lsn,
        snapshot_bytes,
        live_bytes,
        reclaimable_bytes: (wal_bytes + snapshot_bytes).saturating_sub(live_bytes),
        snapshots_written: cc.snapshots_written.load(Ordering::Relaxed),
        last_compaction_us: cc.last_duration_us.load(Ordering::Relaxed),
        compaction_failures: cc.failures.load(Ordering::Relaxed),
        poisoned: pos.poisoned,
        recovery: inner.recovery.clone(),
    }
}
