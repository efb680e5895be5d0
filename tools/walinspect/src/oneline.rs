//! `dump --oneline`: one line of text per record, for `grep`, `sort` and `wc -l`.
//!
//! `lsn <N> <time> ` then, for a batch, its operations separated by ` | ` (`put C/K vV <compact
//! JSON>` or `delete C/K vV`); for other kinds the kind and its decoded fields as `name=value`
//! (times in RFC 3339 only).
//! Names are escaped (`escape::esc`) and values are compact JSON, so no record spans two lines.

use walden::format::{BatchOp, BatchOpKind, RecordKind};
use walden::wal::RecordRef;

use crate::escape::esc;
use crate::render::{describe_state_body, doc_value, kind_name, op_name};
use crate::time::format_ns;

/// One record as one line (`ops`: the batch operations to show).
pub fn record_oneline(r: &RecordRef<'_>, ops: &[BatchOp<'_>]) -> String {
    let head = format!("lsn {} {}", r.frame.lsn, format_ns(r.frame.timestamp_unix_ns));
    let rest = match r.kind() {
        Some(RecordKind::Batch) if ops.is_empty() => "batch (no operations)".to_owned(),
        Some(RecordKind::Batch) => ops.iter().map(op_oneline).collect::<Vec<_>>().join(" | "),
        kind => {
            let fields = describe_state_body(kind, r.frame.body);
            // The readable time stands for its raw nanoseconds; the length only matters for a
            // body that did not decode.
            let shown = |k: &str| {
                let raw_twin = k.strip_suffix("_unix_ns").is_some_and(|t| fields.contains_key(t));
                !raw_twin && (k != "body_len" || fields.contains_key("decode_error"))
            };
            let fields = fields.iter().filter(|(k, _)| shown(k)).map(|(k, v)| match v.as_str() {
                Some(s) => format!("{k}={}", esc(s)),
                None => format!("{k}={v}"),
            });
            std::iter::once(kind_name(r.frame.kind)).chain(fields).collect::<Vec<_>>().join(" ")
        }
    };
    format!("{head} {rest}")
}

fn op_oneline(op: &BatchOp<'_>) -> String {
    let name =
        format!("{} {}/{} v{}", op_name(op.kind), esc(op.collection), esc(op.key), op.version);
    match op.kind {
        BatchOpKind::Put => format!("{name} {}", doc_value(op.value)),
        BatchOpKind::Delete => name,
    }
}
