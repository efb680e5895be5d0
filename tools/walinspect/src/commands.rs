//! `summary`, `verify`, `dump` and `history`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use walden::format::{decode_batch, BatchOp, BatchOpKind, RecordKind};
use walden::wal::RecordRef;

use crate::out::{Fail, Out};
use crate::render::{
    self, batch_ops, doc_value, kind_name, record_json, record_text, verdict_json, verdict_text,
};
use crate::snapshots;
use crate::source::{hex_id, load, Source, SourceKind};
use crate::time::format_ns;
use crate::Filters;

/// Whether a record passes the filters, and which of its batch ops to show. `None`: skip it.
pub fn select<'a>(r: &RecordRef<'a>, f: &Filters) -> Option<Vec<BatchOp<'a>>> {
    let fr = &r.frame;
    if f.from_lsn.is_some_and(|l| fr.lsn < l)
        || f.to_lsn.is_some_and(|l| fr.lsn > l)
        || f.since.is_some_and(|t| fr.timestamp_unix_ns < t)
        || f.until.is_some_and(|t| fr.timestamp_unix_ns > t)
        || f.kind.as_deref().is_some_and(|k| k != kind_name(fr.kind))
    {
        return None;
    }
    let doc_filter = f.collection.is_some() || f.key.is_some() || f.prefix.is_some();
    if r.kind() != Some(RecordKind::Batch) {
        return (!doc_filter).then(Vec::new);
    }
    let ops: Vec<BatchOp<'a>> = batch_ops(r)
        .into_iter()
        .filter(|op| {
            f.collection.as_deref().is_none_or(|c| c == op.collection)
                && f.key.as_deref().is_none_or(|k| k == op.key)
                && f.prefix.as_deref().is_none_or(|p| op.key.starts_with(p))
        })
        .collect();
    (!doc_filter || !ops.is_empty()).then_some(ops)
}

/// Prints one record as NDJSON or text.
pub fn print_record(out: &mut Out, r: &RecordRef<'_>, ops: &[BatchOp<'_>]) -> std::io::Result<()> {
    if out.json {
        out.obj(&record_json(r, ops))
    } else {
        out.line(record_text(r, ops))
    }
}

/// Prints the verdict of a scan unless it is clean (dump, history, stats: on stderr in text
/// mode, as a `verdict` object in NDJSON) so a partial listing is never mistaken for a whole one.
pub fn note_verdict(
    out: &mut Out,
    src: &Source,
    scan: &walden::wal::LogScan,
) -> std::io::Result<()> {
    let (code, v) = verdict_json(src, scan);
    if out.json {
        out.obj(&v)?;
    } else if code != render::EXIT_CLEAN {
        eprintln!("walinspect: the listing stops where the log does:\n{}", verdict_text(src, &v));
    }
    Ok(())
}

