//! Snapshot files (`<store>/snapshot-<lsn>.snap`): verified with the library's `read_snapshot`.

use serde_json::{json, Value};
use walden::format::{CorruptionKind, SnapshotHeader};
use walden::snapshot::{read_snapshot, SnapshotEntry};

use crate::render::corruption_name;
use crate::source::{LoadedSnapshot, Source};

/// One snapshot file and what reading it found.
pub struct SnapCheck<'a> {
    /// The file.
    pub snap: &'a LoadedSnapshot,
    /// The verified header, or where and why the file was rejected.
    pub result: Result<SnapshotHeader, (u64, CorruptionKind)>,
    /// Its entries (only when it verified).
    pub entries: Vec<SnapshotEntry<'a>>,
}

/// Verifies every snapshot of the source (oldest first), as an open would: header, footer,
/// every entry's checksum and body, the store id, and the LSN in the file name.
pub fn check_all(src: &Source) -> Vec<SnapCheck<'_>> {
    let expected = src.identity.map(|i| i.store_id);
    src.snapshots
        .iter()
        .map(|snap| {
            let mut entries = Vec::new();
            let result = read_snapshot(&snap.bytes, expected, &mut |e| {
                crate::source::check_frame_body(&e.frame)?;
                entries.push(*e);
                Ok(())
            })
            .map_err(|e| (e.offset, e.kind))
            .and_then(|h| match snap.name_lsn {
                Some(lsn) if lsn != h.lsn => {
                    Err((0, CorruptionKind::LsnGap { expected: lsn, found: h.lsn }))
                }
                _ => Ok(h),
            });
            if result.is_err() {
                entries.clear();
            }
            SnapCheck { snap, result, entries }
        })
        .collect()
}

/// The newest snapshot that verifies: the one an open would load.
pub fn newest_valid<'c, 'a>(checks: &'c [SnapCheck<'a>]) -> Option<&'c SnapCheck<'a>> {
    checks.iter().rev().find(|c| c.result.is_ok())
}

/// A snapshot as a JSON object (`type: "snapshot"`).
pub fn snapshot_json(c: &SnapCheck<'_>) -> Value {
    let mut v = json!({
        "type": "snapshot",
        "file": c.snap.path.display().to_string(),
        "bytes": c.snap.bytes.len(),
        "ok": c.result.is_ok(),
    });
    match &c.result {
        Ok(h) => {
            v["lsn"] = json!(h.lsn);
            v["epoch"] = json!(h.epoch);
            v["entries"] = json!(h.entry_count);
        }
        Err((offset, kind)) => {
            v["lsn"] = json!(c.snap.name_lsn);
            v["offset"] = json!(offset);
            v["error"] = json!(kind.to_string());
            v["error_kind"] = json!(corruption_name(kind));
        }
    }
    v
}

/// A snapshot as one line of text.
pub fn snapshot_text(c: &SnapCheck<'_>) -> String {
    match &c.result {
        Ok(h) => format!(
            "snapshot at lsn {}  {:>10} bytes  {} entries  epoch {}  {}",
            h.lsn,
            c.snap.bytes.len(),
            h.entry_count,
            h.epoch,
            c.snap.path.display()
        ),
        Err((offset, kind)) => format!(
            "snapshot DAMAGED at byte {offset}: {kind}  {} ({} bytes)",
            c.snap.path.display(),
            c.snap.bytes.len()
        ),
    }
}
