//! Compaction and snapshots: the state after compaction equals a model (a BTreeMap) before and
//! after reopening; covered segments and older snapshots are deleted; background compaction
//! runs under concurrent writers; a damaged newest snapshot falls back to an older one only if
//! the log still covers it; bit flips in a snapshot are detected.

use std::collections::BTreeMap;
use std::path::Path;

use walden::{Error, Options, Store};

fn snapshots(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("snapshot-"))
        .collect();
    v.sort();
    v
}

fn segments(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wal"))
        .collect();
    v.sort();
    v
}

type Model = BTreeMap<(String, String), (u64, u64)>;
/// Per collection, the highest version a deleted document had: a re-created key starts above.
type Floors = BTreeMap<String, u64>;

fn assert_matches_model(store: &Store, model: &Model) {
    let mut seen = 0;
    for c in store.collections().unwrap() {
        for item in store.scan::<u64>(&c).unwrap() {
            let (k, doc) = item.unwrap();
            let want = model
                .get(&(c.clone(), k.clone()))
                .unwrap_or_else(|| panic!("{c}/{k} not in model"));
            assert_eq!((doc.value, doc.version), *want, "{c}/{k}");
            seen += 1;
        }
    }
    assert_eq!(seen, model.len());
}

/// Applies a deterministic mix of puts and deletes to store and model.
fn churn(store: &Store, model: &mut Model, floors: &mut Floors, round: u64, n: u64) {
    for i in 0..n {
        let c = format!("c{}", i % 3);
        let k = format!("k{:03}", (i * 7 + round * 13) % 50);
        if (i + round).is_multiple_of(5) {
            let deleted = store.delete(&c, &k).unwrap();
            assert_eq!(deleted, model.remove(&(c.clone(), k)).map(|(_, v)| v));
            if let Some(v) = deleted {
                let f = floors.entry(c).or_insert(0);
                *f = (*f).max(v);
            }
        } else {
            let value = round * 1000 + i;
            let v = store.put(&c, &k, &value).unwrap();
            let floor = floors.get(&c).copied().unwrap_or(0);
            let entry = model.entry((c, k)).or_insert((0, floor));
            *entry = (value, entry.1 + 1);
            assert_eq!(v, entry.1);
        }
    }
}

fn manual() -> Options {
    Options { auto_compact: false, ..Options::default() }
}

#[test]
fn compaction_keeps_state_equal_to_the_model_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    let mut floors = Floors::new();
    for round in 0..4 {
        let store = Store::open_with(dir.path(), manual()).unwrap();
        assert_matches_model(&store, &model);
        churn(&store, &mut model, &mut floors, round, 200);
        let report = store.compact().unwrap().expect("there is something to compact");
        assert_eq!(report.snapshot_lsn, store.stats().last_lsn);
        assert_matches_model(&store, &model);
        assert_eq!(snapshots(dir.path()).len(), 1, "older snapshots are deleted");
        assert_eq!(segments(dir.path()).len(), 1, "only the active segment is left");
        assert!(store.compact().unwrap().is_none(), "nothing new to compact");
        let s = store.stats();
        assert_eq!(s.snapshot_lsn, report.snapshot_lsn);
        assert_eq!(s.snapshot_bytes, report.snapshot_bytes);
        let on_disk: u64 = std::fs::read_dir(dir.path().join("wal"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert_eq!(s.wal_bytes, on_disk, "stats track the log's size on disk");
        assert_eq!(s.wal_bytes, 64, "only the new segment's header is left");
        assert!(s.live_bytes > 0 && s.snapshot_bytes > s.live_bytes);
        assert!(s.reclaimable_bytes < s.snapshot_bytes, "{s:?}");
        churn(&store, &mut model, &mut floors, round + 100, 50);
        store.close().unwrap();
    }
    let store = Store::open_with(dir.path(), manual()).unwrap();
    assert_matches_model(&store, &model);
    let s = store.stats();
    assert!(s.recovery.snapshot_lsn.is_some());
    assert!(s.recovery.records_replayed <= 50, "only the log after the snapshot is replayed");
}

#[test]
fn deleted_documents_leave_no_trace_in_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), manual()).unwrap();
    store.put("c", "gone", &1u64).unwrap();
    store.put("c", "kept", &2u64).unwrap();
    store.delete("c", "gone").unwrap();
    store.compact().unwrap().unwrap();
    let snap = std::fs::read(dir.path().join(&snapshots(dir.path())[0])).unwrap();
    assert!(!snap.windows(4).any(|w| w == b"gone"));
    assert!(snap.windows(4).any(|w| w == b"kept"));
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.get::<u64>("c", "gone").unwrap(), None);
    // Its value left no trace, but its version did: a re-created document starts above it.
    assert_eq!(store.put("c", "gone", &3u64).unwrap(), 2);
}

