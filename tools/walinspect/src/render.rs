//! Turning records and verdicts into NDJSON objects and human text.

use serde_json::{json, Map, Value};
use walden::format::breaker::BreakerRecord;
use walden::format::breaker_counts::BreakerCountsRecord;
use walden::format::floor::VersionFloorRecord;
use walden::format::lockout::LockoutRecord;
use walden::format::ratelimit::RateLimitRecord;
use walden::format::violations::ViolationsRecord;
use walden::format::{
    decode_batch, BatchOp, BatchOpKind, CorruptionKind, DurabilityProof, FrameError, RecordKind,
};
use walden::wal::{LogScan, LogVerdict, RecordRef};
use walden::CircuitState;

use crate::escape::esc;
use crate::snapshots;
use crate::source::Source;
use crate::time::format_ns;

/// A document's JSON bytes as a JSON value (a string with the raw bytes if they do not parse).
pub fn doc_value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| json!({ "unparsed_json": String::from_utf8_lossy(bytes) }))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The name of a breaker state, as walinspect prints it.
pub fn circuit_state_name(state: CircuitState) -> &'static str {
    match state {
        CircuitState::Closed => "closed",
        CircuitState::Open => "open",
        CircuitState::HalfOpen => "half_open",
        CircuitState::ForcedOpen => "forced_open",
        CircuitState::Disabled => "disabled",
    }
}

/// The fields of a rate-limit or breaker record body, decoded with the library's
/// `RateLimitRecord::decode` / `BreakerRecord::decode`. The one place that knows these bodies; a
/// body that does not decode (or an unknown kind) is shown as its length and hex.
pub fn describe_state_body(kind: Option<RecordKind>, body: &[u8]) -> Map<String, Value> {
    let decoded = match kind {
        Some(RecordKind::RateLimit) => RateLimitRecord::decode(body).map(|r| {
            json!({
                "limiter": r.limiter,
                "key": r.key,
                "now": format_ns(r.now_unix_ns),
                "now_unix_ns": r.now_unix_ns,
                "tat": format_ns(r.tat_unix_ns),
                "tat_unix_ns": r.tat_unix_ns,
            })
        }),
        Some(RecordKind::Breaker) => BreakerRecord::decode(body).map(|b| {
            json!({
                "breaker": b.name,
                "state": circuit_state_name(b.state),
                "generation": b.generation,
                "open_until_unix_ns": b.open_until_unix_ns,
                "transition": format_ns(b.transition_unix_ns),
                "transition_unix_ns": b.transition_unix_ns,
            })
        }),
        Some(RecordKind::VersionFloor) => VersionFloorRecord::decode(body)
            .map(|f| json!({ "collection": f.collection, "floor": f.floor })),
        Some(RecordKind::BreakerCounts) => BreakerCountsRecord::decode(body).map(|c| {
            json!({
                "breaker": c.name,
                "generation": c.generation,
                "logged": format_ns(c.logged_unix_ns),
                "logged_unix_ns": c.logged_unix_ns,
                "reason": c.reason,
                "reason_detail": [c.reason_a, c.reason_b],
                "last_open_ns": c.last_open_ns,
                "calls": c.calls,
                "successes": c.successes,
                "failures": c.failures,
                "slow_calls": c.slow_calls,
                "rejected": c.rejected,
                "consecutive_failures": c.consecutive_failures,
                "consecutive_successes": c.consecutive_successes,
                "window_calls": c.window_calls,
                "window_failures": c.window_failures,
                "streak_unix_ns": c.streak_unix_ns,
            })
        }),
        Some(RecordKind::Lockout) => LockoutRecord::decode(body).map(|l| {
            json!({
                "lockout": l.name,
                "key": l.key,
                "now": format_ns(l.now_unix_ns),
                "now_unix_ns": l.now_unix_ns,
                "locked_until_unix_ns": l.locked_until_unix_ns,
                "expires_unix_ns": l.expires_unix_ns,
                "failures_unix_ns": l.failures_unix_ns,
            })
        }),
        Some(RecordKind::RateLimitViolations) => ViolationsRecord::decode(body).map(|v| {
            json!({
                "limiter": v.limiter,
                "key": v.key,
                "denials": v.denials,
                "first_denied_unix_ns": v.first_denied_unix_ns,
                "last_denied": format_ns(v.last_denied_unix_ns),
                "last_denied_unix_ns": v.last_denied_unix_ns,
                "expires_unix_ns": v.expires_unix_ns,
            })
        }),
        _ => Err("no decoder for this kind".to_owned()),
    };
    let mut m = Map::new();
    m.insert("body_len".into(), json!(body.len()));
    match decoded {
        Ok(Value::Object(fields)) => m.extend(fields),
        Ok(_) => {}
        Err(e) => {
            m.insert("body_hex".into(), json!(hex(body)));
            m.insert("decode_error".into(), json!(e));
        }
    }
    m
}

