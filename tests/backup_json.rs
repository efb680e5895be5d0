//! Online backup (consistent while writers continue, opens with `Store::open`), retention of
//! rotated backups, and JSON import/export (round trip, JSON Lines, invalid input writes
//! nothing and names the line and column).

use std::time::Duration;

use std::sync::Arc;

use walden::{Error, ImportMode, Options, Retention, Store, BACKUP_DIR_PREFIX};

#[test]
fn backup_while_writing_opens_with_a_consistent_state() {
    let dir = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    // Invariant kept by every batch: a + b == 1000.
    store.put("bank", "a", &1000i64).unwrap();
    store.put("bank", "b", &0i64).unwrap();
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for i in 0..400i64 {
                let mut b = walden::Batch::new();
                b.put("bank", "a", &(1000 - i)).put("bank", "b", &i);
                store.commit(b).unwrap();
            }
        })
    };
    let mut reports = Vec::new();
    for n in 0..5 {
        if n == 2 {
            store.compact().unwrap();
        }
        reports.push(store.backup_to(backups.path().join(format!("b{n}"))).unwrap());
    }
    writer.join().unwrap();
    for r in reports {
        let copy = Store::open(&r.path).unwrap();
        let a = copy.get::<i64>("bank", "a").unwrap().unwrap();
        let b = copy.get::<i64>("bank", "b").unwrap().unwrap();
        assert_eq!(a.value + b.value, 1000, "backup at LSN {} is torn", r.lsn);
        assert_eq!(copy.stats().last_lsn, r.lsn);
    }
}

#[test]
fn backup_refuses_a_non_empty_destination() {
    let dir = tempfile::tempdir().unwrap();
    let dest = tempfile::tempdir().unwrap();
    std::fs::write(dest.path().join("precious.txt"), b"keep me").unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.put("c", "k", &1).unwrap();
    match store.backup_to(dest.path()) {
        Err(Error::DestinationNotEmpty { path }) => assert_eq!(path, dest.path()),
        other => panic!("expected DestinationNotEmpty, got {other:?}"),
    }
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 1);
}

fn store_at(dir: &std::path::Path, clock: &walden::ManualClock) -> Store {
    Store::open_with(dir, Options { clock: Arc::new(clock.clone()), ..Options::default() }).unwrap()
}

#[test]
fn retention_keeps_the_newest_n_or_the_young_ones() {
    let dir = tempfile::tempdir().unwrap();
    let parent = tempfile::tempdir().unwrap();
    let day_ms = 86_400_000u64;
    let now_ms = 100 * day_ms;
    for age_days in [0u64, 1, 2, 5, 8, 9, 30] {
        let name = format!("{BACKUP_DIR_PREFIX}{:020}", now_ms - age_days * day_ms);
        std::fs::create_dir(parent.path().join(name)).unwrap();
    }
    std::fs::create_dir(parent.path().join("not-a-backup")).unwrap();
    let store = store_at(dir.path(), &walden::ManualClock::new(now_ms * 1_000_000));
    let rule = Retention { keep_last: Some(5), max_age: Some(Duration::from_secs(7 * 86_400)) };
    let deleted = store.prune_backups(parent.path(), rule).unwrap();
    // Kept: the 5 newest (0,1,2,5,8 days) — 9 and 30 days are outside both rules.
    assert_eq!(deleted.len(), 2);
    let age_only = Retention { keep_last: None, max_age: Some(Duration::from_secs(3 * 86_400)) };
    let deleted = store.prune_backups(parent.path(), age_only).unwrap();
    assert_eq!(deleted.len(), 2, "5 and 8 days old");
    let mut left: Vec<String> = std::fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left.len(), 4);
    assert!(left.contains(&"not-a-backup".to_string()));
    assert!(store.prune_backups(parent.path(), Retention::default()).unwrap().is_empty());
}

