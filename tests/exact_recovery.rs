//! Exact recovery (format version 2): damage is judged by proof of durability, not by position.
//!
//! Each test builds a real store, damages or rearranges its files the way a power cut or bit rot
//! would, and checks the one decision `docs/FORMAT.md` gives for it: an unsynced tail is cut
//! (its bytes kept, a `warn` event emitted) and the store opens; damage that a later record or
//! segment proves durable is refused with that proof; after a clean close every damage is
//! refused; segments a snapshot covers never stop an open.

mod common;

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{copy_dir, records, segments, store_dir, tmp};
use walden::format::{CorruptionKind, DurabilityProof};
use walden::{Error, Options, Store};

/// Collects the events the library emits (level and formatted fields); installed per test
/// thread with `tracing::subscriber::with_default`, never globally.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(tracing::Level, String)>>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut f = Fields(String::new());
        event.record(&mut f);
        self.0.lock().unwrap().push((*event.metadata().level(), f.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

impl Capture {
    fn warnings(&self) -> Vec<String> {
        let events = self.0.lock().unwrap();
        events.iter().filter(|(l, _)| *l == tracing::Level::WARN).map(|(_, s)| s.clone()).collect()
    }
}

fn options() -> Options {
    Options { auto_compact: false, ..Options::default() }
}

/// A store with `n` documents, each an acknowledged (fsynced) put. With `close`, closed
/// cleanly; otherwise its files are copied while it is still open, as `kill -9` leaves them.
fn store_with(dir: &Path, n: usize, close: bool) {
    let s = Store::open_with(dir, options()).unwrap();
    for i in 0..n {
        s.put("c", &format!("k{i}"), &format!("value {i}")).unwrap();
    }
    if close {
        s.close().unwrap();
    } else {
        let t = dir.with_extension("killed");
        copy_dir(dir, &t);
        drop(s);
        fs::remove_dir_all(dir).unwrap();
        fs::rename(&t, dir).unwrap();
    }
}

fn flip(path: &Path, at: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at as usize] ^= 0x20;
    fs::write(path, bytes).unwrap();
}

fn refused(dir: &Path) -> (std::path::PathBuf, u64, CorruptionKind) {
    match Store::open_with(dir, options()) {
        Err(Error::Corruption { file, offset, kind, .. }) => (file, offset, kind),
        Err(e) => panic!("expected corruption, got {e}"),
        Ok(_) => panic!("expected a refusal, the store opened"),
    }
}

/// The LSN and proof of damage refused as damage in synced data.
fn proven(kind: CorruptionKind) -> (u64, DurabilityProof) {
    match kind {
        CorruptionKind::DurableRecordDamaged { lsn, proof, .. } => (lsn, *proof),
        other => panic!("expected damage proven durable, got {other:?}"),
    }
}

#[test]
fn a_flipped_byte_in_the_last_record_of_a_cleanly_closed_store_is_refused_with_the_close_marker_as_proof(
) {
    let t = tmp();
    let dir = store_dir(&t);
    store_with(&dir, 5, true);
    let seg = segments(&dir).pop().unwrap();
    let last = *records(&seg).last().unwrap();
    flip(&seg, last.offset + last.len - 1);
    let (file, offset, kind) = refused(&dir);
    assert_eq!((file, offset), (seg.clone(), last.offset));
    let (lsn, proof) = proven(kind);
    assert_eq!(lsn, last.lsn);
    match proof {
        DurabilityProof::LaterRecord { lsn: by, .. } => {
            assert_eq!(by, last.lsn + 1, "the close marker carries the next LSN");
        }
        other => panic!("expected a proof by the close marker, got {other:?}"),
    }
}

#[test]
fn damage_that_a_later_record_proves_durable_is_refused_naming_that_record() {
    let t = tmp();
    let dir = store_dir(&t);
    store_with(&dir, 6, false);
    let seg = segments(&dir).pop().unwrap();
    let recs = records(&seg);
    flip(&seg, recs[2].offset + recs[2].len - 1);
    let (file, offset, kind) = refused(&dir);
    assert_eq!((file, offset), (seg.clone(), recs[2].offset));
    match proven(kind).1 {
        DurabilityProof::LaterRecord { offset: at, watermark, .. } => {
            assert_eq!(at, recs[3].offset, "the next record already names it durable");
            assert!(watermark.lsn >= recs[2].lsn);
        }
        other => panic!("expected a proof by a later record, got {other:?}"),
    }
    let message = Store::open_with(&dir, options()).unwrap_err().to_string();
    assert!(message.contains("was written after"), "{message}");
}

#[test]
fn the_last_record_of_a_killed_store_cut_short_is_an_unsynced_tail_with_a_warning() {
    let t = tmp();
    let dir = store_dir(&t);
    store_with(&dir, 4, false);
    let seg = segments(&dir).pop().unwrap();
    let last = *records(&seg).last().unwrap();
    common::truncate_file(&seg, last.offset + 7);
    let capture = Capture::default();
    let s = tracing::subscriber::with_default(capture.clone(), || {
        Store::open_with(&dir, options()).expect("an unsynced tail is cut, not refused")
    });
    assert_eq!(s.count("c").unwrap(), 3);
    let torn = s.stats().recovery.torn_tail.expect("the cut is reported");
    assert_eq!((torn.path, torn.offset), (seg.clone(), last.offset));
    let warnings = capture.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    let name = seg.file_name().unwrap().to_string_lossy().into_owned();
    assert!(w.contains(&name) && w.contains(&last.offset.to_string()), "{w}");
    assert!(w.contains("no later record"), "the reason is given: {w}");
}

#[test]
fn a_clean_open_emits_no_warning() {
    let t = tmp();
    let dir = store_dir(&t);
    store_with(&dir, 3, true);
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        Store::open_with(&dir, options()).unwrap().close().unwrap();
    });
    assert!(capture.warnings().is_empty(), "{:?}", capture.warnings());
}