/// The kind name of a raw kind byte.
pub fn kind_name(kind: u8) -> String {
    RecordKind::from_u8(kind).map_or_else(|| format!("unknown-{kind}"), |k| k.name().to_owned())
}

/// One batch operation as a JSON object.
pub fn op_json(op: &BatchOp<'_>) -> Value {
    let mut v = json!({
        "op": op_name(op.kind),
        "collection": op.collection,
        "key": op.key,
        "version": op.version,
    });
    if op.kind == BatchOpKind::Put {
        v["value"] = doc_value(op.value);
    }
    v
}

/// `put` or `delete`.
pub fn op_name(kind: BatchOpKind) -> &'static str {
    match kind {
        BatchOpKind::Put => "put",
        BatchOpKind::Delete => "delete",
    }
}

/// A record as a JSON object (`type: "record"`); `ops` are the batch ops to show (all of them
/// unless filtered).
pub fn record_json(r: &RecordRef<'_>, ops: &[BatchOp<'_>]) -> Value {
    let mut v = json!({
        "type": "record",
        "lsn": r.frame.lsn,
        "time": format_ns(r.frame.timestamp_unix_ns),
        "timestamp_unix_ns": r.frame.timestamp_unix_ns,
        "kind": kind_name(r.frame.kind),
        "segment": r.segment_no,
        "epoch": r.epoch,
        "file": r.path.display().to_string(),
        "offset": r.offset,
        "len": r.frame.len,
    });
    match r.kind() {
        Some(RecordKind::Batch) => v["ops"] = ops.iter().map(op_json).collect(),
        kind => {
            for (k, x) in describe_state_body(kind, r.frame.body) {
                v[k] = x;
            }
        }
    }
    v
}

/// A record as human text: a header line, then one line (or a pretty JSON block) per op.
pub fn record_text(r: &RecordRef<'_>, ops: &[BatchOp<'_>]) -> String {
    let mut s = format!(
        "lsn {}  {}  {}  segment {} @ {}  ({} bytes)",
        r.frame.lsn,
        format_ns(r.frame.timestamp_unix_ns),
        kind_name(r.frame.kind),
        r.segment_no,
        r.offset,
        r.frame.len
    );
    match r.kind() {
        Some(RecordKind::Batch) => {
            for op in ops {
                s.push_str(&format!(
                    "\n  {} {}/{} v{}",
                    op_name(op.kind),
                    esc(op.collection),
                    esc(op.key),
                    op.version
                ));
                if op.kind == BatchOpKind::Put {
                    s.push_str(" =\n");
                    s.push_str(&indent(&pretty(&doc_value(op.value)), "    "));
                }
            }
        }
        kind => {
            let m = describe_state_body(kind, r.frame.body);
            for (k, x) in m {
                s.push_str(&format!(
                    "\n  {k}: {}",
                    x.as_str().map_or_else(|| x.to_string(), |t| esc(t).into_owned())
                ));
            }
        }
    }
    s
}

/// Pretty-printed JSON.
pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// Prefixes every line of `s` with `pad`.
pub fn indent(s: &str, pad: &str) -> String {
    s.lines().map(|l| format!("{pad}{l}")).collect::<Vec<_>>().join("\n")
}

