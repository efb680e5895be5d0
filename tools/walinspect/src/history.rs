//! `history`: every version of one document, through the newest valid snapshot and the log.

use std::path::Path;

use serde_json::{json, Value};
use walden::format::{decode_batch, BatchOpKind, Frame, RecordKind};

use crate::commands::note_verdict;
use crate::diff::{json_diff, Change};
use crate::escape::esc;
use crate::out::{Fail, Out};
use crate::render::{self, doc_value};
use crate::snapshots;
use crate::source::load;
use crate::time::format_ns;

/// Exit code of `history` (and `get`) when the document has no version on disk.
pub const EXIT_NOT_FOUND: i32 = 1;

/// `history`: prints every version of `collection`/`key`; exit [`EXIT_NOT_FOUND`] if none.
pub fn history(
    out: &mut Out,
    path: &Path,
    collection: &str,
    key: &str,
    diff: bool,
) -> Result<i32, Fail> {
    let src = load(path)?;
    let (recs, scan) = src.records();
    // The newest valid snapshot holds the versions whose records compaction deleted.
    let checks = snapshots::check_all(&src);
    let first_log_lsn = recs.first().map_or(u64::MAX, |r| r.frame.lsn);
    let from_snapshot: Vec<Frame<'_>> = snapshots::newest_valid(&checks)
        .map(|c| c.entries.iter().map(|e| e.frame).filter(|f| f.lsn < first_log_lsn).collect())
        .unwrap_or_default();
    let frames = from_snapshot
        .into_iter()
        .map(|f| ("snapshot", f))
        .chain(recs.iter().map(|r| ("log", r.frame)));
    let mut prev: Option<Value> = None;
    let mut found = 0u64;
    for (source, frame) in frames {
        let ops = match RecordKind::from_u8(frame.kind) {
            Some(RecordKind::Batch) => decode_batch(frame.body).unwrap_or_default(),
            _ => Vec::new(),
        };
        for op in ops.iter().filter(|o| o.collection == collection && o.key == key) {
            found += 1;
            let value = (op.kind == BatchOpKind::Put).then(|| doc_value(op.value));
            let mut v = json!({
                "type": "version",
                "source": source,
                "collection": collection,
                "key": key,
                "lsn": frame.lsn,
                "time": format_ns(frame.timestamp_unix_ns),
                "timestamp_unix_ns": frame.timestamp_unix_ns,
                "op": render::op_name(op.kind),
                "version": op.version,
                "value": value,
            });
            let changes = diff.then(|| json_diff(prev.as_ref(), value.as_ref()));
            if let Some(ch) = &changes {
                v["diff"] =
                    ch.iter().map(|(p, a, b)| json!({"path": p, "old": a, "new": b})).collect();
            }
            out.emit(&v, || {
                let head = format!(
                    "lsn {}  {}  {} v{}  ({source})",
                    frame.lsn,
                    format_ns(frame.timestamp_unix_ns),
                    render::op_name(op.kind),
                    op.version
                );
                version_text(head, changes.as_deref(), value.as_ref())
            })?;
            prev = value;
        }
    }
    note_verdict(out, &src, &scan)?;
    if found == 0 {
        let (verdict, _) = crate::render::verdict_json(&src, &scan);
        let why = if verdict >= crate::render::EXIT_CORRUPT {
            "no version in what verifies; the store is damaged (see the verdict), `walinspect \
             salvage` reads past the damage"
        } else {
            "no version in the newest valid snapshot or the log"
        };
        not_found(out, collection, key, why)?;
        return Ok(EXIT_NOT_FOUND);
    }
    Ok(0)
}

/// Reports that `collection`/`key` is not on disk: a `not_found` object with `--json`, a line
/// on stderr otherwise (stdout stays empty for scripts).
pub fn not_found(out: &mut Out, collection: &str, key: &str, why: &str) -> std::io::Result<()> {
    if out.json {
        let v = json!({ "type": "not_found", "collection": collection, "key": key, "reason": why });
        out.obj(&v)
    } else {
        eprintln!("walinspect: {}/{}: not found ({why})", esc(collection), esc(key));
        Ok(())
    }
}

/// One version as text: its header line, then the changes or the whole value.
fn version_text(mut t: String, changes: Option<&[Change]>, value: Option<&Value>) -> String {
    match (changes, value) {
        (Some(ch), _) => {
            for (p, a, b) in ch {
                let p = esc(p);
                let line = match (a, b) {
                    (None, Some(b)) => format!("\n  + {p}: {b}"),
                    (Some(a), None) => format!("\n  - {p}: {a}"),
                    (Some(a), Some(b)) => format!("\n  ~ {p}: {a} -> {b}"),
                    (None, None) => String::new(),
                };
                t.push_str(&line);
            }
        }
        (None, Some(val)) => {
            t.push_str(&format!("\n{}", render::indent(&render::pretty(val), "  ")))
        }
        (None, None) => {}
    }
    t
}
