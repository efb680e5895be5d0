//! The snapshot part of `salvage`: which snapshots to read, entry by entry, and which of their
//! entries (and of the log records they cover) may be used.
//!
//! An open loads the newest snapshot that verifies. Salvage also reads every newer damaged
//! snapshot with the library's lenient walk (`walk_snapshot_lenient`): the entries that verify
//! are kept, the damaged ranges are reported. Entries of a snapshot are written in (collection,
//! key) order, so a damaged range can only have held keys between the last good entry before it
//! and the first good entry after it. That is what makes the rest safe:
//!
//! - A snapshot is the whole truth at its LSN about every key outside its damaged ranges: a key
//!   it does not hold there was deleted. So an older value (an older snapshot's entry, a log
//!   record the snapshot covers) is used only for a key inside a damaged range of every newer
//!   snapshot read; it never brings back a deleted document from a clean part.
//! - Among the values allowed, the one with the highest LSN wins (each entry carries the LSN of
//!   the write that produced it).

use serde_json::json;
use walden::format::{
    decode_batch, snapshot_salt, BatchOpKind, RecordKind, SnapshotFooter, SnapshotHeader,
    SNAPSHOT_FOOTER_LEN, SNAPSHOT_HEADER_LEN,
};
use walden::snapshot::walk_snapshot_lenient;
use walden::wal::LenientItem;

use crate::out::Out;
use crate::render::kind_name;
use crate::salvage::{Docs, Skips};
use crate::snapshots::SnapCheck;
use crate::source::Source;

/// A document's place in the key order.
type DocKey = (String, String);
/// An open interval of keys (`None`: unbounded on that side).
type Interval = (Option<DocKey>, Option<DocKey>);
/// A document value read from a snapshot entry: key, LSN of its write, value (`None`: deleted).
type EntryValue = (DocKey, u64, Option<Vec<u8>>);

/// One snapshot salvage reads, and the key ranges it cannot speak for.
pub struct Authority {
    /// The snapshot's LSN.
    pub lsn: u64,
    /// Open key intervals `(after, before)` that damaged ranges may have held (`None`:
    /// unbounded). Empty for a snapshot that verified whole.
    damaged: Vec<Interval>,
}

impl Authority {
    fn speaks_for(&self, key: &DocKey) -> bool {
        !self.damaged.iter().any(|(lo, hi)| {
            lo.as_ref().is_none_or(|lo| lo < key) && hi.as_ref().is_none_or(|hi| key < hi)
        })
    }
}

/// The snapshots salvage read, newest first.
#[derive(Default)]
pub struct Base {
    /// Newest first; the last one verified whole (if any verified).
    pub read: Vec<Authority>,
}

impl Base {
    /// LSN of the newest snapshot read: the log is expected to continue after it.
    pub fn lsn(&self) -> Option<u64> {
        self.read.first().map(|a| a.lsn)
    }

    /// Whether the newest snapshot read verified whole (then it alone is the base, as for an
    /// open).
    pub fn whole(&self) -> bool {
        self.read.first().is_some_and(|a| a.damaged.is_empty())
    }

    /// Whether a value of `key` written at `lsn` may be used: no snapshot at or after `lsn`
    /// (other than the one it comes from, `from_snapshot`) holds the truth about `key`.
    pub fn allows(&self, key: &DocKey, lsn: u64, from_snapshot: Option<u64>) -> bool {
        let later = |a: &&Authority| match from_snapshot {
            Some(s) => a.lsn > s,
            None => a.lsn >= lsn,
        };
        !self.read.iter().filter(later).any(|a| a.speaks_for(key))
    }
}

/// What reading the snapshots found, for the summary.
#[derive(Default)]
pub struct BaseCounts {
    /// Snapshot entries applied.
    pub entries_used: u64,
    /// Snapshot entries of other kinds (rate limits, breakers), by kind: not replayed.
    pub not_replayed: Vec<String>,
}

