//! The current value of every document, as an open would see it: the newest valid snapshot,
//! then the log records after its LSN, up to the first damage. Read-only `get` and `scan` (as
//! `ldb get` / `ldb scan` or `sqlite3` would answer them), and where the live documents are for
//! `stats` and `dump`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use walden::format::{decode_batch, BatchOpKind, RecordKind};
use walden::wal::RecordRef;

use crate::commands::note_verdict;
use crate::escape::esc;
use crate::history::{not_found, EXIT_NOT_FOUND};
use crate::out::{Fail, Out};
use crate::render::doc_value;
use crate::snapshots::{self, SnapCheck};
use crate::source::load;
use crate::time::format_ns;

/// Where a document's current value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// An entry of the newest valid snapshot (its log record was compacted away or is older).
    Snapshot,
    /// A record of the log after the snapshot.
    Log,
}

impl Held {
    fn name(self) -> &'static str {
        match self {
            Held::Snapshot => "snapshot",
            Held::Log => "log",
        }
    }
}

/// One document's current value.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a> {
    /// Its JSON bytes.
    pub value: &'a [u8],
    /// Its version.
    pub version: u64,
    /// LSN of the write that produced it.
    pub lsn: u64,
    /// Time of that write.
    pub timestamp_unix_ns: u64,
    /// Where it is stored.
    pub held: Held,
}

/// The current state.
pub struct Current<'a> {
    /// Live documents by (collection, key), in the store's scan order.
    pub docs: BTreeMap<(&'a str, &'a str), Doc<'a>>,
    /// The snapshot the state starts from: file and LSN.
    pub snapshot: Option<(&'a Path, u64)>,
}

impl Current<'_> {
    /// (in the snapshot, in the log) counts of live documents, for one collection or all.
    pub fn counts(&self, collection: Option<&str>) -> (u64, u64) {
        let mut n = (0, 0);
        for ((c, _), d) in &self.docs {
            if collection.is_none_or(|x| x == *c) {
                match d.held {
                    Held::Snapshot => n.0 += 1,
                    Held::Log => n.1 += 1,
                }
            }
        }
        n
    }
}

/// Replays the newest valid snapshot and then the log records after its LSN (`recs`: the
/// valid records of the log, up to the first damage).
pub fn current_state<'a>(recs: &[RecordRef<'a>], checks: &'a [SnapCheck<'a>]) -> Current<'a> {
    let mut docs = BTreeMap::new();
    let base = snapshots::newest_valid(checks);
    let base_lsn = base.and_then(|c| c.result.as_ref().ok()).map(|h| h.lsn);
    let snap_frames =
        base.into_iter().flat_map(|c| c.entries.iter().map(|e| (Held::Snapshot, e.frame)));
    let log_frames = recs
        .iter()
        .filter(|r| base_lsn.is_none_or(|l| r.frame.lsn > l))
        .map(|r| (Held::Log, r.frame));
    for (held, frame) in snap_frames.chain(log_frames) {
        if RecordKind::from_u8(frame.kind) != Some(RecordKind::Batch) {
            continue;
        }
        for op in decode_batch(frame.body).unwrap_or_default() {
            let key = (op.collection, op.key);
            match op.kind {
                BatchOpKind::Put => {
                    let doc = Doc {
                        value: op.value,
                        version: op.version,
                        lsn: frame.lsn,
                        timestamp_unix_ns: frame.timestamp_unix_ns,
                        held,
                    };
                    docs.insert(key, doc);
                }
                BatchOpKind::Delete => {
                    docs.remove(&key);
                }
            }
        }
    }
    let snapshot = base.zip(base_lsn).map(|(c, l)| (c.snap.path.as_path(), l));
    Current { docs, snapshot }
}

