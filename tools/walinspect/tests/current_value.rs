//! Read-only `get` and `scan` of the current value (snapshot + log), `dump --oneline`, and
//! `stats`/`dump` saying where the live documents of a compacted store are.

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

fn cmd(args: &[&str], path: &Path) -> Run {
    let mut v: Vec<std::ffi::OsString> = vec![args[0].into(), path.into()];
    v.extend(args[1..].iter().map(Into::into));
    run(&v)
}

/// 10 documents compacted into a snapshot at LSN 10, then k000 overwritten, k001 deleted and
/// `late` added in the log.
fn compacted_store(dir: &Path) {
    build_store(dir, 2, 5);
    let s = open_store(dir);
    s.compact().unwrap().expect("a snapshot is written");
    s.put("docs", &key(0), &json!("after the snapshot")).unwrap();
    s.delete("docs", &key(1)).unwrap();
    s.put("docs", "late", &json!({"late": true})).unwrap();
    s.close().unwrap();
}

#[test]
fn get_reads_the_current_value_through_snapshot_and_log() {
    let dir = tempfile::tempdir().unwrap();
    compacted_store(dir.path());
    let before = checksums(dir.path());
    // From the snapshot (its log record was compacted away).
    let r = cmd(&["get", "docs", &key(7)], dir.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(serde_json::from_str::<Value>(&r.stdout).unwrap(), value(7, 1));
    let j = cmd(&["get", "docs", &key(7), "--json"], dir.path());
    let d = &j.of_type("document")[0];
    assert_eq!((d["source"].as_str(), d["version"].as_u64()), (Some("snapshot"), Some(1)));
    // Overwritten in the log after the snapshot.
    let j = cmd(&["get", "docs", &key(0), "--json"], dir.path());
    let d = &j.of_type("document")[0];
    assert_eq!(d["value"], json!("after the snapshot"));
    assert_eq!((d["source"].as_str(), d["version"].as_u64()), (Some("log"), Some(2)));
    // Deleted in the log, and never written: not found, exit 1.
    for k in [key(1), "nobody".to_owned()] {
        let r = cmd(&["get", "docs", &k], dir.path());
        assert_eq!(r.code, 1, "{k}: {}", r.stdout);
        assert!(r.stdout.is_empty() && r.stderr.contains("not found"), "{}", r.stderr);
    }
    let j = cmd(&["get", "docs", &key(1), "--json"], dir.path());
    assert_eq!((j.code, j.of_type("not_found").len()), (1, 1));
    assert_eq!(checksums(dir.path()), before, "get changed the store");
}

#[test]
fn scan_lists_the_current_documents_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    compacted_store(dir.path());
    let j = cmd(&["scan", "docs", "--json"], dir.path());
    assert_eq!(j.code, 0, "{}", j.stderr);
    let keys: Vec<String> =
        j.of_type("document").iter().map(|d| d["key"].as_str().unwrap().to_owned()).collect();
    let mut expect: Vec<String> = (0..10).filter(|&i| i != 1).map(key).collect();
    expect.push("late".into());
    assert_eq!(keys, expect);
    // The same set the store itself returns.
    let s = open_store(dir.path());
    assert_eq!(s.count("docs").unwrap(), keys.len());
    s.close().unwrap();
    let j =
        cmd(&["scan", "--json", "--prefix", "k00", "--from", "k005", "--limit", "3"], dir.path());
    let docs = j.of_type("document");
    let keys: Vec<&str> = docs.iter().map(|d| d["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["k005", "k006", "k007"]);
    let text = cmd(&["scan", "docs", "--prefix", "la"], dir.path());
    // v2: "late" was created after k001 (at v1) was deleted, so above the collection's floor.
    assert_eq!(text.stdout.trim_end(), r#"docs/late v2 {"late":true}"#, "{}", text.stdout);
}

#[test]
fn dump_oneline_prints_one_line_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_store(dir.path());
    s.put("users", "ada", &json!({"name": "Ada", "bio": "line1\nline2"})).unwrap();
    let mut b = walden::Batch::new();
    b.put("users", "alan", &json!({"name": "Alan"}));
    b.delete("users", "ada");
    s.commit(b).unwrap();
    assert!(
        s.rate_limiter("api", walden::Quota::per_second(10)).unwrap().check("u1").unwrap().allowed
    );
    s.close().unwrap();
    let r = cmd(&["dump", "--oneline"], dir.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(lines[0].starts_with("lsn 1 "), "{}", lines[0]);
    assert!(
        lines[0].ends_with(r#"put users/ada v1 {"bio":"line1\nline2","name":"Ada"}"#),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].ends_with(r#"put users/alan v1 {"name":"Alan"} | delete users/ada v1"#),
        "{}",
        lines[1]
    );
    for part in [" ratelimit ", " key=u1 ", " limiter=api ", " tat=2"] {
        assert!(lines[2].contains(part), "{part}: {}", lines[2]);
    }
    assert!(!lines[2].contains("unix_ns"), "{}", lines[2]);
}

#[test]
fn stats_and_dump_say_where_the_live_documents_of_a_compacted_store_are() {
    let dir = tempfile::tempdir().unwrap();
    compacted_store(dir.path());
    let st = cmd(&["stats", "--json"], dir.path());
    assert_eq!(st.code, 0, "{}", st.stderr);
    let live = &st.of_type("live_documents")[0];
    assert_eq!((live["documents"].as_u64(), live["in_snapshot"].as_u64()), (Some(10), Some(8)));
    assert_eq!(live["in_log"], 2);
    assert!(live["snapshot"].as_str().unwrap().ends_with(".snap"));
    let coll = &st.of_type("collection")[0];
    assert_eq!((coll["documents"].as_u64(), coll["in_snapshot"].as_u64()), (Some(10), Some(8)));
    let text = cmd(&["stats"], dir.path());
    assert!(text.stdout.contains("8 in snapshot"), "{}", text.stdout);
    let dump = cmd(&["dump"], dir.path());
    assert!(dump.stderr.contains("8 in snapshot"), "{}", dump.stderr);
    let dj = cmd(&["dump", "--json"], dir.path());
    assert_eq!(dj.of_type("live_documents")[0]["in_snapshot"], 8);
    assert_eq!(dj.of_type("record").len(), 3);
}