/// `summary`: segments, identity, epochs, LSN range, counts, collections, times, verdict.
pub fn summary(out: &mut Out, path: &Path) -> Result<i32, Fail> {
    let src = load(path)?;
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    let mut collections: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let (mut first_ts, mut last_ts) = (None::<u64>, None::<u64>);
    let scan = src.scan(&mut |r| {
        *by_kind.entry(kind_name(r.frame.kind)).or_default() += 1;
        first_ts.get_or_insert(r.frame.timestamp_unix_ns);
        last_ts = Some(r.frame.timestamp_unix_ns);
        for op in batch_ops(r) {
            let e = collections.entry(op.collection.to_owned()).or_default();
            match op.kind {
                BatchOpKind::Put => e.0 += 1,
                BatchOpKind::Delete => e.1 += 1,
            }
        }
    });
    for s in &scan.segments {
        let h = s.header;
        let v = json!({
            "type": "segment",
            "segment": s.segment_no,
            "file": s.path.display().to_string(),
            "bytes": s.bytes,
            "valid_bytes": s.valid_bytes,
            "records": s.records,
            "header_ok": h.is_some(),
            "epoch": h.map(|h| h.epoch),
            "first_lsn": h.map(|h| h.first_lsn),
            "last_lsn": s.last_lsn,
        });
        out.emit(&v, || {
            format!(
                "segment {:>6}  {:>10} bytes  {:>8} records  epoch {}  lsn {}..{}  {}",
                s.segment_no,
                s.bytes,
                s.records,
                h.map_or("?".into(), |h| h.epoch.to_string()),
                h.map_or("?".into(), |h| h.first_lsn.to_string()),
                s.last_lsn.map_or("-".into(), |l| l.to_string()),
                s.path.display()
            )
        })?;
    }
    let unscanned: Vec<_> = src.segments.iter().skip(scan.segments.len()).collect();
    for s in &unscanned {
        let v = json!({ "type": "segment", "segment": s.segment_no, "file": s.path.display().to_string(),
            "bytes": s.bytes.len(), "scanned": false });
        out.emit(&v, || {
            format!(
                "segment {:>6}  {:>10} bytes  (not scanned: after the damage)  {}",
                s.segment_no,
                s.bytes.len(),
                s.path.display()
            )
        })?;
    }
    let checks = snapshots::check_all(&src);
    for c in &checks {
        out.emit(&snapshots::snapshot_json(c), || snapshots::snapshot_text(c))?;
    }
    for (p, len) in &src.torn_files {
        let v = json!({ "type": "torn_file", "file": p.display().to_string(), "bytes": len });
        out.emit(&v, || {
            format!("torn tail cut by an earlier open: {} ({len} bytes)", p.display())
        })?;
    }
    let epochs: Vec<u64> = scan.segments.iter().filter_map(|s| s.header.map(|h| h.epoch)).collect();
    let records: u64 = scan.segments.iter().map(|s| s.records).sum();
    let v = json!({
        "type": "summary",
        "path": src.root.display().to_string(),
        "source": match src.kind { SourceKind::StoreDir => "store", SourceKind::WalDir => "wal_dir", SourceKind::SegmentFile => "segment_file", SourceKind::SnapshotFile => "snapshot_file" },
        "store_id": scan.store_id.or(src.identity.map(|i| i.store_id)).map(|id| hex_id(&id)),
        "created": src.identity.map(|i| format_ns(i.created_unix_ns)),
        "identity_problem": src.identity_problem,
        "segments": src.segments.len(),
        "bytes": src.segments.iter().map(|s| s.bytes.len() as u64).sum::<u64>(),
        "epoch_min": epochs.iter().min(),
        "epoch_max": epochs.iter().max(),
        "first_lsn": scan.first_lsn,
        "last_lsn": scan.last_lsn,
        "records": records,
        "records_by_kind": by_kind,
        "collections": collections.iter().map(|(c, (p, d))| json!({"collection": c, "puts": p, "deletes": d})).collect::<Vec<_>>(),
        "snapshots": checks.len(),
        "snapshot_lsn": snapshots::newest_valid(&checks).and_then(|c| c.result.as_ref().ok()).map(|h| h.lsn),
        "first_time": first_ts.map(format_ns),
        "last_time": last_ts.map(format_ns),
    });
    out.emit(&v, || summary_text(&v))?;
    let (_, verdict) = verdict_json(&src, &scan);
    out.emit(&verdict, || verdict_text(&src, &verdict))?;
    Ok(0)
}

fn summary_text(v: &Value) -> String {
    let s = |k: &str| match &v[k] {
        Value::Null => "-".to_owned(),
        Value::String(x) => x.clone(),
        x => x.to_string(),
    };
    let mut t = format!(
        "store {}  (created {})\n{} segments, {} bytes; epochs {}..{}; LSN {}..{}; {} records\nfirst record {}, last record {}",
        s("store_id"), s("created"), s("segments"), s("bytes"), s("epoch_min"), s("epoch_max"),
        s("first_lsn"), s("last_lsn"), s("records"), s("first_time"), s("last_time")
    );
    if let Some(p) = v["identity_problem"].as_str() {
        t.push_str(&format!("\nwarning: {p}"));
    }
    if let Some(m) = v["records_by_kind"].as_object() {
        let kinds: Vec<String> = m.iter().map(|(k, n)| format!("{k} {n}")).collect();
        t.push_str(&format!(
            "\nrecords by kind: {}",
            if kinds.is_empty() { "-".into() } else { kinds.join(", ") }
        ));
    }
    for c in v["collections"].as_array().into_iter().flatten() {
        t.push_str(&format!(
            "\ncollection {}: {} puts, {} deletes",
            c["collection"].as_str().unwrap_or("?"),
            c["puts"],
            c["deletes"]
        ));
    }
    t.push_str(&format!(
        "\nsnapshots: {}; newest valid at lsn {}",
        s("snapshots"),
        s("snapshot_lsn")
    ));
    t
}

/// `verify`: the verdict and its exit code.
pub fn verify(out: &mut Out, path: &Path) -> Result<i32, Fail> {
    let src = load(path)?;
    let scan = src.scan(&mut |_| {});
    let (code, mut v) = verdict_json(&src, &scan);
    v["segments"] = json!(scan.segments.len());
    v["records"] = json!(scan.segments.iter().map(|s| s.records).sum::<u64>());
    v["first_lsn"] = json!(scan.first_lsn);
    v["last_lsn"] = json!(scan.last_lsn);
    out.emit(&v, || {
        format!(
            "segments examined: {}, valid records: {}, LSN {}..{}\n{}",
            v["segments"],
            v["records"],
            scan.first_lsn.map_or("-".into(), |l| l.to_string()),
            scan.last_lsn.map_or("-".into(), |l| l.to_string()),
            verdict_text(&src, &v)
        )
    })?;
    Ok(code)
}

