//! dump filters, history, stats, summary fields, follow, salvage, and read-only-ness.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

fn a(args: &[&str], path: &Path) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = vec![args[0].into(), path.into()];
    v.extend(args[1..].iter().map(Into::into));
    v
}

/// users/ada v1..v3, users/alan, users/bob (deleted), orders/o1.
fn mixed_store(dir: &Path) {
    let s = open_store(dir);
    s.put("users", "ada", &json!({"name": "Ada", "age": 36})).unwrap();
    s.put("users", "alan", &json!({"name": "Alan"})).unwrap();
    s.put("users", "bob", &json!({"name": "Bob"})).unwrap();
    s.put("orders", "o1", &json!({"total": 5})).unwrap();
    s.put("users", "ada", &json!({"name": "Ada L", "age": 36})).unwrap();
    s.delete("users", "bob").unwrap();
    s.put("users", "ada", &json!({"name": "Ada L", "city": "London"})).unwrap();
    s.close().unwrap();
}

#[test]
fn dump_filters_select_records_and_ops() {
    let dir = tempfile::tempdir().unwrap();
    mixed_store(dir.path());
    let lsns = |args: &[&str]| -> Vec<u64> {
        let r = run(&a(args, dir.path()));
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.of_type("record").iter().map(|v| v["lsn"].as_u64().unwrap()).collect()
    };
    assert_eq!(lsns(&["dump", "--json"]), [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(lsns(&["dump", "--json", "--collection", "orders"]), [4]);
    assert_eq!(lsns(&["dump", "--json", "--collection", "users", "--key", "ada"]), [1, 5, 7]);
    assert_eq!(lsns(&["dump", "--json", "--prefix", "al"]), [2]);
    assert_eq!(lsns(&["dump", "--json", "--from-lsn", "3", "--to-lsn", "5"]), [3, 4, 5]);
    assert_eq!(lsns(&["dump", "--json", "--limit", "2"]), [1, 2]);
    assert_eq!(lsns(&["dump", "--json", "--kind", "ratelimit"]), Vec::<u64>::new());
    assert_eq!(lsns(&["dump", "--json", "--since", "2500-01-01"]), Vec::<u64>::new());
    assert_eq!(lsns(&["dump", "--json", "--until", "2000-01-01T00:00:00Z"]), Vec::<u64>::new());
    let r = run(&a(&["dump", "--json", "--key", "bob"], dir.path()));
    let recs = r.of_type("record");
    assert_eq!(
        recs[1]["ops"][0],
        json!({"op": "delete", "collection": "users", "key": "bob", "version": 1})
    );
    for field in [
        "lsn",
        "time",
        "timestamp_unix_ns",
        "kind",
        "segment",
        "epoch",
        "file",
        "offset",
        "len",
        "ops",
    ] {
        assert!(recs[0].get(field).is_some(), "record lacks {field}");
    }
    let text = run(&a(&["dump", "--key", "ada", "--limit", "1"], dir.path()));
    assert!(
        text.stdout.contains("put users/ada v1") && text.stdout.contains("\"name\": \"Ada\""),
        "{}",
        text.stdout
    );
    let bad = run(&a(&["dump", "--since", "last tuesday"], dir.path()));
    assert_eq!(bad.code, 64);
}

#[test]
fn history_lists_every_version_and_diffs() {
    let dir = tempfile::tempdir().unwrap();
    mixed_store(dir.path());
    let r = run(&a(&["history", "users", "ada", "--json", "--diff"], dir.path()));
    let vs = r.of_type("version");
    let got: Vec<(u64, u64, &str)> = vs
        .iter()
        .map(|v| {
            (v["lsn"].as_u64().unwrap(), v["version"].as_u64().unwrap(), v["op"].as_str().unwrap())
        })
        .collect();
    assert_eq!(got, [(1, 1, "put"), (5, 2, "put"), (7, 3, "put")]);
    assert_eq!(vs[2]["value"], json!({"name": "Ada L", "city": "London"}));
    let diff = vs[2]["diff"].as_array().unwrap();
    assert!(diff.contains(&json!({"path": "/age", "old": 36, "new": null})));
    assert!(diff.contains(&json!({"path": "/city", "old": null, "new": "London"})));
    assert_eq!(vs[1]["diff"], json!([{"path": "/name", "old": "Ada", "new": "Ada L"}]));
    let bob = run(&a(&["history", "users", "bob", "--json"], dir.path())).of_type("version");
    assert_eq!((bob[1]["op"].as_str(), &bob[1]["value"]), (Some("delete"), &Value::Null));
    let text = run(&a(&["history", "users", "ada", "--diff"], dir.path()));
    assert!(text.stdout.contains("~ /name: \"Ada\" -> \"Ada L\""), "{}", text.stdout);
}

#[test]
fn stats_counts_live_and_dead() {
    let dir = tempfile::tempdir().unwrap();
    mixed_store(dir.path());
    let r = run(&a(&["stats", "--json"], dir.path()));
    assert_eq!(r.code, 0);
    let colls = r.of_type("collection");
    let users = colls.iter().find(|c| c["collection"] == "users").unwrap();
    assert_eq!(
        (users["puts"].as_u64(), users["deletes"].as_u64(), users["live_documents"].as_u64()),
        (Some(5), Some(1), Some(2))
    );
    assert!(users["dead_bytes"].as_u64().unwrap() > 0);
    let orders = colls.iter().find(|c| c["collection"] == "orders").unwrap();
    assert_eq!(orders["dead_bytes"], 0);
    let total = &r.of_type("stats")[0];
    assert_eq!(total["records"], 7);
    assert_eq!(
        total["reclaimable_bytes"].as_u64().unwrap(),
        total["record_bytes"].as_u64().unwrap() - total["live_bytes"].as_u64().unwrap()
    );
    assert_eq!(r.of_type("batch_sizes")[0]["ops"], 7);
    assert_eq!(r.of_type("largest_document").len(), 3);
    let sizes: u64 = r.of_type("record_sizes")[0]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(sizes, 7);
}

#[test]
fn summary_reports_segments_identity_and_verdict() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path(), 2, 3);
    let r = run(&a(&["summary", "--json"], dir.path()));
    let s = &r.of_type("summary")[0];
    for field in [
        "store_id",
        "created",
        "segments",
        "bytes",
        "epoch_min",
        "epoch_max",
        "first_lsn",
        "last_lsn",
        "records",
        "records_by_kind",
        "collections",
        "first_time",
        "last_time",
    ] {
        assert!(!s[field].is_null(), "summary lacks {field}: {s}");
    }
    assert_eq!(
        (s["segments"].as_u64(), s["records"].as_u64(), s["epoch_max"].as_u64()),
        (Some(2), Some(6), Some(2))
    );
    assert_eq!(s["records_by_kind"], json!({"batch": 6}));
    assert_eq!(r.of_type("segment").len(), 2);
    assert_eq!(r.of_type("verdict")[0]["verdict"], "clean");
    // summary is the default subcommand.
    let d = run(&[dir.path()]);
    assert!(d.code == 0 && d.stdout.contains("verdict: CLEAN"), "{}", d.stdout);
    // A torn tail cut by an open is listed.
    cut_file(&seg(dir.path(), 2), |n| n - 5);
    open_store(dir.path()).close().unwrap();
    let r = run(&a(&["summary", "--json"], dir.path()));
    assert_eq!(r.of_type("torn_file").len(), 1);
}

