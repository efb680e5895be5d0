//! Damage that is not a torn tail must make `open` refuse with `Error::Corruption` naming the
//! file, the byte offset and the kind of damage, and must leave every file as it was.
//!
//! A template store gets three segments of records (three opens). Each test copies it, damages
//! the copy in one way (a flipped byte in the length, checksum, LSN or body of an early record,
//! a damaged non-last segment, a missing first or middle segment, a segment of another store or
//! of an older epoch after a newer one, a record removed so the LSNs skip, a missing or damaged
//! `STORE` file), opens it and asserts the exact error. Every refused open is bracketed by a
//! digest of all files in the store directory, which must not change. A seeded fuzz loop
//! finally sprays random bytes over the log: the open may succeed (cutting a torn tail) or
//! refuse, but it must never panic.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{copy_dir, dir_digest, open, records, segments, tmp, Rng};
use walden::format::{CorruptionKind, FrameError};
use walden::{Error, Store};

const PER_SEGMENT: usize = 6;

/// Three segments, each with PER_SEGMENT puts of distinct keys.
fn template(dir: &Path) {
    for seg in 0..3 {
        let s = open(dir);
        for i in 0..PER_SEGMENT {
            s.put("c", &format!("s{seg}k{i}"), &format!("value {seg}/{i}")).unwrap();
        }
        s.close().unwrap();
    }
    assert_eq!(segments(dir).len(), 3);
}

/// A fresh copy of the template in its own directory.
struct Case {
    _t: tempfile::TempDir,
    dir: PathBuf,
}

fn case() -> Case {
    let t = tmp();
    let dir = t.path().join("store");
    template(&dir);
    Case { _t: t, dir }
}

/// Opens `dir`, expecting a refusal; checks that no file changed and returns the error.
fn refused(dir: &Path) -> Error {
    let before = dir_digest(dir);
    let err = match Store::open(dir) {
        Ok(_) => panic!("damaged store opened"),
        Err(e) => e,
    };
    assert_eq!(dir_digest(dir), before, "a refused open changed files ({err:?})");
    // Refusing again gives the same answer (nothing was half-repaired).
    let again = Store::open(dir).expect_err("second open refused too");
    assert_eq!(format!("{again:?}"), format!("{err:?}"));
    err
}

fn flip(path: &Path, at: u64, mask: u8) {
    let mut b = fs::read(path).unwrap();
    b[at as usize] ^= mask;
    fs::write(path, b).unwrap();
}

/// The frame error of a record refused as damage in synced data (every record of these stores
/// was acknowledged, so a later record or segment proves it durable).
fn proven_damage(kind: CorruptionKind) -> FrameError {
    match kind {
        CorruptionKind::DurableRecordDamaged { error, .. } => error,
        other => panic!("expected damage proven durable, got {other:?}"),
    }
}

fn expect_corruption(err: Error) -> (PathBuf, u64, Option<u64>, CorruptionKind) {
    match err {
        Error::Corruption { file, offset, last_good_lsn, kind } => {
            (file, offset, last_good_lsn, kind)
        }
        other => panic!("expected Corruption, got {other:?}"),
    }
}

#[test]
fn flipped_byte_in_an_early_record_is_corruption_at_its_offset() {
    // (byte within the record, xor mask, what the reader must say)
    let positions: [(u64, u8, &str); 9] = [
        (0, 0x01, "length low byte"),
        (3, 0x80, "length high byte"),
        (4, 0x10, "crc"),
        (8, 0x01, "lsn"),
        (16, 0x40, "timestamp"),
        (24, 0x02, "kind"),
        (30, 0x08, "durable epoch"),
        (36, 0x01, "durable lsn"),
        (48, 0x20, "body"),
    ];
    for (pos, mask, what) in positions {
        let c = case();
        // Record 1 of the last segment: valid records follow it in the same file.
        let seg = segments(&c.dir)[2].clone();
        let recs = records(&seg);
        let rec = recs[1];
        flip(&seg, rec.offset + pos, mask);
        let (file, offset, last_good, kind) = expect_corruption(refused(&c.dir));
        assert_eq!((file, offset), (seg.clone(), rec.offset), "{what}");
        assert_eq!(last_good, Some(recs[0].lsn), "{what}");
        match (what, proven_damage(kind)) {
            ("length high byte", FrameError::TooLong { .. }) => {}
            ("length high byte", k) => panic!("{what}: {k:?}"),
            (_, FrameError::Checksum { .. }) => {}
            (_, k) => panic!("{what}: expected a checksum error, got {k:?}"),
        }
    }
}

