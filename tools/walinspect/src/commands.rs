//! `summary`, `verify` and `dump`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use walden::format::{BatchOp, BatchOpKind, RecordKind};
use walden::wal::RecordRef;

use crate::current::{current_state, live_json, live_text};
use crate::escape::esc;
use crate::out::{Fail, Out};
use crate::render::{
    self, batch_ops, kind_name, record_json, record_text, verdict_json, verdict_text,
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
            esc(c["collection"].as_str().unwrap_or("?")),
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
pub fn dump(out: &mut Out, path: &Path, f: &Filters, oneline: bool) -> Result<i32, Fail> {
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
            if oneline && !out.json {
                out.line(crate::oneline::record_oneline(r, &ops))?;
            } else {
                print_record(out, r, &ops)?;
            }
            printed += 1;
        }
    }
    // On a compacted store the log holds only what came after the snapshot: say where the
    // rest is, so a short listing is not mistaken for the whole store.
    if src.kind == SourceKind::StoreDir {
        let state = current_state(&recs, &checks);
        if state.snapshot.is_some() {
            if out.json {
                out.obj(&live_json(&state))?;
            } else {
                eprintln!("walinspect: this lists the log only; {}", live_text(&state));
            }
        }
    }
    note_verdict(out, &src, &scan)?;
    Ok(0)
}