#[test]
fn follow_prints_records_a_live_store_appends() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path(), 1, 2);
    let store = open_store(dir.path());
    let args =
        ["follow", "--json", "--from-start", "--poll-ms", "20", "--exit-after-idle-ms", "5000"];
    let mut child = Command::new(env!("CARGO_BIN_EXE_walinspect"))
        .args(a(&args, dir.path()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut recs: Vec<Value> = Vec::new();
    // The two existing records come first: once they are out, follow has read the log, and
    // everything written from here on is new.
    for _ in 0..2 {
        recs.push(serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap());
    }
    for k in ["f1", "f2", "f3"] {
        store.put("tail", k, &json!({"k": k})).unwrap();
    }
    // A new open starts a new segment (and epoch): follow moves on to it.
    store.close().unwrap();
    let store = open_store(dir.path());
    store.put("tail", "f4", &json!({"k": "f4"})).unwrap();
    recs.extend(lines.map(|l| serde_json::from_str::<Value>(&l.unwrap()).unwrap()));
    assert!(child.wait().unwrap().success());
    let keys: Vec<&str> = recs.iter().map(|r| r["ops"][0]["key"].as_str().unwrap()).collect();
    assert_eq!(keys, [key(0).as_str(), key(1).as_str(), "f1", "f2", "f3", "f4"], "in log order");
    assert_eq!(recs[5]["segment"].as_u64(), Some(recs[4]["segment"].as_u64().unwrap() + 1));
    let r = run(&a(&["follow", "--json", "--from-start", "--max-records", "4"], dir.path()));
    assert_eq!(r.code, 0);
    assert_eq!(r.of_type("record").len(), 4);
    drop(store);
}

#[test]
fn salvage_by_default_keeps_only_the_prefix_before_a_hole() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path(), 2, 8);
    let recs = records(dir.path());
    let bad = &recs[4];
    flip_bit(&seg(dir.path(), 1), bad["offset"].as_u64().unwrap() + 30, 1);
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("recovered");
    let r = run(&a(&["salvage", "--json", "--out", out_dir.to_str().unwrap()], dir.path()));
    assert_eq!(r.code, 1, "records were left out: {}{}", r.stdout, r.stderr);
    let summary = &r.of_type("salvage")[0];
    assert_eq!(summary["hole_at_lsn"], bad["lsn"], "{}", r.stdout);
    assert_eq!(summary["dropped_after_hole"].as_u64(), Some(recs.len() as u64 - 5));
    assert_eq!(r.of_type("prefix_end").len(), 1);
    let store = open_store(&out_dir);
    assert_eq!(store.count("docs").unwrap(), 4, "only the records before the hole");
    for rec in &recs[..4] {
        let k = rec["ops"][0]["key"].as_str().unwrap();
        assert!(store.get::<Value>("docs", k).unwrap().is_some(), "{k} before the hole");
    }
    store.close().unwrap();
}