#[test]
fn background_compaction_runs_under_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        compaction_min_wal_bytes: 16 * 1024,
        compaction_wal_to_snapshot_ratio: 1.0,
        durability: walden::Durability::Buffered,
        ..Options::default()
    };
    let store = Store::open_with(dir.path(), opts.clone()).unwrap();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..3000u64 {
                    store.put("c", &format!("t{t}-{}", i % 100), &i).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Give the background thread a bounded chance to catch up.
    for _ in 0..100 {
        if store.stats().snapshots_written > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let s = store.stats();
    assert!(s.snapshots_written >= 1, "{s:?}");
    assert_eq!(s.compaction_failures, 0);
    drop(store);
    let store = Store::open_with(dir.path(), opts).unwrap();
    for t in 0..4 {
        for j in 0..100u64 {
            let doc = store.get::<u64>("c", &format!("t{t}-{j}")).unwrap().unwrap();
            assert_eq!(doc.value, 2900 + j);
            assert_eq!(doc.version, 30);
        }
    }
}

#[test]
fn a_damaged_snapshot_is_refused_with_its_offset_when_the_log_does_not_cover_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), manual()).unwrap();
    for i in 0..20u64 {
        store.put("c", &format!("k{i}"), &i).unwrap();
    }
    store.compact().unwrap().unwrap();
    drop(store);
    let snap = dir.path().join(&snapshots(dir.path())[0]);
    let clean = std::fs::read(&snap).unwrap();
    // Every single-byte flip anywhere in the file is detected.
    for at in (0..clean.len()).step_by(7) {
        let mut bad = clean.clone();
        bad[at] ^= 0x40;
        std::fs::write(&snap, &bad).unwrap();
        match Store::open_with(dir.path(), manual()) {
            Err(Error::Corruption { file, .. }) => assert_eq!(file, snap),
            other => panic!("flip at {at}: expected corruption, got {other:?}"),
        }
    }
    std::fs::write(&snap, &clean).unwrap();
    let store = Store::open_with(dir.path(), manual()).unwrap();
    assert_eq!(store.count("c").unwrap(), 20);
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_an_older_one_the_log_covers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), manual()).unwrap();
    for i in 0..10u64 {
        store.put("c", &format!("k{i}"), &i).unwrap();
    }
    store.compact().unwrap().unwrap();
    let older = snapshots(dir.path())[0].clone();
    let older_bytes = std::fs::read(dir.path().join(&older)).unwrap();
    for i in 10..20u64 {
        store.put("c", &format!("k{i}"), &i).unwrap();
    }
    // Keep the segments the next compaction would delete, as a crash between rename and
    // deletion would, by copying them back afterwards.
    let wal = dir.path().join("wal");
    let saved: Vec<(String, Vec<u8>)> = segments(dir.path())
        .into_iter()
        .map(|n| (n.clone(), std::fs::read(wal.join(&n)).unwrap()))
        .collect();
    store.compact().unwrap().unwrap();
    drop(store);
    for (n, b) in &saved {
        std::fs::write(wal.join(n), b).unwrap();
    }
    std::fs::write(dir.path().join(&older), &older_bytes).unwrap();
    let newest = dir.path().join(snapshots(dir.path()).last().unwrap());
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&newest, &bytes).unwrap();

    let store = Store::open_with(dir.path(), manual()).unwrap();
    assert_eq!(store.count("c").unwrap(), 20);
    let s = store.stats();
    assert_eq!(s.recovery.snapshots_rejected, vec![newest]);
    for i in 0..20u64 {
        assert_eq!(store.get::<u64>("c", &format!("k{i}")).unwrap().unwrap().value, i);
    }
}

#[test]
fn leftover_temporary_snapshot_is_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), manual()).unwrap();
    store.put("c", "k", &1u64).unwrap();
    drop(store);
    let tmp = dir.path().join("snapshot-00000000000000000001.snap.tmp");
    std::fs::write(&tmp, b"half a snapshot").unwrap();
    let store = Store::open_with(dir.path(), manual()).unwrap();
    assert!(!tmp.exists());
    assert_eq!(store.get::<u64>("c", "k").unwrap().unwrap().value, 1);
}
