//! Snapshot files (`<store>/snapshot-<lsn>.snap`): verified with the library's `read_snapshot`.

use serde_json::{json, Value};
use walden::format::{CorruptionKind, SnapshotHeader};
use walden::snapshot::{read_snapshot, SnapshotEntry};
use walden::wal::LogScan;

use crate::render::{corruption_name, problem_json, EXIT_CORRUPT, EXIT_INCONSISTENT};
use crate::source::{LoadedSnapshot, Source, SourceKind};

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

/// The snapshot part of a verdict, given the log's (`code`, `v`): the log must start right after
/// the newest valid snapshot (or at LSN 1 without one), or an open refuses the store; and every
/// snapshot must verify, even one an open would skip.
///
/// When a damaged snapshot is why the log does not reach back far enough, the verdict leads
/// with that cause (the damaged file, offset and checksum) and names the LSN gap as its
/// consequence (`gap_expected`, `gap_found`, `store_opens: false`), rather than the other way
/// round.
pub fn snapshot_verdict(
    src: &Source,
    scan: &LogScan,
    checks: &[SnapCheck<'_>],
    code: i32,
    v: Value,
) -> (i32, Value) {
    let base = newest_valid(checks).and_then(|c| c.result.as_ref().ok()).map(|h| h.lsn);
    let newest_damaged = checks.iter().rev().find(|c| c.result.is_err());
    let first = scan.first_lsn.zip(scan.segments.first());
    if let Some((first_lsn, seg)) = first.filter(|_| code < EXIT_INCONSISTENT) {
        let expected = base.unwrap_or(0) + 1;
        if first_lsn > expected && src.kind == SourceKind::StoreDir {
            let gap = CorruptionKind::LsnGap { expected, found: first_lsn };
            // A damaged snapshot newer than the valid base could have covered the gap.
            let cause = newest_damaged.filter(|c| c.snap.name_lsn.is_none_or(|l| l >= expected));
            let Some(bad) = cause else {
                let mut v = problem_json(src, &seg.path, 0, base, &gap);
                v["resync_offset"] = Value::Null;
                return (EXIT_INCONSISTENT, v);
            };
            let mut v = damaged_json(src, bad);
            v["store_opens"] = json!(false);
            v["consequence"] = json!(format!(
                "without this snapshot the log, which starts at LSN {first_lsn} in {}, does not \
                 reach back to LSN {expected}: records {expected}..{} are missing and an open \
                 refuses the store",
                seg.path.display(),
                first_lsn - 1
            ));
            v["gap_expected"] = json!(expected);
            v["gap_found"] = json!(first_lsn);
            v["log_file"] = json!(seg.path.display().to_string());
            return (EXIT_CORRUPT, v);
        }
    }
    match newest_damaged.filter(|_| code < EXIT_CORRUPT) {
        Some(bad) => {
            let mut v = damaged_json(src, bad);
            v["store_opens"] = json!(true);
            v["consequence"] = json!(
                "an open skips this snapshot: an older snapshot (or none) and the log cover it"
            );
            (EXIT_CORRUPT, v)
        }
        None => (code, v),
    }
}

/// The verdict object of a damaged snapshot.
fn damaged_json(src: &Source, bad: &SnapCheck<'_>) -> Value {
    let (offset, kind) = match &bad.result {
        Err((offset, kind)) => (*offset, kind.clone()),
        Ok(_) => (0, CorruptionKind::Empty),
    };
    let mut v = problem_json(src, &bad.snap.path, offset, None, &kind);
    v["verdict"] = json!("corrupt");
    v["snapshot"] = json!(true);
    v
}