/// The decoded ops of a batch record (empty for other kinds or a body that does not decode;
/// the scan has already rejected the latter).
pub fn batch_ops<'a>(r: &RecordRef<'a>) -> Vec<BatchOp<'a>> {
    match r.kind() {
        Some(RecordKind::Batch) => decode_batch(r.frame.body).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Verdict classes and their exit codes.
pub const EXIT_CLEAN: i32 = 0;
/// A torn tail: what an open would truncate.
pub const EXIT_TORN: i32 = 1;
/// Damage in the middle of the log.
pub const EXIT_CORRUPT: i32 = 2;
/// A missing segment, a foreign store or epoch, an LSN gap.
pub const EXIT_INCONSISTENT: i32 = 3;
/// Unreadable, or not a walden store.
pub const EXIT_UNREADABLE: i32 = 4;

/// A stable snake_case name for a corruption kind.
pub fn corruption_name(kind: &CorruptionKind) -> &'static str {
    match kind {
        CorruptionKind::BadMagic => "bad_magic",
        CorruptionKind::UnsupportedVersion { .. } => "unsupported_version",
        CorruptionKind::HeaderChecksum { .. } => "header_checksum",
        CorruptionKind::ShortHeader => "short_header",
        CorruptionKind::ShortFooter => "short_footer",
        CorruptionKind::FooterChecksum { .. } => "footer_checksum",
        CorruptionKind::BadRecord(_) => "bad_record",
        CorruptionKind::DurableRecordDamaged { .. } => "durable_record_damaged",
        CorruptionKind::AfterClose { .. } => "after_close",
        CorruptionKind::BadBody(_) => "bad_body",
        CorruptionKind::UnknownRecordKind(_) => "unknown_record_kind",
        CorruptionKind::LsnGap { .. } => "lsn_gap",
        CorruptionKind::MissingSegment { .. } => "missing_segment",
        CorruptionKind::SegmentNumberMismatch { .. } => "segment_number_mismatch",
        CorruptionKind::ForeignStore => "foreign_store",
        CorruptionKind::EpochRegression { .. } => "epoch_regression",
        CorruptionKind::MissingIdentity => "missing_identity",
        CorruptionKind::Empty => "empty",
        _ => "other",
    }
}

/// Exit code for a corruption kind.
pub fn corruption_exit(kind: &CorruptionKind) -> i32 {
    match kind {
        CorruptionKind::LsnGap { .. }
        | CorruptionKind::MissingSegment { .. }
        | CorruptionKind::SegmentNumberMismatch { .. }
        | CorruptionKind::ForeignStore
        | CorruptionKind::EpochRegression { .. } => EXIT_INCONSISTENT,
        CorruptionKind::MissingIdentity => EXIT_UNREADABLE,
        _ => EXIT_CORRUPT,
    }
}

fn frame_error_name(e: &FrameError) -> &'static str {
    match e {
        FrameError::Truncated { .. } => "truncated",
        FrameError::TooLong { .. } => "too_long",
        FrameError::Checksum { .. } => "checksum",
        FrameError::Reserved => "reserved",
        FrameError::Watermark { .. } => "watermark",
    }
}

fn crcs(kind: Option<&CorruptionKind>, frame: Option<&FrameError>) -> Option<(u32, u32)> {
    match (kind, frame) {
        (_, Some(FrameError::Checksum { stored, computed }))
        | (Some(CorruptionKind::HeaderChecksum { stored, computed }), _)
        | (Some(CorruptionKind::FooterChecksum { stored, computed }), _) => {
            Some((*stored, *computed))
        }
        (Some(CorruptionKind::BadRecord(FrameError::Checksum { stored, computed })), _)
        | (
            Some(CorruptionKind::DurableRecordDamaged {
                error: FrameError::Checksum { stored, computed },
                ..
            }),
            _,
        ) => Some((*stored, *computed)),
        _ => None,
    }
}

/// Bytes shown before and after a bad offset.
const WINDOW_BEFORE: usize = 32;
const WINDOW_AFTER: usize = 64;

/// The start of the hex window around `offset` and its bytes.
pub fn hex_window(bytes: &[u8], offset: u64) -> (usize, &[u8]) {
    let at = (offset as usize).min(bytes.len());
    let start = at.saturating_sub(WINDOW_BEFORE) / 16 * 16;
    let end = bytes.len().min(at + WINDOW_AFTER);
    (start, &bytes[start..end])
}