#[test]
fn segments_a_snapshot_covers_are_ignored_and_removed_at_open() {
    let t = tmp();
    let dir = store_dir(&t);
    let opts = Options { segment_target_bytes: 256, ..options() };
    let s = Store::open_with(&dir, opts.clone()).unwrap();
    for i in 0..12 {
        s.put("c", &format!("k{i}"), &"v".repeat(100)).unwrap();
    }
    let before = segments(&dir);
    assert!(before.len() >= 4);
    let kept = t.path().join("kept");
    fs::create_dir_all(&kept).unwrap();
    for p in &before {
        fs::copy(p, kept.join(p.file_name().unwrap())).unwrap();
    }
    s.compact().unwrap().expect("a compaction");
    s.put("c", "after", &"compaction").unwrap();
    s.close().unwrap();
    // A power cut during the deletions may leave any subset behind: bring back every other one.
    for p in before.iter().skip(1).step_by(2) {
        fs::copy(kept.join(p.file_name().unwrap()), p).unwrap();
    }
    let s = Store::open_with(&dir, opts).expect("covered segments never stop an open");
    assert_eq!(s.count("c").unwrap(), 13);
    for p in before.iter().skip(1).step_by(2) {
        assert!(!p.exists(), "{} was removed", p.display());
    }
}

/// The reader's verdicts on hand-built segments: each record carries the watermark given (the
/// LSNs run from 1), so the proofs can be placed exactly.
mod reader {
    use std::path::Path;

    use walden::format::{
        encode_frame_with, CorruptionKind, DurabilityProof, RecordKind, SegmentHeader, Watermark,
    };
    use walden::wal::{scan_log, LogVerdict, SegmentInput};

    const HEADER: SegmentHeader =
        SegmentHeader { store_id: [9; 16], epoch: 1, segment_no: 1, first_lsn: 1 };

    fn push(bytes: &mut Vec<u8>, lsn: u64, kind: RecordKind, durable_lsn: u64) -> usize {
        let at = bytes.len();
        let w = Watermark { epoch: if durable_lsn == 0 { 0 } else { 1 }, lsn: durable_lsn };
        encode_frame_with(bytes, HEADER.salt(), lsn, lsn, kind, w, b"body");
        at
    }

    /// A segment whose record `i` (LSN `i + 1`) names `watermarks[i]` durable.
    fn segment(watermarks: &[u64]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = HEADER.encode().to_vec();
        let offsets = (0..watermarks.len())
            .map(|i| push(&mut bytes, i as u64 + 1, RecordKind::Batch, watermarks[i]))
            .collect();
        (bytes, offsets)
    }

    fn verdict(bytes: &[u8]) -> LogVerdict {
        let path = Path::new("wal/00000000000000000001.wal");
        let input = SegmentInput { segment_no: 1, path, bytes };
        scan_log(&[input], None, &mut |_| Ok(())).verdict
    }

    #[test]
    fn a_damaged_record_of_an_unsynced_group_is_a_tail_though_valid_records_follow_it() {
        // Records 4..6 are one group framed when 3 was durable; a power cut lost record 4's page.
        let (mut bytes, at) = segment(&[0, 1, 2, 3, 3, 3]);
        bytes[at[3] + 45] ^= 1; // its body
        match verdict(&bytes) {
            LogVerdict::TornTail(t) => assert_eq!(t.offset, at[3] as u64),
            other => panic!("expected an unsynced tail, got {other:?}"),
        }
    }

    #[test]
    fn the_same_damage_is_refused_once_a_later_record_names_it_durable() {
        let (mut bytes, at) = segment(&[0, 1, 2, 3, 3, 3, 6]);
        bytes[at[3] + 45] ^= 1; // its body
        let v = verdict(&bytes);
        let LogVerdict::Corrupt(c) = v else { panic!("expected a refusal, got {v:?}") };
        assert_eq!(c.offset, at[3] as u64);
        match c.kind {
            CorruptionKind::DurableRecordDamaged { lsn: 4, proof, .. } => match *proof {
                DurabilityProof::LaterRecord { offset, lsn: 7, watermark, .. } => {
                    assert_eq!((offset, watermark), (at[6] as u64, Watermark { epoch: 1, lsn: 6 }));
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_close_marker_proves_the_last_record_and_nothing_valid_may_follow_it() {
        let (mut bytes, at) = segment(&[0, 1]);
        let clean = bytes.clone();
        push(&mut bytes, 3, RecordKind::Close, 2);
        assert_eq!(verdict(&bytes), LogVerdict::Clean);
        let mut damaged = bytes.clone();
        damaged[at[1] + 45] ^= 1;
        assert!(matches!(
            verdict(&damaged),
            LogVerdict::Corrupt(c) if matches!(c.kind, CorruptionKind::DurableRecordDamaged { lsn: 2, .. })
        ));
        let mut garbage = bytes.clone();
        garbage.extend_from_slice(&[7; 20]);
        assert!(
            matches!(verdict(&garbage), LogVerdict::TornTail(t) if t.offset == bytes.len() as u64)
        );
        let mut after = bytes.clone();
        push(&mut after, 3, RecordKind::Batch, 2);
        assert!(matches!(
            verdict(&after),
            LogVerdict::Corrupt(c) if matches!(c.kind, CorruptionKind::AfterClose { .. })
        ));
        assert_ne!(clean, bytes);
    }
}