#[test]
fn salvage_keeps_every_readable_record_around_a_damaged_one_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut expect = build_store(dir.path(), 2, 8);
    {
        let s = open_store(dir.path());
        s.put("docs", &key(0), &json!("overwritten")).unwrap();
        s.delete("docs", &key(1)).unwrap();
        s.close().unwrap();
    }
    expect.insert(key(0), json!("overwritten"));
    expect.remove(&key(1));
    let recs = records(dir.path());
    let bad = &recs[4];
    let lost = bad["ops"][0]["key"].as_str().unwrap().to_owned();
    expect.remove(&lost);
    flip_bit(&seg(dir.path(), 1), bad["offset"].as_u64().unwrap() + 30, 1);
    // Also a torn tail at the end.
    let last = seg(dir.path(), 3);
    let b = std::fs::read(&last).unwrap();
    let mut torn = b.clone();
    torn.extend_from_slice(&[7u8; 13]);
    std::fs::write(&last, torn).unwrap();
    assert_eq!(run(&a(&["verify"], dir.path())).code, 2);
    let before = checksums(dir.path());
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("recovered");
    let out_arg = out_dir.to_str().unwrap();
    let r = run(&a(&["salvage", "--json", "--keep-all-readable", "--out", out_arg], dir.path()));
    assert_eq!(r.code, 1, "damaged bytes were skipped: {}{}", r.stdout, r.stderr);
    assert_eq!(checksums(dir.path()), before, "salvage changed the source");
    let skips = r.of_type("skip");
    assert_eq!(skips.len(), 2, "{}", r.stdout);
    assert_eq!(skips[0]["offset"], bad["offset"]);
    assert_eq!(skips[1]["offset"].as_u64(), Some(b.len() as u64));
    let summary = &r.of_type("salvage")[0];
    assert_eq!(summary["documents_written"].as_u64(), Some(expect.len() as u64));
    let store = open_store(&out_dir);
    assert_eq!(store.count("docs").unwrap(), expect.len());
    for (k, v) in &expect {
        assert_eq!(&store.get::<Value>("docs", k).unwrap().unwrap().value, v, "key {k}");
    }
    assert!(store.get::<Value>("docs", &lost).unwrap().is_none());
    store.close().unwrap();
    // A non-empty --out is refused.
    let again = run(&a(&["salvage", "--out", out_dir.to_str().unwrap()], dir.path()));
    assert_eq!(again.code, 64);
}

