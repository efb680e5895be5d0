//! Compaction: fold the newest snapshot and the sealed log segments into a new snapshot, then
//! delete what it covers.
//!
//! Compaction never touches the live in-memory state: it seals the log (the active segment is
//! fsynced and a new one started, under the log's leadership for an instant) and then replays
//! the immutable files, with the same code recovery uses, into a private state. Writers keep
//! committing to the new segment the whole time.
//!
//! Crash points, in order, and why each is safe:
//! 1. temp file partly written → removed at the next open; the log still has everything;
//! 2. temp written and fsynced, not renamed → same;
//! 3. renamed, directory not fsynced → the snapshot may or may not be there after a crash;
//!    no segment has been deleted yet, so either way the log covers it;
//! 4. directory fsynced, some segments deleted (oldest first) → the snapshot is durable and
//!    covers every deleted segment; the remaining ones stay contiguous;
//! 5. older snapshots deleted → the newest one is already durable.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::hook::DocLog;
use crate::clock::Clock;
use crate::error::{CorruptionKind, Error, Result};
use crate::io::{Fs, Io};
use crate::snapshot::{remove_snapshots, write_snapshot, SnapshotInfo};
use crate::state::State;
use crate::wal::counters::elapsed_us;
use crate::wal::recovery::{list_segments, read_segments, segment_inputs};
use crate::wal::{scan_log, LogVerdict};

/// What one compaction did.
///
/// Not `#[must_use]`: a compaction is run for its effect, and the report only describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionReport {
    /// LSN of the new snapshot.
    pub snapshot_lsn: u64,
    /// Size of the new snapshot file.
    pub snapshot_bytes: u64,
    /// WAL segments deleted.
    pub segments_deleted: u64,
    /// Bytes freed (deleted segments and older snapshots).
    pub bytes_reclaimed: u64,
    /// How long the compaction took, in microseconds.
    pub duration_us: u64,
}

/// When background compaction runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CompactionPolicy {
    pub auto: bool,
    pub min_wal_bytes: u64,
    pub wal_to_snapshot_ratio: f64,
}

#[derive(Debug, Default)]
pub(crate) struct CompactionCounters {
    pub snapshots_written: AtomicU64,
    pub last_duration_us: AtomicU64,
    pub failures: AtomicU64,
}

pub(crate) struct Compactor {
    pub io: Arc<dyn Io>,
    pub dir: PathBuf,
    pub wal_dir: PathBuf,
    pub store_id: [u8; 16],
    pub epoch: u64,
    pub wal: Arc<DocLog>,
    pub clock: Arc<dyn Clock>,
    /// The newest snapshot (held only for an instant, so `stats()` never waits on a compaction).
    pub current: Mutex<Option<SnapshotInfo>>,
    /// Held for a whole compaction or backup: one at a time, and no file they read is deleted
    /// under them.
    pub serial: Mutex<()>,
    pub policy: CompactionPolicy,
    pub counters: CompactionCounters,
}

fn corruption(path: &std::path::Path, offset: u64, kind: CorruptionKind) -> Error {
    Error::Corruption { file: path.to_path_buf(), offset, last_good_lsn: None, kind }
}

impl Compactor {
    /// Whether the log has grown enough to compact in the background.
    pub fn should_compact(&self) -> bool {
        if !self.policy.auto {
            return false;
        }
        let wal = self.wal.counters.wal_bytes_on_disk.load(Ordering::Relaxed);
        let snapshot = self.current.lock().as_ref().map_or(0, |s| s.bytes);
        wal >= self.policy.min_wal_bytes
            && wal as f64 >= self.policy.wal_to_snapshot_ratio * snapshot as f64
    }