/// A classic hex dump, 16 bytes a line, marking the line that holds `mark`.
pub fn hexdump(start: usize, bytes: &[u8], mark: u64) -> String {
    let mut out = Vec::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let at = start + i * 16;
        let hexs: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk
            .iter()
            .map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' })
            .collect();
        let here = (at as u64..at as u64 + 16).contains(&mark);
        out.push(format!(
            "{} {at:08x}  {:<47}  |{ascii}|",
            if here { ">" } else { " " },
            hexs.join(" ")
        ));
    }
    out.join("\n")
}

/// The verdict of a scan (plus the input's identity problem) as an exit code and a JSON object
/// (`type: "verdict"`).
pub fn verdict_json(src: &Source, scan: &LogScan) -> (i32, Value) {
    let mut v = json!({ "type": "verdict" });
    let code = match &scan.verdict {
        LogVerdict::Clean => {
            v["verdict"] = json!("clean");
            EXIT_CLEAN
        }
        LogVerdict::TornTail(t) => {
            v["verdict"] = json!("torn_tail");
            v["file"] = json!(t.path.display().to_string());
            v["segment"] = json!(t.segment_no);
            v["offset"] = json!(t.offset);
            v["len"] = json!(t.len);
            v["last_good_lsn"] = json!(scan.last_lsn);
            v["error"] = json!(t
                .error
                .map_or_else(|| "segment header never completed".to_owned(), |e| e.to_string()));
            v["error_kind"] = json!(t.error.as_ref().map_or("incomplete_header", frame_error_name));
            if let Some((s, c)) = crcs(None, t.error.as_ref()) {
                v["stored_crc"] = json!(format!("{s:#010x}"));
                v["computed_crc"] = json!(format!("{c:#010x}"));
            }
            v["resync_offset"] = Value::Null;
            add_window(&mut v, src, &t.path, t.offset);
            EXIT_TORN
        }
        LogVerdict::Corrupt(c) => {
            let code = corruption_exit(&c.kind);
            v = problem_json(src, &c.path, c.offset, c.last_good_lsn, &c.kind);
            v["resync_offset"] = json!(c.resync_offset);
            code
        }
    };
    if code == EXIT_CLEAN {
        if let Some(problem) = &src.identity_problem {
            // Without `STORE`, a directory with segments is refused by an open, and one without
            // any is not a store at all (an open would create a new, empty one there).
            if src.kind == crate::source::SourceKind::StoreDir {
                let problem = if src.segments.is_empty() {
                    format!("not a walden store: {problem} and wal/ holds no segment (an open would create a new, empty store here)")
                } else {
                    problem.clone()
                };
                v["verdict"] = json!("unreadable");
                v["error"] = json!(problem);
                v["error_kind"] = json!("identity");
                return (EXIT_UNREADABLE, with_code(v, EXIT_UNREADABLE));
            }
        }
    }
    let checks = snapshots::check_all(src);
    let base = snapshots::newest_valid(&checks).and_then(|c| c.result.as_ref().ok()).map(|h| h.lsn);
    let (code, mut v) = snapshots::snapshot_verdict(src, scan, &checks, code, v);
    v["snapshots"] = json!(checks.len());
    v["snapshot_lsn"] = json!(base);
    (code, with_code(v, code))
}

/// A verdict object for damage of `kind` at `offset` of `path`.
pub fn problem_json(
    src: &Source,
    path: &std::path::Path,
    offset: u64,
    last_good_lsn: Option<u64>,
    kind: &CorruptionKind,
) -> Value {
    let code = corruption_exit(kind);
    let mut v = json!({
        "type": "verdict",
        "verdict": if code == EXIT_CORRUPT { "corrupt" } else { "inconsistent" },
        "file": path.display().to_string(),
        "offset": offset,
        "last_good_lsn": last_good_lsn,
        "error": kind.to_string(),
        "error_kind": corruption_name(kind),
    });
    if let CorruptionKind::MissingSegment { segment_no } = kind {
        v["missing_segment"] = json!(segment_no);
    }
    if let CorruptionKind::DurableRecordDamaged { proof, .. } = kind {
        v["proof"] = proof_json(proof);
    }
    if let Some((s, cc)) = crcs(Some(kind), None) {
        v["stored_crc"] = json!(format!("{s:#010x}"));
        v["computed_crc"] = json!(format!("{cc:#010x}"));
    }
    add_window(&mut v, src, path, offset);
    v
}

