//! `salvage` reads a damaged snapshot entry by entry (it is framed like the log) and exits
//! non-zero whenever anything was skipped. Stores are built with the walden API, compacted, and
//! damaged by byte edits.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};

fn salvage(src: &Path, out: &Path) -> Run {
    run(&[
        "salvage".as_ref(),
        src.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--json".as_ref(),
    ])
}

/// The snapshot's document entries as `dump` lists them (offset, key); other kinds (a
/// collection's version floor) have no key.
fn entries(snap: &Path) -> Vec<(u64, String)> {
    records(snap)
        .iter()
        .filter_map(|r| Some((r["offset"].as_u64()?, r["ops"][0]["key"].as_str()?.to_owned())))
        .collect()
}

/// 10 documents compacted into the store's only snapshot (the log it covered is deleted).
fn compacted(dir: &Path) -> PathBuf {
    build_store(dir, 2, 5);
    let s = open_store(dir);
    s.compact().unwrap().expect("a snapshot is written");
    s.close().unwrap();
    let snaps = snapshot_files(dir);
    assert_eq!(snaps.len(), 1);
    snaps[0].clone()
}

#[test]
fn salvage_keeps_every_entry_of_a_snapshot_with_one_flipped_byte_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let snap = compacted(dir.path());
    let list = entries(&snap);
    assert_eq!(list.len(), 10);
    let (offset, lost) = list[4].clone();
    flip_bit(&snap, offset + 40, 2);
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("s");
    let r = salvage(dir.path(), &out_dir);
    assert_eq!(r.code, 1, "something was skipped: {}{}", r.stdout, r.stderr);
    let skips = r.of_type("skip");
    assert_eq!(skips.len(), 1, "{}", r.stdout);
    assert_eq!(skips[0]["offset"].as_u64(), Some(offset));
    assert_eq!(skips[0]["len"].as_u64(), Some(list[5].0 - offset));
    let summary = &r.of_type("salvage")[0];
    assert_eq!(summary["complete"], false);
    assert_eq!(summary["documents_written"], 9);
    let store = open_store(&out_dir);
    assert_eq!(store.count("docs").unwrap(), 9);
    for (i, (_, k)) in list.iter().enumerate() {
        let got = store.get::<Value>("docs", k).unwrap().map(|d| d.value);
        assert_eq!(got, (*k != lost).then(|| value(i, i / 5)), "key {k}");
    }
    store.close().unwrap();
    // The text output says so too.
    let text_out = out.path().join("t");
    let t =
        run(&["salvage".as_ref(), dir.path().as_os_str(), "--out".as_ref(), text_out.as_os_str()]);
    assert_eq!(t.code, 1);
    assert!(t.stdout.contains("INCOMPLETE"), "{}", t.stdout);
}

#[test]
fn a_complete_salvage_exits_zero_and_a_torn_tail_is_a_skip() {
    let dir = tempfile::tempdir().unwrap();
    compacted(dir.path());
    let out = tempfile::tempdir().unwrap();
    let r = salvage(dir.path(), &out.path().join("a"));
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.of_type("salvage")[0]["complete"], true);
    // Bytes of an incomplete write at the end of the log are skipped: the exit code says so.
    let s = open_store(dir.path());
    s.put("docs", "late", &json!(1)).unwrap();
    s.close().unwrap();
    let newest = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .max()
        .unwrap();
    let mut b = std::fs::read(&newest).unwrap();
    b.extend_from_slice(&[9u8; 11]);
    std::fs::write(&newest, b).unwrap();
    let r = salvage(dir.path(), &out.path().join("b"));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(r.of_type("skip").len(), 1);
}

#[test]
fn an_older_snapshot_fills_only_the_damaged_range_of_a_newer_one() {
    // Snapshot A holds k000..k009; then k002 and k008 are deleted and snapshot B written.
    // B's entry for k005 is damaged: k005 comes back from A (it lies in B's damaged range),
    // the deleted k002 and k008 do not (B's clean entries around them speak for them).
    let dir = tempfile::tempdir().unwrap();
    let snap_a = compacted(dir.path());
    let keep_a = dir.path().join("a.keep");
    std::fs::copy(&snap_a, &keep_a).unwrap();
    let s = open_store(dir.path());
    s.delete("docs", &key(2)).unwrap();
    s.delete("docs", &key(8)).unwrap();
    s.put("docs", &key(5), &json!("newer")).unwrap();
    s.put("docs", &key(6), &json!("newer")).unwrap();
    s.compact().unwrap().expect("a second snapshot");
    s.close().unwrap();
    std::fs::rename(&keep_a, &snap_a).unwrap();
    let snaps = snapshot_files(dir.path());
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    let snap_b = snaps[1].clone();
    let list = entries(&snap_b);
    let at = list.iter().position(|(_, k)| *k == key(5)).unwrap();
    flip_bit(&snap_b, list[at].0 + 40, 0);
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("s");
    let r = salvage(dir.path(), &out_dir);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(r.of_type("snapshot_used").len(), 2, "{}", r.stdout);
    let store = open_store(&out_dir);
    let get = |k: &str| store.get::<Value>("docs", k).unwrap().map(|d| d.value);
    assert_eq!(get(&key(5)), Some(value(5, 1)), "the older value, the newer one is lost");
    assert_eq!(get(&key(6)), Some(json!("newer")));
    assert_eq!(get(&key(2)), None, "a delete the clean part of the newer snapshot shows");
    assert_eq!(get(&key(8)), None);
    assert_eq!(store.count("docs").unwrap(), 8);
    store.close().unwrap();
}

#[test]
fn a_snapshot_with_a_damaged_header_is_read_with_the_salt_from_store_and_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let snap = compacted(dir.path());
    flip_bit(&snap, 20, 5);
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("s");
    let r = salvage(dir.path(), &out_dir);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let skips = r.of_type("skip");
    assert_eq!(skips.len(), 1, "{}", r.stdout);
    assert_eq!((skips[0]["offset"].as_u64(), skips[0]["len"].as_u64()), (Some(0), Some(64)));
    let store = open_store(&out_dir);
    assert_eq!(
        store.count("docs").unwrap(),
        10,
        "every entry verifies with the salt STORE and the name give"
    );
    store.close().unwrap();
}
