//! A store written in format version 1 keeps opening, with every document, under the current
//! format; damage in it is judged by what version 1 can prove.
//!
//! The fixture (`tests/fixtures/v1-store`, described in `tests/fixtures/README.md`) is copied
//! to a temporary directory for every test.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::{copy_dir, records, segments, tmp};
use serde_json::{json, Value};
use walden::{BreakerConfig, CircuitState, Error, Store};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store")
}

fn expected() -> BTreeMap<String, Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-store.expected.json");
    serde_json::from_slice(&fs::read(path).expect("read the expected documents")).expect("json")
}

fn docs(s: &Store) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for c in s.collections().expect("collections") {
        for item in s.scan::<Value>(&c).expect("scan") {
            let (k, v) = item.expect("decode");
            out.insert(format!("{c}/{k}"), json!({"version": v.version, "value": v.value}));
        }
    }
    out
}

fn copy_of_fixture(t: &tempfile::TempDir) -> PathBuf {
    let dir = t.path().join("store");
    copy_dir(&fixture(), &dir);
    dir
}

#[test]
fn a_version_1_store_opens_with_every_document_and_its_limiter_and_breaker_state() {
    let t = tmp();
    let dir = copy_of_fixture(&t);
    let s = Store::open(&dir).expect("a version-1 store opens");
    assert_eq!(docs(&s), expected());
    assert_eq!(s.stats().recovery.snapshot_lsn, Some(36));
    let b = s.breaker("payments", BreakerConfig::default()).expect("breaker");
    assert_eq!(b.state(), CircuitState::ForcedOpen, "the breaker's transition was replayed");
    s.close().unwrap();
}

#[test]
fn a_version_1_store_takes_new_writes_and_reopens_with_old_and_new() {
    let t = tmp();
    let dir = copy_of_fixture(&t);
    let s = Store::open(&dir).unwrap();
    s.put("users", "new", &"written by this build").unwrap();
    s.compact().unwrap();
    s.put("users", "after", &"compaction").unwrap();
    s.close().unwrap();
    let s = Store::open(&dir).unwrap();
    let mut want = expected();
    // The fixture's log deleted users at version 1: new keys start above that floor (2), and
    // the floor survives the compaction in between.
    want.insert("users/new".into(), json!({"version": 2, "value": "written by this build"}));
    want.insert("users/after".into(), json!({"version": 2, "value": "compaction"}));
    assert_eq!(docs(&s), want);
}

#[test]
fn a_version_1_log_cut_inside_its_last_record_opens_without_that_record() {
    let t = tmp();
    let dir = copy_of_fixture(&t);
    let last = segments(&dir).pop().expect("a segment");
    let rec = records(&last).pop().expect("a record");
    common::truncate_file(&last, rec.offset + 5);
    let s = Store::open(&dir).expect("an unsynced tail of a version-1 log is cut");
    let d = docs(&s);
    assert_eq!(d["users/u00"]["version"], 2, "the second epoch's update is gone");
    assert_eq!(d.len(), expected().len());
}

#[test]
fn damage_in_a_version_1_segment_that_a_later_segment_of_its_epoch_follows_is_refused() {
    let t = tmp();
    let dir = copy_of_fixture(&t);
    let first = segments(&dir).remove(0);
    let rec = records(&first)[2];
    let mut bytes = fs::read(&first).unwrap();
    bytes[rec.offset as usize + rec.len as usize - 1] ^= 0x40;
    fs::write(&first, bytes).unwrap();
    match Store::open(&dir) {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!((file, offset), (first, rec.offset));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
