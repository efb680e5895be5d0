//! `salvage`: a new store from every valid record of a damaged one.
//!
//! Starts from the snapshots (`salvage_base`: the newest that verifies, and every newer damaged
//! one read entry by entry), then reads every segment with the library's lenient walk
//! (`walk_segment_lenient`), which skips damaged bytes and resumes at the next record that
//! verifies. Batch records after the snapshot are applied in log order to an in-memory map, up to
//! the first hole in the LSN chain (the prefix the log passed through; records after a hole may
//! be writes no fsync covered) or, with `--keep-all-readable`, every readable one; the
//! final state of every document is then written to a new store through the `Store` API. Kept:
//! the latest value of every document found. Not kept: version numbers and timestamps (documents
//! start again at version 1), the history of older versions, rate-limit and breaker records (not
//! replayed; counted), `.torn-*` files. The source is only read.
//!
//! The exit code says whether anything was lost: 0 when every byte of the source was read and
//! every document written, [`EXIT_SALVAGE_INCOMPLETE`] when anything was skipped (a damaged
//! range, a missing segment or LSN, a document the new store refused).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, value::RawValue};
use walden::format::{decode_batch, BatchOpKind, RecordKind, SegmentHeader};
use walden::limits::{MAX_KEY_BYTES_LIMIT, MAX_RECORD_BODY_BYTES};
use walden::wal::{walk_segment_lenient, LenientItem};
use walden::{Batch, Options, Store};

use crate::escape::esc;
use crate::out::{Fail, Out};
use crate::render::kind_name;
use crate::salvage_base::read_snapshots;
use crate::snapshots;
use crate::source::load;
use crate::SalvageArgs;

/// Most operations per batch written to the new store.
const CHUNK_OPS: usize = 1000;
/// Most value bytes per batch written to the new store.
const CHUNK_BYTES: usize = 8 << 20;

/// Exit code of a salvage that skipped anything: damaged bytes, a missing segment or LSN range,
/// a document the new store refused. The new store holds everything else.
pub const EXIT_SALVAGE_INCOMPLETE: i32 = 1;

/// What was skipped so far.
#[derive(Default)]
pub struct Skips {
    ranges: u64,
    bytes: u64,
    /// Missing segments and LSN ranges reported.
    gaps: u64,
}

impl Skips {
    /// Counts and reports `len` bytes of `file` at `offset` that are not salvaged.
    pub fn skip(
        &mut self,
        out: &mut Out,
        file: &Path,
        offset: u64,
        len: u64,
        reason: String,
    ) -> std::io::Result<()> {
        self.ranges += 1;
        self.bytes += len;
        let v = json!({ "type": "skip", "file": file.display().to_string(), "offset": offset,
            "len": len, "reason": reason });
        out.emit(&v, || format!("skipped {len} bytes at {}:{offset}: {reason}", file.display()))
    }
}

fn out_err(what: &str, e: impl std::fmt::Display) -> Fail {
    Fail::Output(format!("{what}: {e}"))
}