#[test]
fn damage_at_the_end_of_a_segment_that_is_not_the_last_is_corruption() {
    let c = case();
    let seg = segments(&c.dir)[0].clone();
    let recs = records(&seg);
    let last = recs[PER_SEGMENT - 1];
    flip(&seg, last.offset + last.len - 1, 0xff);
    let (file, offset, last_good, kind) = expect_corruption(refused(&c.dir));
    assert_eq!((file, offset, last_good), (seg, last.offset, Some(recs[PER_SEGMENT - 2].lsn)));
    assert!(matches!(proven_damage(kind), FrameError::Checksum { .. }));

    // Even a truncated record there is not an unsynced tail: the next segment was created after
    // it was durable.
    let c = case();
    let seg = segments(&c.dir)[1].clone();
    let last = *records(&seg).last().unwrap();
    common::truncate_file(&seg, last.offset + 5);
    let (file, offset, _, kind) = expect_corruption(refused(&c.dir));
    assert_eq!((file, offset), (seg, last.offset));
    assert!(matches!(proven_damage(kind), FrameError::Truncated { .. }));
}

#[test]
fn damaged_segment_header_is_corruption_at_offset_zero() {
    for (seg_index, at) in [(0usize, 0u64), (1, 30), (2, 63)] {
        let c = case();
        let seg = segments(&c.dir)[seg_index].clone();
        flip(&seg, at, 0x04);
        let (file, offset, _, kind) = expect_corruption(refused(&c.dir));
        assert_eq!((file, offset), (seg, 0), "segment {seg_index} byte {at}");
        assert!(
            matches!(kind, CorruptionKind::BadMagic | CorruptionKind::HeaderChecksum { .. }),
            "segment {seg_index} byte {at}: {kind:?}"
        );
    }
}

#[test]
fn missing_middle_segment_is_refused() {
    let c = case();
    let segs = segments(&c.dir);
    fs::remove_file(&segs[1]).unwrap();
    let (file, offset, last_good, kind) = expect_corruption(refused(&c.dir));
    assert_eq!((file, offset), (segs[2].clone(), 0));
    assert_eq!(last_good, Some(PER_SEGMENT as u64));
    assert_eq!(kind, CorruptionKind::MissingSegment { segment_no: 2 });
}

#[test]
fn missing_first_segment_is_refused() {
    let c = case();
    let segs = segments(&c.dir);
    fs::remove_file(&segs[0]).unwrap();
    let (file, offset, _, kind) = expect_corruption(refused(&c.dir));
    assert_eq!((file, offset), (segs[1].clone(), 0));
    assert_eq!(kind, CorruptionKind::LsnGap { expected: 1, found: PER_SEGMENT as u64 + 1 });
}

#[test]
fn segment_of_another_store_is_refused() {
    let c = case();
    let other = case();
    // Same file name, same segment number: only the store id differs.
    let mine = segments(&c.dir)[0].clone();
    fs::copy(&segments(&other.dir)[0], &mine).unwrap();
    let (file, offset, _, kind) = expect_corruption(refused(&c.dir));
    assert_eq!((file, offset, kind), (mine, 0, CorruptionKind::ForeignStore));

    // Appended as the next segment number, its header names another number.
    let c = case();
    let next = c.dir.join("wal").join(walden::format::segment_file_name(4));
    fs::copy(&segments(&other.dir)[0], &next).unwrap();
    let (file, offset, _, kind) = expect_corruption(refused(&c.dir));
    assert_eq!(
        (file, offset, kind),
        (next, 0, CorruptionKind::SegmentNumberMismatch { expected: 4, found: 1 })
    );
}

#[test]
fn removed_record_is_an_lsn_gap() {
    let c = case();
    let seg = segments(&c.dir)[1].clone();
    let recs = records(&seg);
    let gone = recs[2];
    let mut b = fs::read(&seg).unwrap();
    b.drain(gone.offset as usize..(gone.offset + gone.len) as usize);
    fs::write(&seg, b).unwrap();
    let (file, offset, last_good, kind) = expect_corruption(refused(&c.dir));
    assert_eq!((file, offset, last_good), (seg, gone.offset, Some(gone.lsn - 1)));
    assert_eq!(kind, CorruptionKind::LsnGap { expected: gone.lsn, found: gone.lsn + 1 });
}

#[test]
fn last_record_of_a_middle_segment_removed_is_an_lsn_gap_at_the_next_header() {
    let c = case();
    let segs = segments(&c.dir);
    let last = *records(&segs[1]).last().unwrap();
    common::truncate_file(&segs[1], last.offset);
    let (file, offset, _, kind) = expect_corruption(refused(&c.dir));
    assert_eq!((file, offset), (segs[2].clone(), 0));
    assert_eq!(kind, CorruptionKind::LsnGap { expected: last.lsn, found: last.lsn + 1 });
}

#[test]
fn missing_identity_with_segments_present_is_refused() {
    let c = case();
    fs::remove_file(c.dir.join("STORE")).unwrap();
    let (file, offset, _, kind) = expect_corruption(refused(&c.dir));
    assert_eq!((file, offset, kind), (c.dir.join("STORE"), 0, CorruptionKind::MissingIdentity));
}