#[test]
fn rotation_and_pruning_read_one_clock_the_stores() {
    let dir = tempfile::tempdir().unwrap();
    let parent = tempfile::tempdir().unwrap();
    let day_ns = 86_400_000_000_000u64;
    let clock = walden::ManualClock::new(1_000 * day_ns);
    let store = store_at(dir.path(), &clock);
    store.put("c", "k", &1).unwrap();
    let old = store.backup_rotated(parent.path()).unwrap();
    clock.advance_ns(8 * day_ns);
    let young = store.backup_rotated(parent.path()).unwrap();
    let week = Retention { keep_last: None, max_age: Some(Duration::from_secs(7 * 86_400)) };
    assert_eq!(store.prune_backups(parent.path(), week).unwrap(), vec![old.path]);
    assert!(young.path.is_dir());
}

#[test]
fn a_retention_that_keeps_nothing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let parent = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let backup = store.backup_rotated(parent.path()).unwrap();
    for (rule, argument) in [
        (Retention { keep_last: Some(0), max_age: None }, "Retention::keep_last"),
        (
            Retention { keep_last: Some(0), max_age: Some(Duration::from_secs(60)) },
            "Retention::keep_last",
        ),
        (Retention { keep_last: None, max_age: Some(Duration::ZERO) }, "Retention::max_age"),
    ] {
        match store.prune_backups(parent.path(), rule) {
            Err(Error::InvalidArgument { argument: a, .. }) => assert_eq!(a, argument),
            other => panic!("{rule:?}: expected InvalidArgument, got {other:?}"),
        }
    }
    assert!(backup.path.is_dir(), "nothing deleted");
}

#[test]
fn a_backup_holds_the_live_state_not_the_logs_history() {
    let dir = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    // 32 documents of about 1 KiB (33 KB live), each rewritten 300 times: about 10 MB of log.
    let doc = "x".repeat(1000);
    for round in 0..300 {
        let mut b = walden::Batch::new();
        for k in 0..32 {
            b.put("c", &format!("k{k}"), &format!("{round}{doc}"));
        }
        store.commit(b).unwrap();
    }
    let log_bytes = store.stats().wal_bytes;
    assert!(log_bytes > 9_000_000, "the log holds every version: {log_bytes}");
    let r = store.backup_to(backups.path().join("b")).unwrap();
    assert!(r.bytes < 64 * 1024, "a backup of 33 KB of live data is {} bytes", r.bytes);
    let on_disk: u64 = walk(&r.path);
    assert!(on_disk < 64 * 1024, "{on_disk} bytes on disk");
    let copy = Store::open(&r.path).unwrap();
    assert_eq!(copy.stats().last_lsn, r.lsn);
    let got = copy.get::<String>("c", "k31").unwrap().unwrap();
    assert_eq!((got.value, got.version), (format!("299{doc}"), 300));
    // The copy is a working store: it takes writes and reopens with them.
    assert_eq!(copy.put("c", "k31", &"restored").unwrap(), 301);
    copy.close().unwrap();
    let copy = Store::open(&r.path).unwrap();
    assert_eq!(copy.get::<String>("c", "k31").unwrap().unwrap().value, "restored");
    assert_eq!(copy.count("c").unwrap(), 32);
    drop(copy);
    // Writes after the backup are not in it; the next backup has them.
    store.put("c", "k0", &"new").unwrap();
    let r2 = store.backup_to(backups.path().join("b2")).unwrap();
    let copy = Store::open(&r2.path).unwrap();
    assert_eq!(copy.get::<String>("c", "k0").unwrap().unwrap().value, "new");
}

fn walk(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path())
            } else {
                e.metadata().unwrap().len()
            }
        })
        .sum()
}

#[test]
fn rotated_backups_are_named_by_time_and_open() {
    let dir = tempfile::tempdir().unwrap();
    let parent = tempfile::tempdir().unwrap();
    let clock = walden::ManualClock::new(1_700_000_000_000_000_000);
    let store = Store::open_with(
        dir.path(),
        Options { clock: std::sync::Arc::new(clock.clone()), ..Options::default() },
    )
    .unwrap();
    store.put("c", "k", &1).unwrap();
    let r = store.backup_rotated(parent.path()).unwrap();
    assert!(r.path.ends_with(format!("{BACKUP_DIR_PREFIX}{:020}", 1_700_000_000_000u64)));
    assert_eq!(Store::open(&r.path).unwrap().get::<i32>("c", "k").unwrap().unwrap().value, 1);
}