/// `salvage --out DIR`.
pub fn salvage(out: &mut Out, a: &SalvageArgs) -> Result<i32, Fail> {
    let src = load(&a.path)?;
    if let Ok(mut entries) = std::fs::read_dir(&a.out) {
        if entries.next().is_some() {
            return Err(Fail::Usage(format!("--out {} exists and is not empty", a.out.display())));
        }
    }
    let canon_src = std::fs::canonicalize(&a.path).ok();
    let canon_out = std::fs::canonicalize(&a.out).ok();
    if canon_out.is_some() && canon_src == canon_out {
        return Err(Fail::Usage("--out must not be the source".into()));
    }
    let expected_id = src.identity.map(|i| i.store_id);
    let mut docs = Docs::new();
    let (mut records, mut applied) = (0u64, 0u64);
    let mut skips = Skips::default();
    let mut not_replayed: BTreeMap<String, u64> = BTreeMap::new();
    let checks = snapshots::check_all(&src);
    let (base, base_counts) = read_snapshots(out, &src, &checks, &mut docs, &mut skips)?;
    for kind in base_counts.not_replayed {
        *not_replayed.entry(kind).or_default() += 1;
    }
    let snapshot_lsn = base.lsn();
    let mut covered = 0u64;
    let mut last_lsn: Option<u64> = snapshot_lsn;
    let mut prev_no: Option<u64> = None;
    // The first LSN the log is missing, once records resume after it (the prefix ends there).
    let mut hole: Option<u64> = None;
    let mut dropped_after_hole = 0u64;
    for seg in &src.segments {
        if let Some(p) = prev_no.filter(|p| seg.segment_no != p + 1) {
            skips.gaps += 1;
            let v = json!({ "type": "gap", "after_segment": p, "next_segment": seg.segment_no });
            out.emit(&v, || format!("segments {}..{} are missing", p + 1, seg.segment_no - 1))?;
        }
        prev_no = Some(seg.segment_no);
        let whole = seg.bytes.len() as u64;
        let header = match SegmentHeader::decode(&seg.bytes) {
            Ok(h) if expected_id.is_some_and(|id| id != h.store_id) => {
                skips.skip(out, &seg.path, 0, whole, "segment belongs to another store".into())?;
                continue;
            }
            Ok(h) => h,
            Err(e) => {
                skips.skip(out, &seg.path, 0, whole, format!("segment header: {e}"))?;
                continue;
            }
        };
        let mut items = Vec::new();
        walk_segment_lenient(&seg.bytes, &header, &mut |i| items.push(i));
        for item in items {
            let (offset, frame) = match item {
                LenientItem::Damaged { offset, len, error } => {
                    skips.skip(out, &seg.path, offset, len, error.to_string())?;
                    continue;
                }
                LenientItem::Record { offset, frame } => (offset, frame),
            };
            if RecordKind::from_u8(frame.kind) == Some(RecordKind::Close) {
                continue; // a clean close: no data, no LSN of its own
            }
            records += 1;
            let len = frame.len as u64;
            if snapshot_lsn.is_some_and(|l| frame.lsn <= l) {
                covered += 1;
                // Behind a damaged snapshot, a covered record may hold what its damage lost.
                if !base.whole() && RecordKind::from_u8(frame.kind) == Some(RecordKind::Batch) {
                    let allows = |k: &(String, String)| base.allows(k, frame.lsn, None);
                    let _ = apply_batch(&mut docs, frame.lsn, frame.body, &allows);
                }
                continue;
            }
            let expected = last_lsn.unwrap_or(0) + 1;
            if frame.lsn > expected {
                skips.gaps += 1;
                let v = json!({ "type": "lsn_gap", "expected": expected, "found": frame.lsn,
                    "file": seg.path.display().to_string(), "offset": offset });
                out.emit(&v, || {
                    format!(
                        "records {expected}..{} are missing (lost or never found)",
                        frame.lsn - 1
                    )
                })?;
                if !a.keep_all_readable && hole.is_none() {
                    hole = Some(expected);
                    let v = json!({ "type": "prefix_end", "hole_at_lsn": expected });
                    out.emit(&v, || {
                        format!(
                            "the log has a hole at LSN {expected}: later records are not kept \
                             (--keep-all-readable keeps them)"
                        )
                    })?;
                }
            }
            if hole.is_some() {
                dropped_after_hole += 1;
                continue;
            }
            if let Some(last) = last_lsn.filter(|&l| frame.lsn <= l) {
                let why = format!("LSN {} does not follow {last}", frame.lsn);
                skips.skip(out, &seg.path, offset, len, why)?;
                continue;
            }
            if RecordKind::from_u8(frame.kind) != Some(RecordKind::Batch) {
                *not_replayed.entry(kind_name(frame.kind)).or_default() += 1;
                last_lsn = Some(frame.lsn);
                continue;
            }
            match apply_batch(&mut docs, frame.lsn, frame.body, &|_| true) {
                Ok(()) => {
                    applied += 1;
                    last_lsn = Some(frame.lsn);
                }
                Err(e) => skips.skip(out, &seg.path, offset, len, format!("batch body: {e}"))?,
            }
        }
    }
    let (written, deleted, refused) = write_store(out, &a.out, &docs)?;
    let complete = skips.ranges == 0 && skips.gaps == 0 && refused == 0 && dropped_after_hole == 0;
    let v = json!({
        "type": "salvage", "out": a.out.display().to_string(), "records_read": records,
        "batches_applied": applied, "documents_written": written, "documents_deleted": deleted,
        "skipped_ranges": skips.ranges, "skipped_bytes": skips.bytes,
        "not_replayed": not_replayed, "last_lsn": last_lsn, "snapshot_lsn": snapshot_lsn,
        "covered_by_snapshot": covered, "snapshot_entries_used": base_counts.entries_used,
        "gaps": skips.gaps, "documents_refused": refused, "complete": complete,
        "hole_at_lsn": hole, "dropped_after_hole": dropped_after_hole,
    });
    out.emit(&v, || {
        format!(
            "salvaged into {}: {records} valid records read, {applied} batches applied, \
             {written} documents written ({deleted} deleted keys dropped); {} damaged ranges \
             ({} bytes) skipped, {} gaps, {refused} documents refused{}{}\n{}",
            a.out.display(),
            skips.ranges,
            skips.bytes,
            skips.gaps,
            hole.map_or(String::new(), |h| format!(
                "; {dropped_after_hole} records after the hole at LSN {h} not kept"
            )),
            if not_replayed.is_empty() {
                String::new()
            } else {
                format!("; not replayed: {not_replayed:?}")
            },
            if complete {
                "COMPLETE: nothing was skipped"
            } else {
                "INCOMPLETE: something was skipped (see above); the new store holds the rest"
            }
        )
    })?;
    Ok(if complete { 0 } else { EXIT_SALVAGE_INCOMPLETE })
}