/// A document as a JSON object (`type: "document"`).
fn doc_json(collection: &str, key: &str, d: &Doc<'_>) -> Value {
    json!({
        "type": "document",
        "collection": collection,
        "key": key,
        "version": d.version,
        "lsn": d.lsn,
        "time": format_ns(d.timestamp_unix_ns),
        "timestamp_unix_ns": d.timestamp_unix_ns,
        "source": d.held.name(),
        "value": doc_value(d.value),
    })
}

/// `get`: the current value of one document (text: its JSON, pretty-printed); exit
/// [`EXIT_NOT_FOUND`] if it has none.
pub fn get(out: &mut Out, path: &Path, collection: &str, key: &str) -> Result<i32, Fail> {
    let src = load(path)?;
    let (recs, scan) = src.records();
    let checks = snapshots::check_all(&src);
    let state = current_state(&recs, &checks);
    let code = match state.docs.get(&(collection, key)) {
        Some(d) => {
            let v = doc_json(collection, key, d);
            out.emit(&v, || crate::render::pretty(&v["value"]))?;
            0
        }
        None => {
            let (verdict, _) = crate::render::verdict_json(&src, &scan);
            let why = if verdict >= crate::render::EXIT_CORRUPT {
                "no live version in what verifies; the store is damaged (see the verdict), \
                 `walinspect salvage` reads past the damage"
            } else {
                "no live version in the newest valid snapshot or the log after it"
            };
            not_found(out, collection, key, why)?;
            EXIT_NOT_FOUND
        }
    };
    note_verdict(out, &src, &scan)?;
    Ok(code)
}

/// Which documents `scan` prints.
pub struct ScanRange<'s> {
    /// Only this collection.
    pub collection: Option<&'s str>,
    /// Only keys starting with this.
    pub prefix: Option<&'s str>,
    /// Only keys at or after this one (within each collection).
    pub from: Option<&'s str>,
    /// At most this many documents.
    pub limit: Option<u64>,
}

/// `scan`: the current documents in key order (text: `collection/key vN <compact JSON>`, one
/// per line).
pub fn scan(out: &mut Out, path: &Path, range: &ScanRange<'_>) -> Result<i32, Fail> {
    let src = load(path)?;
    let (recs, log) = src.records();
    let checks = snapshots::check_all(&src);
    let state = current_state(&recs, &checks);
    let selected = state.docs.iter().filter(|((c, k), _)| {
        range.collection.is_none_or(|x| x == *c)
            && range.prefix.is_none_or(|p| k.starts_with(p))
            && range.from.is_none_or(|f| *k >= f)
    });
    for (printed, ((c, k), d)) in selected.enumerate() {
        if range.limit.is_some_and(|l| printed as u64 >= l) {
            break;
        }
        let v = doc_json(c, k, d);
        out.emit(&v, || format!("{}/{} v{} {}", esc(c), esc(k), d.version, v["value"]))?;
    }
    note_verdict(out, &src, &log)?;
    Ok(0)
}

/// Where the live documents are, for `stats` and `dump` on a store with a snapshot: a
/// `live_documents` object, or a line of text (`stderr` for `dump`, whose stdout is the
/// listing).
pub fn live_json(state: &Current<'_>) -> Value {
    let (in_snapshot, in_log) = state.counts(None);
    json!({
        "type": "live_documents",
        "documents": in_snapshot + in_log,
        "in_snapshot": in_snapshot,
        "in_log": in_log,
        "snapshot": state.snapshot.map(|(p, _)| p.display().to_string()),
        "snapshot_lsn": state.snapshot.map(|(_, l)| l),
    })
}

/// The `live_documents` object as text.
pub fn live_text(state: &Current<'_>) -> String {
    let (in_snapshot, in_log) = state.counts(None);
    match state.snapshot {
        Some((p, lsn)) => format!(
            "live documents: {} — {in_snapshot} in snapshot {} (as of LSN {lsn}; the log before \
             it was compacted away: `walinspect dump {}` lists them), {in_log} in the log after it",
            in_snapshot + in_log,
            p.display(),
            p.display()
        ),
        None => format!("live documents: {in_log}, all in the log (no snapshot)"),
    }
}