    /// Runs one compaction; `Ok(None)` if the log holds nothing the newest snapshot lacks.
    pub fn compact(&self) -> Result<Option<CompactionReport>> {
        let started = Instant::now();
        let _serial = self.serial.lock();
        let mut current = self.current.lock().clone();
        let result = self.compact_locked(&mut current, started);
        *self.current.lock() = current;
        match &result {
            Ok(Some(r)) => tracing::info!(
                target: "walden",
                snapshot_lsn = r.snapshot_lsn,
                snapshot_bytes = r.snapshot_bytes,
                segments_deleted = r.segments_deleted,
                bytes_reclaimed = r.bytes_reclaimed,
                duration_us = r.duration_us,
                "compacted"
            ),
            Ok(None) => {}
            Err(e) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(target: "walden", error = %e, "compaction failed");
            }
        }
        result
    }

    fn compact_locked(
        &self,
        current: &mut Option<SnapshotInfo>,
        started: Instant,
    ) -> Result<Option<CompactionReport>> {
        let io = &*self.io;
        let (active, sealed_lsn) = self.wal.seal()?;
        let base_lsn = current.as_ref().map_or(0, |c| c.lsn);
        if sealed_lsn <= base_lsn {
            return Ok(None);
        }
        let segs: Vec<(u64, PathBuf)> =
            list_segments(io, &self.wal_dir)?.into_iter().filter(|(no, _)| *no < active).collect();
        let (state, segment_bytes) = self.fold(current.as_ref(), sealed_lsn, &segs)?;

        let source = state.snapshot_source(self.clock.now_unix_ns());
        let info = write_snapshot(io, &self.dir, self.store_id, self.epoch, sealed_lsn, &source)?;
        drop(source);
        drop(state);
        // From here on the new snapshot is the base, even if a deletion below fails: the next
        // compaction must not fold an older snapshot with segments this one let go of.
        let snapshot_bytes = info.bytes;
        *current = Some(info);
        self.counters.snapshots_written.fetch_add(1, Ordering::Relaxed);

        let reclaimed = self.delete_covered(&segs, segment_bytes, sealed_lsn)?;
        let duration_us = elapsed_us(started);
        self.counters.last_duration_us.store(duration_us, Ordering::Relaxed);
        let report = CompactionReport {
            snapshot_lsn: sealed_lsn,
            snapshot_bytes,
            segments_deleted: segs.len() as u64,
            bytes_reclaimed: reclaimed,
            duration_us,
        };
        Ok(Some(report))
    }

    /// Folds the sealed segments `segs` into the state of the `base` snapshot (or an empty
    /// state), checking that together they cover every LSN up to `sealed_lsn`. Returns the
    /// state and the bytes of the segments.
    pub(crate) fn fold(
        &self,
        base: Option<&SnapshotInfo>,
        sealed_lsn: u64,
        segs: &[(u64, PathBuf)],
    ) -> Result<(State, u64)> {
        let io = &*self.io;
        let base_lsn = base.map_or(0, |c| c.lsn);
        let mut state = match base {
            Some(c) => {
                let bytes = Fs(io).read(&c.path)?;
                State::from_snapshot(&bytes, self.store_id)
                    .map_err(|e| corruption(&c.path, e.offset, e.kind))?
                    .0
            }
            None => State::default(),
        };
        let files = read_segments(io, segs)?;
        let segment_bytes: u64 = files.iter().map(|f| f.len() as u64).sum();
        {
            let inputs = segment_inputs(segs, &files);
            let scan = scan_log(&inputs, Some(self.store_id), &mut |r| {
                if r.frame.lsn <= base_lsn {
                    Ok(())
                } else {
                    state.apply_frame(&r.frame)
                }
            });
            // Sealed segments are complete: anything but clean is damage.
            match scan.verdict {
                LogVerdict::Clean => {}
                LogVerdict::TornTail(t) => {
                    return Err(corruption(
                        &t.path,
                        t.offset,
                        // No frame error: the segment header itself is incomplete.
                        t.error.map_or(CorruptionKind::ShortHeader, CorruptionKind::BadRecord),
                    ));
                }
                LogVerdict::Corrupt(c) => return Err(corruption(&c.path, c.offset, c.kind)),
            }
            let first = scan.first_lsn.unwrap_or(base_lsn + 1);
            let next = scan.next_lsn.unwrap_or(base_lsn + 1);
            let gap = if first > base_lsn + 1 {
                Some(CorruptionKind::LsnGap { expected: base_lsn + 1, found: first })
            } else if next != sealed_lsn + 1 {
                Some(CorruptionKind::LsnGap { expected: sealed_lsn + 1, found: next })
            } else {
                None
            };
            if let Some(kind) = gap {
                let path = segs.first().map_or(self.wal_dir.clone(), |(_, p)| p.clone());
                return Err(corruption(&path, 0, kind));
            }
        }
        Ok((state, segment_bytes))
    }

    /// Deletes what a durable snapshot at `sealed_lsn` covers: the sealed segments `segs`
    /// (oldest first), older snapshots and leftover temp files. Returns the bytes freed.
    fn delete_covered(
        &self,
        segs: &[(u64, PathBuf)],
        segment_bytes: u64,
        sealed_lsn: u64,
    ) -> Result<u64> {
        let io = &*self.io;
        // The snapshot is durable: delete what it covers, oldest first, each deletion durable
        // before the next, so a power cut leaves a contiguous suffix of the log (and an open
        // ignores covered segments in any case).
        let mut reclaimed = 0;
        for (_, path) in segs {
            Fs(io).remove_file(path)?;
            Fs(io).sync_dir(&self.wal_dir)?;
        }
        if !segs.is_empty() {
            self.wal.counters.wal_bytes_on_disk.fetch_sub(
                segment_bytes.min(self.wal.counters.wal_bytes_on_disk.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
            reclaimed += segment_bytes;
        }
        let names = Fs(io).list_dir(&self.dir)?;
        reclaimed += remove_snapshots(io, &self.dir, &names, |lsn| lsn < sealed_lsn)?;
        Ok(reclaimed)
    }
}