#[test]
fn no_subcommand_changes_any_input_file() {
    let dir = tempfile::tempdir().unwrap();
    mixed_store(dir.path());
    build_store(dir.path(), 2, 3);
    flip_bit(&seg(dir.path(), 2), 100, 2);
    let before = checksums(dir.path());
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("out");
    let out = out.to_str().unwrap();
    for args in [
        vec!["summary"],
        vec!["verify"],
        vec!["dump"],
        vec!["history", "users", "ada", "--diff"],
        vec!["stats"],
        vec!["follow", "--from-start", "--exit-after-idle-ms", "50"],
        vec!["salvage", "--out", out],
    ] {
        for json in [false, true] {
            let mut v = a(&args, dir.path());
            if json {
                v.push("--json".into());
                if args[0] == "salvage" {
                    let _ = std::fs::remove_dir_all(out);
                }
            }
            let r = run(&v);
            assert!(r.code != 101, "{args:?}: {}", r.stderr);
            if json {
                r.ndjson();
            }
            assert_eq!(checksums(dir.path()), before, "{args:?} changed an input file");
        }
    }
}

#[test]
fn a_closed_pipe_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    build_store(dir.path(), 1, 300);
    let mut child = Command::new(env!("CARGO_BIN_EXE_walinspect"))
        .args(a(&["dump"], dir.path()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // like `| head` exiting before walinspect writes
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn help_shows_examples_and_usage_errors_exit_64() {
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("Examples:") && r.stdout.contains("salvage"), "{}", r.stdout);
    assert!(run(&["dump", "--help"]).stdout.contains("--from-lsn"));
    assert_eq!(run(&["verify"]).code, 64);
    assert_eq!(run(&["no-such-command", "x", "y"]).code, 64);
}

#[test]
fn rate_limit_and_breaker_records_are_decoded() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open_store(dir.path());
        let rl = s.rate_limiter("api", walden::Quota::per_second(10)).unwrap();
        for user in ["u1", "u2", "u1"] {
            assert!(rl.check(user).unwrap().allowed);
        }
        s.breaker("db", walden::BreakerConfig::default()).unwrap().force_open().unwrap();
        s.close().unwrap();
    }
    assert_eq!(run(&a(&["verify"], dir.path())).code, 0);
    let r = run(&a(&["dump", "--json", "--kind", "ratelimit"], dir.path()));
    let recs = r.of_type("record");
    assert_eq!(recs.len(), 3, "{}", r.stdout);
    assert_eq!((recs[1]["limiter"].as_str(), recs[1]["key"].as_str()), (Some("api"), Some("u2")));
    assert!(recs[0]["tat_unix_ns"].is_u64() && recs[0].get("decode_error").is_none());
    let b = run(&a(&["dump", "--json", "--kind", "breaker"], dir.path())).of_type("record");
    assert_eq!(
        (b[0]["breaker"].as_str(), b[0]["state"].as_str()),
        (Some("db"), Some("forced_open"))
    );
    let st = run(&a(&["stats", "--json"], dir.path()));
    assert_eq!(st.of_type("ratelimit")[0]["keys"], 2);
    assert_eq!(st.of_type("breaker")[0]["state"], "forced_open");
    let text = run(&a(&["dump", "--kind", "breaker"], dir.path()));
    assert!(text.stdout.contains("state: forced_open"), "{}", text.stdout);
}
