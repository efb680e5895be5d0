//! Snapshots written by `Store::compact`: verified, listed, used by history and salvage.

mod common;

use common::*;
use serde_json::{json, Value};

fn verify_json(path: &std::path::Path) -> (i32, Value) {
    let r = run(&["verify".as_ref(), path.as_os_str(), "--json".as_ref()]);
    (r.code, r.ndjson().remove(0))
}

/// 10 documents, compacted into a snapshot at LSN 10 (its segments deleted), then k000
/// overwritten and `late` added in the log.
fn compacted_store(dir: &std::path::Path) {
    build_store(dir, 2, 5);
    let s = open_store(dir);
    s.compact().unwrap().expect("a snapshot is written");
    s.put("docs", &key(0), &json!("after the snapshot")).unwrap();
    s.put("docs", "late", &json!({"late": true})).unwrap();
    s.close().unwrap();
}

#[test]
fn a_compacted_store_verifies_and_lists_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    compacted_store(dir.path());
    assert_eq!(snapshot_files(dir.path()).len(), 1);
    let (code, v) = verify_json(dir.path());
    assert_eq!(code, 0, "{v}");
    assert_eq!((v["snapshots"].as_u64(), v["snapshot_lsn"].as_u64()), (Some(1), Some(10)));
    let r = run(&["summary".as_ref(), dir.path().as_os_str(), "--json".as_ref()]);
    let snap = &r.of_type("snapshot")[0];
    assert_eq!(
        (snap["ok"].as_bool(), snap["lsn"].as_u64(), snap["entries"].as_u64()),
        (Some(true), Some(10), Some(10))
    );
    assert_eq!(r.of_type("summary")[0]["snapshot_lsn"], 10);
    // A snapshot file on its own: verified, and `dump` lists its entries.
    let (code, v) = verify_json(&snapshot_files(dir.path())[0]);
    assert_eq!(code, 0, "{v}");
    let entries = records(&snapshot_files(dir.path())[0]);
    assert_eq!(entries.len(), 10);
    assert_eq!(entries[9]["ops"][0]["key"], key(9));
}

#[test]
fn history_and_salvage_read_through_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    compacted_store(dir.path());
    let r = run(&[
        "history".as_ref(),
        dir.path().as_os_str(),
        "docs".as_ref(),
        key(0).as_ref(),
        "--json".as_ref(),
    ]);
    let vs = r.of_type("version");
    let got: Vec<(&str, u64)> = vs
        .iter()
        .map(|v| (v["source"].as_str().unwrap(), v["version"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, [("snapshot", 1), ("log", 2)]);
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("s");
    let r = run(&[
        "salvage".as_ref(),
        dir.path().as_os_str(),
        "--out".as_ref(),
        out_dir.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.of_type("snapshot_used")[0]["lsn"], 10);
    assert!(r.of_type("skip").is_empty(), "{}", r.stdout);
    let store = open_store(&out_dir);
    assert_eq!(store.count("docs").unwrap(), 11);
    assert_eq!(
        store.get::<Value>("docs", &key(0)).unwrap().unwrap().value,
        json!("after the snapshot")
    );
    assert_eq!(store.get::<Value>("docs", &key(7)).unwrap().unwrap().value, value(7, 1));
    store.close().unwrap();
}

#[test]
fn a_damaged_snapshot_is_reported() {
    // The log still covers everything: a damaged snapshot is corruption (exit 2) at its offset.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    build_store(a.path(), 2, 5);
    copy_dir(a.path(), b.path());
    let s = open_store(b.path());
    s.compact().unwrap().unwrap();
    s.close().unwrap();
    let snap = snapshot_files(b.path()).remove(0);
    let copied = a.path().join(snap.file_name().unwrap());
    std::fs::copy(&snap, &copied).unwrap();
    assert_eq!(verify_json(a.path()).0, 0, "a valid snapshot the log also covers");
    flip_bit(&copied, 64 + 40, 0);
    let before = checksums(a.path());
    let (code, v) = verify_json(a.path());
    assert_eq!(code, 2, "{v}");
    assert_eq!((v["snapshot"].as_bool(), v["offset"].as_u64()), (Some(true), Some(64)));
    assert!(v["file"].as_str().unwrap().ends_with(".snap"));
    assert!(v["stored_crc"].is_string());
    assert_eq!(checksums(a.path()), before);
    assert_eq!(v["store_opens"], true);
    // Without the log it covered, the damaged snapshot is the cause (exit 2, its file, offset
    // and checksums); the LSN gap it leaves is named as the consequence.
    flip_bit(&snapshot_files(b.path())[0], 64 + 40, 0);
    let (code, v) = verify_json(b.path());
    assert_eq!(code, 2, "{v}");
    assert_eq!((v["verdict"].as_str(), v["snapshot"].as_bool()), (Some("corrupt"), Some(true)));
    assert_eq!(v["error_kind"], "bad_record", "{v}");
    assert!(v["file"].as_str().unwrap().ends_with(".snap"));
    assert_eq!(v["offset"], 64);
    assert!(v["stored_crc"].is_string());
    assert_eq!(v["store_opens"], false);
    assert_eq!((v["gap_expected"].as_u64(), v["gap_found"].as_u64()), (Some(1), Some(11)));
    let text = run(&["verify".as_ref(), b.path().as_os_str()]);
    assert_eq!(text.code, 2);
    let first = text.stdout.lines().find(|l| l.starts_with("verdict:")).unwrap();
    assert!(first.contains("snapshot is damaged"), "leads with the cause: {}", text.stdout);
    assert!(text.stdout.contains("records 1..10 are missing"), "{}", text.stdout);
}