/// Applies the operations of one batch body written at `lsn` to the document map, those on keys
/// `allows` accepts.
fn apply_batch(
    docs: &mut Docs,
    lsn: u64,
    body: &[u8],
    allows: &dyn Fn(&(String, String)) -> bool,
) -> Result<(), String> {
    for op in decode_batch(body)? {
        let key = (op.collection.to_owned(), op.key.to_owned());
        if allows(&key) {
            let value = (op.kind == BatchOpKind::Put).then(|| op.value.to_vec());
            merge(docs, key, lsn, value);
        }
    }
    Ok(())
}

/// Records `value` (`None`: deleted) written at `lsn` for `key`, unless a later write is known.
pub fn merge(docs: &mut Docs, key: (String, String), lsn: u64, value: Option<Vec<u8>>) {
    match docs.get(&key) {
        Some((known, _)) if *known > lsn => {}
        _ => {
            docs.insert(key, (lsn, value));
        }
    }
}

/// Documents by (collection, key): the LSN of the write and the value (`None`: deleted).
pub type Docs = BTreeMap<(String, String), (u64, Option<Vec<u8>>)>;

/// Writes the final documents into a new store; returns (written, deleted keys dropped,
/// documents the new store refused).
fn write_store(out: &mut Out, dir: &Path, docs: &Docs) -> Result<(u64, u64, u64), Fail> {
    let options = Options {
        max_key_bytes: MAX_KEY_BYTES_LIMIT,
        max_document_bytes: MAX_RECORD_BODY_BYTES - (1 << 20),
        ..Options::default()
    };
    let store =
        Store::open_with(dir, options).map_err(|e| out_err("cannot create the output store", e))?;
    let (mut written, mut deleted) = (0u64, 0u64);
    let mut batch = Batch::new();
    let mut batch_bytes = 0usize;
    let mut pending: Vec<(&str, &str)> = Vec::new();
    let mut refused = 0u64;
    let live = docs.iter().filter_map(|((c, k), (_, v))| match v {
        Some(v) => Some((c, k, v)),
        None => {
            deleted += 1;
            None
        }
    });
    let flush = |batch: &mut Batch,
                 pending: &mut Vec<(&str, &str)>,
                 out: &mut Out|
     -> Result<(u64, u64), Fail> {
        let b = std::mem::take(batch);
        let n = pending.len() as u64;
        if let Err(e) = store.commit(b) {
            for (c, k) in pending.drain(..) {
                skip_doc(out, c, k, &e.to_string())?;
            }
            return Ok((0, n));
        }
        pending.clear();
        Ok((n, 0))
    };
    for (c, k, v) in live {
        let raw = match std::str::from_utf8(v)
            .ok()
            .and_then(|s| RawValue::from_string(s.to_owned()).ok())
        {
            Some(r) => r,
            None => {
                skip_doc(out, c, k, "value is not valid JSON")?;
                refused += 1;
                continue;
            }
        };
        if !pending.is_empty()
            && (pending.len() >= CHUNK_OPS || batch_bytes + v.len() > CHUNK_BYTES)
        {
            let (w, r) = flush(&mut batch, &mut pending, out)?;
            (written, refused) = (written + w, refused + r);
            batch_bytes = 0;
        }
        batch.put(c, k, &raw);
        batch_bytes += v.len();
        pending.push((c, k));
    }
    if !pending.is_empty() {
        let (w, r) = flush(&mut batch, &mut pending, out)?;
        (written, refused) = (written + w, refused + r);
    }
    store.close().map_err(|e| out_err("cannot sync the output store", e))?;
    Ok((written, deleted, refused))
}

fn skip_doc(out: &mut Out, collection: &str, key: &str, reason: &str) -> Result<(), Fail> {
    let v =
        json!({ "type": "skip_document", "collection": collection, "key": key, "reason": reason });
    out.emit(&v, || format!("could not write {}/{}: {reason}", esc(collection), esc(key)))?;
    Ok(())
}