/// What proves a damaged record had been durable (why it is corruption, not an unsynced tail).
fn proof_json(proof: &DurabilityProof) -> Value {
    match proof {
        DurabilityProof::LaterRecord { file, offset, lsn, watermark } => json!({
            "kind": "later_record", "file": file.display().to_string(), "offset": offset,
            "lsn": lsn, "durable_epoch": watermark.epoch, "durable_lsn": watermark.lsn,
            "text": proof.to_string(),
        }),
        DurabilityProof::LaterSegment { file, segment_no } => json!({
            "kind": "later_segment", "file": file.display().to_string(),
            "segment": segment_no, "text": proof.to_string(),
        }),
        _ => json!({ "kind": "other", "text": proof.to_string() }),
    }
}

fn with_code(mut v: Value, code: i32) -> Value {
    v["exit_code"] = json!(code);
    v
}

fn add_window(v: &mut Value, src: &Source, path: &std::path::Path, offset: u64) {
    if let Some(bytes) = src.bytes_of(path) {
        let (start, win) = hex_window(bytes, offset);
        v["hex_window_start"] = json!(start);
        v["hex_window"] = json!(hex(win));
    }
}

/// The verdict object as human text.
pub fn verdict_text(src: &Source, v: &Value) -> String {
    let verdict = v["verdict"].as_str().unwrap_or("?");
    let mut s = match verdict {
        "clean" => "verdict: CLEAN — every header, record, snapshot and the LSN chain verify".to_owned(),
        "torn_tail" => "verdict: TORN TAIL — the log ends in an incomplete write (a crash, or a write in progress on a live store); an open would cut it".to_owned(),
        "corrupt" if v["snapshot"] == true && v["store_opens"] == false => "verdict: CORRUPT — a snapshot is damaged and the log does not cover what it held; the store will refuse to open".to_owned(),
        "corrupt" if v["snapshot"] == true => "verdict: CORRUPT — a snapshot is damaged; an open skips it (an older snapshot, or none, and the log cover it)".to_owned(),
        "corrupt" => "verdict: CORRUPT — damage in the middle of the log; the store will refuse to open".to_owned(),
        "inconsistent" => "verdict: INCONSISTENT — missing segment, foreign store or epoch, or LSN gap; the store will refuse to open".to_owned(),
        _ => "verdict: UNREADABLE".to_owned(),
    };
    let field = |k: &str| v.get(k).filter(|x| !x.is_null());
    for (k, label) in [
        ("file", "file"),
        ("offset", "byte offset"),
        ("len", "bytes to the end"),
        ("last_good_lsn", "last good LSN"),
        ("error", "problem"),
        ("stored_crc", "stored CRC"),
        ("computed_crc", "computed CRC"),
        ("consequence", "consequence"),
    ] {
        if let Some(x) = field(k) {
            s.push_str(&format!(
                "\n  {label}: {}",
                x.as_str().map_or_else(|| x.to_string(), str::to_owned)
            ));
        }
    }
    if verdict != "clean" && verdict != "unreadable" && v["snapshot"] != true {
        match field("resync_offset") {
            Some(x) => s.push_str(&format!("\n  valid records resume at byte offset {x} (resync)")),
            None => s.push_str("\n  no valid record of this segment found after it"),
        }
    }
    if let (Some(file), Some(off)) = (field("file"), field("offset")) {
        if let Some(bytes) = file.as_str().and_then(|f| src.bytes_of(std::path::Path::new(f))) {
            let off = off.as_u64().unwrap_or(0);
            let (start, win) = hex_window(bytes, off);
            if !win.is_empty() {
                s.push_str(&format!(
                    "\n  bytes around offset {off} ({off:#x}; the line marked > holds it):\n{}",
                    hexdump(start, win, off)
                ));
            }
        }
    }
    s
}