#[test]
fn json_export_import_round_trip_keeps_every_document() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("a")).unwrap();
    for i in 0..50 {
        store
            .put("users", &format!("u{i:02}"), &serde_json::json!({"n": i, "tags": ["x", i]}))
            .unwrap();
    }
    store.put("other", "k", &"v").unwrap();
    let mut out = Vec::new();
    assert_eq!(store.export_json("users", &mut out).unwrap(), 50);
    let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&out).unwrap();
    assert_eq!(parsed.len(), 50);
    assert_eq!(parsed["u07"], serde_json::json!({"n": 7, "tags": ["x", 7]}));

    let other = Store::open(dir.path().join("b")).unwrap();
    let report = other.import_json("users", &out[..], ImportMode::Atomic).unwrap();
    assert_eq!((report.documents, report.batches), (50, 1));
    for i in 0..50 {
        let k = format!("u{i:02}");
        assert_eq!(
            other.get::<serde_json::Value>("users", &k).unwrap().unwrap().value,
            store.get::<serde_json::Value>("users", &k).unwrap().unwrap().value
        );
    }
    let chunked = other
        .import_json("users", &out[..], ImportMode::Chunked { documents_per_batch: 7 })
        .unwrap();
    assert_eq!((chunked.documents, chunked.batches), (50, 8));
    assert_eq!(other.get::<serde_json::Value>("users", "u00").unwrap().unwrap().version, 2);

    let mut all = Vec::new();
    assert_eq!(store.export_all_json(&mut all).unwrap(), 51);
    let all: serde_json::Value = serde_json::from_slice(&all).unwrap();
    assert_eq!(all["other"]["k"], "v");
    assert_eq!(all["users"].as_object().unwrap().len(), 50);
}

#[test]
fn json_lines_import_and_bad_input_names_the_place_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let lines = "{\"key\":\"a\",\"value\":{\"x\":1}}\n\n{\"key\":\"b\",\"value\":2}\n";
    let r = store.import_json_lines("c", lines.as_bytes(), ImportMode::Atomic).unwrap();
    assert_eq!(r.documents, 2);
    let before = store.stats().last_lsn;

    let bad_lines = "{\"key\":\"c\",\"value\":1}\n{\"key\":\"d\",\"value\":}\n";
    match store.import_json_lines("c", bad_lines.as_bytes(), ImportMode::Atomic) {
        Err(Error::InvalidJson { line, column, .. }) => {
            assert_eq!((line, column), (2, 20), "the closing brace where a value belongs")
        }
        other => panic!("expected InvalidJson, got {other:?}"),
    }
    let bad_object = "{\n  \"a\": 1,\n  \"b\": @\n}";
    match store.import_json("c", bad_object.as_bytes(), ImportMode::Atomic) {
        Err(Error::InvalidJson { line, .. }) => assert_eq!(line, 3),
        other => panic!("expected InvalidJson, got {other:?}"),
    }
    match store.import_json("c", "[1,2]".as_bytes(), ImportMode::Atomic) {
        Err(Error::InvalidJson { .. }) => {}
        other => panic!("expected InvalidJson, got {other:?}"),
    }
    // A bad key in the last chunk stops the import before the first chunk is written.
    let bad_key = format!("{{\"ok\":1,\"{}\":2}}", "k".repeat(2000));
    match store.import_json("c", bad_key.as_bytes(), ImportMode::Chunked { documents_per_batch: 1 })
    {
        Err(Error::TooLarge { .. }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(store.stats().last_lsn, before, "nothing was written");
    assert_eq!(store.get::<i32>("c", "ok").unwrap(), None);
}
