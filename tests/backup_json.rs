//! Online backup (consistent while writers continue, opens with `Store::open`), retention of
//! rotated backups, and JSON import/export (round trip, JSON Lines, invalid input writes
//! nothing and names the line and column).

use std::time::Duration;

use walden::{prune_backups, Error, ImportMode, Options, Retention, Store, BACKUP_DIR_PREFIX};

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

#[test]
fn retention_keeps_the_newest_n_or_the_young_ones() {
    let parent = tempfile::tempdir().unwrap();
    let day_ms = 86_400_000u64;
    let now_ms = 100 * day_ms;
    for age_days in [0u64, 1, 2, 5, 8, 9, 30] {
        let name = format!("{BACKUP_DIR_PREFIX}{:020}", now_ms - age_days * day_ms);
        std::fs::create_dir(parent.path().join(name)).unwrap();
    }
    std::fs::create_dir(parent.path().join("not-a-backup")).unwrap();
    let now_ns = now_ms * 1_000_000;
    let rule = Retention { keep_last: Some(5), max_age: Some(Duration::from_secs(7 * 86_400)) };
    let deleted = prune_backups(parent.path(), rule, now_ns).unwrap();
    // Kept: the 5 newest (0,1,2,5,8 days) — 9 and 30 days are outside both rules.
    assert_eq!(deleted.len(), 2);
    let age_only = Retention { keep_last: None, max_age: Some(Duration::from_secs(3 * 86_400)) };
    let deleted = prune_backups(parent.path(), age_only, now_ns).unwrap();
    assert_eq!(deleted.len(), 2, "5 and 8 days old");
    let mut left: Vec<String> = std::fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left.len(), 4);
    assert!(left.contains(&"not-a-backup".to_string()));
    assert!(prune_backups(parent.path(), Retention::default(), now_ns).unwrap().is_empty());
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