/// Reads the snapshots newest first down to the newest one that verifies, applies the entries
/// allowed (see the module doc) to `docs`, and reports every damaged range to `skips`.
pub fn read_snapshots(
    out: &mut Out,
    src: &Source,
    checks: &[SnapCheck<'_>],
    docs: &mut Docs,
    skips: &mut Skips,
) -> std::io::Result<(Base, BaseCounts)> {
    let expected = src.identity.map(|i| i.store_id);
    let mut base = Base::default();
    let mut counts = BaseCounts::default();
    // Each snapshot's good entries, read before any is applied: an entry is allowed only by
    // the damaged ranges of every newer snapshot.
    let mut read: Vec<(u64, Vec<EntryValue>)> = Vec::new();
    for c in checks.iter().rev() {
        let whole = c.result.is_ok();
        let (lsn, entries, damaged) = if let Ok(h) = &c.result {
            let entries = c.entries.iter().map(|e| (e.offset, e.frame)).collect();
            (h.lsn, entries, Vec::new())
        } else {
            let Some((salt, lsn)) = salt_of(c, expected) else {
                let len = c.snap.bytes.len() as u64;
                let why = match &c.result {
                    Err((_, kind)) => format!("snapshot not used: {kind}"),
                    Ok(_) => "snapshot not used".to_owned(),
                };
                skips.skip(out, &c.snap.path, 0, len, why)?;
                continue;
            };
            let mut items = Vec::new();
            walk_snapshot_lenient(&c.snap.bytes, salt, lsn, &mut |i| items.push(i));
            let (entries, damaged) = lenient_entries(out, c, items, skips)?;
            (lsn, entries, damaged)
        };
        let mut good = Vec::new();
        for (_, frame) in entries {
            if RecordKind::from_u8(frame.kind) != Some(RecordKind::Batch) {
                counts.not_replayed.push(kind_name(frame.kind));
                continue;
            }
            for op in decode_batch(frame.body).unwrap_or_default() {
                let value = (op.kind == BatchOpKind::Put).then(|| op.value.to_vec());
                good.push(((op.collection.to_owned(), op.key.to_owned()), frame.lsn, value));
            }
        }
        base.read.push(Authority { lsn, damaged });
        read.push((lsn, good));
        let v = json!({ "type": "snapshot_used", "file": c.snap.path.display().to_string(),
            "lsn": lsn, "entries": read.last().map_or(0, |r| r.1.len()), "whole": whole });
        out.emit(&v, || {
            format!(
                "base: snapshot {} ({} entries{})",
                c.snap.path.display(),
                read.last().map_or(0, |r| r.1.len()),
                if whole { "" } else { " read past damage" }
            )
        })?;
        if whole {
            break;
        }
    }
    for (lsn, good) in read {
        for (key, entry_lsn, value) in good {
            if base.allows(&key, entry_lsn, Some(lsn)) {
                counts.entries_used += 1;
                crate::salvage::merge(docs, key, entry_lsn, value);
            }
        }
    }
    Ok((base, counts))
}

/// The salt and LSN to read a damaged snapshot with: from its header if that verifies (and is
/// this store's), else from `STORE` and the file name. `None`: it cannot be read at all.
fn salt_of(c: &SnapCheck<'_>, expected: Option<[u8; 16]>) -> Option<(u32, u64)> {
    match SnapshotHeader::decode(&c.snap.bytes) {
        Ok(h) if expected.is_some_and(|id| id != h.store_id) => None,
        Ok(h) if c.snap.name_lsn.is_some_and(|l| l != h.lsn) => None,
        Ok(h) => Some((h.salt(), h.lsn)),
        Err(_) => {
            let (id, lsn) = (expected?, c.snap.name_lsn?);
            Some((snapshot_salt(&id, lsn), lsn))
        }
    }
}

/// A frame of a snapshot, at its offset.
type Entry<'a> = (u64, walden::format::Frame<'a>);

/// The good entries of a lenient walk and the key intervals its damaged ranges may have held.
/// An entry whose body does not decode counts as damaged.
fn lenient_entries<'a>(
    out: &mut Out,
    c: &SnapCheck<'a>,
    items: Vec<LenientItem<'a>>,
    skips: &mut Skips,
) -> std::io::Result<(Vec<Entry<'a>>, Vec<Interval>)> {
    let bytes = &c.snap.bytes;
    if let Err(e) = SnapshotHeader::decode(bytes) {
        let len = bytes.len().min(SNAPSHOT_HEADER_LEN) as u64;
        skips.skip(out, &c.snap.path, 0, len, format!("snapshot header: {e}"))?;
    }
    // Without a footer that verifies, nothing says the file was not cut after its last good
    // entry: the keys after it are in doubt too.
    let footer_ok = bytes.len() >= SNAPSHOT_HEADER_LEN + SNAPSHOT_FOOTER_LEN
        && SnapshotFooter::decode(&bytes[bytes.len() - SNAPSHOT_FOOTER_LEN..]).is_ok();
    let mut entries = Vec::new();
    let mut damaged: Vec<Interval> = Vec::new();
    let mut last_key: Option<DocKey> = None;
    // A damaged range seen since the last good document entry: its interval is still open.
    let mut open = false;
    for item in items {
        let (offset, frame) = match item {
            LenientItem::Damaged { offset, len, error } => {
                skips.skip(out, &c.snap.path, offset, len, format!("snapshot entry: {error}"))?;
                open = true;
                continue;
            }
            LenientItem::Record { offset, frame } => (offset, frame),
        };
        if let Err(e) = crate::source::check_frame_body(&frame) {
            let len = frame.len as u64;
            skips.skip(out, &c.snap.path, offset, len, format!("snapshot entry: {e}"))?;
            open = true;
            continue;
        }
        if RecordKind::from_u8(frame.kind) == Some(RecordKind::Batch) {
            let first = decode_batch(frame.body).ok().and_then(|ops| {
                ops.first().map(|op| (op.collection.to_owned(), op.key.to_owned()))
            });
            if let Some(key) = first {
                if open {
                    damaged.push((last_key.clone(), Some(key.clone())));
                    open = false;
                }
                last_key = Some(key);
            }
        }
        entries.push((offset, frame));
    }
    if open || !footer_ok {
        damaged.push((last_key, None));
    }
    Ok((entries, damaged))
}