/// `dump`: records passing the filters.
pub fn dump(out: &mut Out, path: &Path, f: &Filters) -> Result<i32, Fail> {
    let src = load(path)?;
    let (mut recs, scan) = src.records();
    // A snapshot file given on its own: its entries (segment 0 stands for "snapshot").
    let checks = snapshots::check_all(&src);
    if src.kind == SourceKind::SnapshotFile {
        for c in &checks {
            let epoch = c.result.as_ref().map_or(0, |h| h.epoch);
            recs.extend(c.entries.iter().map(|e| RecordRef {
                segment_no: 0,
                epoch,
                path: &c.snap.path,
                offset: e.offset,
                frame: e.frame,
            }));
        }
    }
    let mut printed = 0u64;
    for r in &recs {
        if f.limit.is_some_and(|l| printed >= l) {
            break;
        }
        if let Some(ops) = select(r, f) {
            print_record(out, r, &ops)?;
            printed += 1;
        }
    }
    note_verdict(out, &src, &scan)?;
    Ok(0)
}

/// One changed path: `(path, old, new)`, `None` for absent.
pub type Change = (String, Option<Value>, Option<Value>);

/// A path-by-path difference between two versions of a document (`None`: absent, i.e. before
/// the first put or after a delete).
pub fn json_diff(old: Option<&Value>, new: Option<&Value>) -> Vec<Change> {
    let mut out = Vec::new();
    match (old, new) {
        (Some(a), Some(b)) => diff_into(String::new(), a, b, &mut out),
        (None, None) => {}
        (a, b) => out.push(("/".into(), a.cloned(), b.cloned())),
    }
    out
}

fn diff_into(path: String, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let p = format!("{path}/{k}");
                match b.get(k) {
                    Some(vb) => diff_into(p, va, vb, out),
                    None => out.push((p, Some(va.clone()), None)),
                }
            }
            for (k, vb) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                out.push((format!("{path}/{k}"), None, Some(vb.clone())));
            }
        }
        _ if old != new => out.push((
            if path.is_empty() { "/".into() } else { path },
            Some(old.clone()),
            Some(new.clone()),
        )),
        _ => {}
    }
}

/// `history`: every version of one document, through the newest snapshot and the log.
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
    let from_snapshot: Vec<walden::format::Frame<'_>> = snapshots::newest_valid(&checks)
        .map(|c| c.entries.iter().map(|e| e.frame).filter(|f| f.lsn < first_log_lsn).collect())
        .unwrap_or_default();
    let frames = from_snapshot
        .into_iter()
        .map(|f| ("snapshot", f))
        .chain(recs.iter().map(|r| ("log", r.frame)));
    let mut prev: Option<Value> = None;
    for (source, frame) in frames {
        let ops = match RecordKind::from_u8(frame.kind) {
            Some(RecordKind::Batch) => decode_batch(frame.body).unwrap_or_default(),
            _ => Vec::new(),
        };
        for op in ops.iter().filter(|o| o.collection == collection && o.key == key) {
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
                let mut t = format!(
                    "lsn {}  {}  {} v{}  ({source})",
                    frame.lsn,
                    format_ns(frame.timestamp_unix_ns),
                    render::op_name(op.kind),
                    op.version
                );
                match (&changes, &value) {
                    (Some(ch), _) => {
                        for (p, a, b) in ch {
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
            })?;
            prev = value;
        }
    }
    note_verdict(out, &src, &scan)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lists_added_removed_and_changed_paths() {
        let a = json!({"name": "Ada", "age": 36, "tags": {"x": 1}});
        let b = json!({"name": "Ada L", "tags": {"x": 2}, "city": "London"});
        let d = json_diff(Some(&a), Some(&b));
        assert!(d.contains(&("/name".into(), Some(json!("Ada")), Some(json!("Ada L")))));
        assert!(d.contains(&("/age".into(), Some(json!(36)), None)));
        assert!(d.contains(&("/tags/x".into(), Some(json!(1)), Some(json!(2)))));
        assert!(d.contains(&("/city".into(), None, Some(json!("London")))));
        assert_eq!(d.len(), 4);
        assert!(json_diff(Some(&a), Some(&a)).is_empty());
        assert_eq!(json_diff(None, Some(&a)), [("/".into(), None, Some(a.clone()))]);
        assert_eq!(json_diff(Some(&a), None), [("/".into(), Some(a), None)]);
    }
}