#[test]
fn damaged_identity_file_is_refused() {
    type Damage = fn(&Path);
    type Expected = fn(&CorruptionKind) -> bool;
    let damages: [(&str, Damage, Expected); 4] = [
        (
            "flipped id byte",
            |p| flip(p, 20, 1),
            |k| matches!(k, CorruptionKind::HeaderChecksum { .. }),
        ),
        ("flipped magic", |p| flip(p, 0, 1), |k| matches!(k, CorruptionKind::BadMagic)),
        (
            "truncated",
            |p| fs::write(p, &fs::read(p).unwrap()[..10]).unwrap(),
            |k| matches!(k, CorruptionKind::ShortHeader),
        ),
        ("emptied", |p| fs::write(p, b"").unwrap(), |k| matches!(k, CorruptionKind::Empty)),
    ];
    for (what, damage, expected) in damages {
        let c = case();
        let path = c.dir.join("STORE");
        damage(&path);
        let (file, offset, _, kind) = expect_corruption(refused(&c.dir));
        assert_eq!((file, offset), (path, 0), "{what}");
        assert!(expected(&kind), "{what}: {kind:?}");
    }
}

#[test]
fn identity_of_another_store_is_refused() {
    let c = case();
    let other = case();
    fs::copy(other.dir.join("STORE"), c.dir.join("STORE")).unwrap();
    let (file, offset, _, kind) = expect_corruption(refused(&c.dir));
    assert_eq!(
        (file, offset, kind),
        (segments(&c.dir)[0].clone(), 0, CorruptionKind::ForeignStore)
    );
}

/// Random bytes over random places of the log: any outcome but a panic is acceptable, and a
/// refusal must leave the files alone.
#[test]
fn random_damage_never_panics() {
    let t = tmp();
    let tpl = t.path().join("template");
    template(&tpl);
    let seg_names: Vec<_> =
        segments(&tpl).iter().map(|p| p.file_name().unwrap().to_owned()).collect();
    let mut rng = Rng::new(0xbad5eed);
    let (mut opened, mut refused_count) = (0, 0);
    for i in 0..150 {
        let dir = t.path().join(format!("fuzz-{i}"));
        copy_dir(&tpl, &dir);
        let seg = dir.join("wal").join(&seg_names[rng.range(0, seg_names.len() as u64) as usize]);
        let mut b = fs::read(&seg).unwrap();
        for _ in 0..rng.range(1, 4) {
            let at = rng.range(0, b.len() as u64) as usize;
            b[at] = rng.next_u64() as u8;
        }
        if rng.range(0, 3) == 0 {
            let len = rng.range(0, b.len() as u64) as usize;
            b.truncate(len);
        }
        fs::write(&seg, b).unwrap();
        let before = dir_digest(&dir);
        match Store::open(&dir) {
            Ok(s) => {
                opened += 1;
                drop(s);
            }
            Err(e) => {
                assert!(matches!(e, Error::Corruption { .. }), "case {i}: {e:?}");
                assert_eq!(dir_digest(&dir), before, "case {i}: refused open changed files");
                refused_count += 1;
            }
        }
        fs::remove_dir_all(&dir).unwrap();
    }
    assert!(refused_count > 0 && opened + refused_count == 150);
}

/// Rewrites a segment file as if another open (epoch) had written it: header and every record
/// re-framed with that epoch's checksum salt, so only the epoch order is wrong.
fn rewrite_with_epoch(seg: &Path, epoch: u64) {
    use walden::format::{
        decode_frame, encode_frame, RecordKind, SegmentHeader, SEGMENT_HEADER_LEN,
    };
    let bytes = fs::read(seg).unwrap();
    let old = SegmentHeader::decode(&bytes).unwrap();
    let new = SegmentHeader { epoch, ..old };
    let mut out = new.encode().to_vec();
    let mut at = SEGMENT_HEADER_LEN;
    while at < bytes.len() {
        let f = decode_frame(&bytes[at..], old.salt()).unwrap();
        let kind = RecordKind::from_u8(f.kind).unwrap();
        encode_frame(&mut out, new.salt(), f.lsn, f.timestamp_unix_ns, kind, f.body);
        at += f.len;
    }
    fs::write(seg, out).unwrap();
}

#[test]
fn segment_from_an_older_epoch_after_a_newer_one_is_refused() {
    let c = case();
    let segs = segments(&c.dir);
    // Sanity: the rewrite itself yields a readable store when the order is kept.
    rewrite_with_epoch(&segs[2], 7);
    assert_eq!(open(&c.dir).stats().documents, 3 * PER_SEGMENT as u64);
    let c = case();
    let segs = segments(&c.dir);
    rewrite_with_epoch(&segs[2], 1);
    let (file, offset, _, kind) = expect_corruption(refused(&c.dir));
    assert_eq!((file, offset), (segs[2].clone(), 0));
    assert_eq!(kind, CorruptionKind::EpochRegression { previous: 2, found: 1 });
}
