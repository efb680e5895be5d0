//! Versions never repeat for a key: a document created while its key is absent starts above
//! every version a deleted document of its collection had (the durable version floor), across
//! batches, restarts and compactions; and "save with the version I read, or create if I read
//! nothing" is one call with one conflict shape. Checked through the public API only.

mod common;

use common::{open, store_dir, tmp};
use walden::{Batch, Error, Store};

fn version(s: &Store, c: &str, k: &str) -> Option<u64> {
    s.get::<serde_json::Value>(c, k).unwrap().map(|d| d.version)
}

#[test]
fn a_recreated_key_never_reuses_a_version() {
    let t = tmp();
    let s = open(&store_dir(&t));
    assert_eq!(s.put("c", "k", &1).unwrap(), 1);
    assert_eq!(s.put("c", "k", &2).unwrap(), 2);
    assert_eq!(s.delete("c", "k").unwrap(), Some(2));
    assert_eq!(s.put("c", "k", &3).unwrap(), 3, "a re-created key started over");
    s.delete("c", "k").unwrap();
    assert_eq!(s.insert("c", "k", &4).unwrap(), 4);
    // The floor is per collection: other collections and new keys are unaffected in kind.
    assert_eq!(s.put("other", "k", &1).unwrap(), 1);
    assert_eq!(s.put("c", "new", &1).unwrap(), 4, "a new key starts above the floor (3)");
}

#[test]
fn a_stale_expected_version_never_matches_the_recreated_document() {
    let t = tmp();
    let s = open(&store_dir(&t));
    let read = s.put("c", "k", &"old").unwrap();
    s.delete("c", "k").unwrap();
    s.put("c", "k", &"new").unwrap();
    // Before the floor this matched (versions restarted at 1) and overwrote "new".
    assert!(matches!(s.put_if_version("c", "k", &"stale", read), Err(Error::Conflict { .. })));
    assert!(matches!(s.put_expecting("c", "k", &"stale", Some(read)), Err(Error::Conflict { .. })));
    assert_eq!(s.get::<String>("c", "k").unwrap().unwrap().value, "new");
}

#[test]
fn delete_and_insert_in_one_batch_raise_the_version() {
    let t = tmp();
    let s = open(&store_dir(&t));
    s.put("c", "k", &1).unwrap();
    s.put("c", "k", &2).unwrap();
    let mut b = Batch::new();
    b.delete("c", "k").insert("c", "k", &3);
    assert_eq!(s.commit(b).unwrap(), vec![Some(2), Some(3)]);
}

#[test]
fn the_floor_survives_restart_and_compaction() {
    let t = tmp();
    let dir = store_dir(&t);
    let s = open(&dir);
    for v in 0..5 {
        s.put("c", "k", &v).unwrap();
    }
    s.put("d", "x", &1).unwrap();
    s.delete("c", "k").unwrap(); // floor of c: 5
    s.close().unwrap();
    let s = open(&dir);
    assert_eq!(s.put("c", "k", &0).unwrap(), 6, "the floor was lost at restart");
    s.delete("c", "k").unwrap(); // floor of c: 6
                                 // The deletes leave the log: only the snapshot can remember the floor now.
    let report = s.compact().unwrap().expect("there was something to compact");
    assert!(report.segments_deleted >= 1);
    s.close().unwrap();
    let s = open(&dir);
    assert!(s.stats().recovery.snapshot_lsn.is_some());
    assert_eq!(s.put("c", "k", &0).unwrap(), 7, "the floor was lost in compaction");
    assert_eq!(version(&s, "d", "x"), Some(1));
    // A second compaction carries the floor from snapshot to snapshot.
    s.delete("c", "k").unwrap();
    s.compact().unwrap();
    s.compact().unwrap();
    s.close().unwrap();
    let s = open(&dir);
    assert_eq!(s.insert("c", "k", &0).unwrap(), 8);
}

#[test]
fn put_expecting_creates_or_saves_with_one_conflict_shape() {
    let t = tmp();
    let s = open(&store_dir(&t));
    let last = || s.stats().last_lsn;
    // Read nothing, create.
    assert_eq!(s.put_expecting("c", "k", &"a", None).unwrap(), 1);
    // Read nothing, but it exists now: Conflict (not AlreadyExists), nothing written.
    let before = last();
    match s.put_expecting("c", "k", &"b", None) {
        Err(Error::Conflict { expected: None, current: Some(1), .. }) => {}
        other => panic!("expected Conflict {{ expected: None, current: Some(1) }}, got {other:?}"),
    }
    // Read version 1, but it moved on: the same shape.
    s.put("c", "k", &"c").unwrap();
    match s.put_expecting("c", "k", &"d", Some(1)) {
        Err(Error::Conflict { expected: Some(1), current: Some(2), .. }) => {}
        other => {
            panic!("expected Conflict {{ expected: Some(1), current: Some(2) }}, got {other:?}")
        }
    }
    // Read version 2, and it was deleted: the same shape again.
    s.delete("c", "k").unwrap();
    match s.put_expecting("c", "k", &"e", Some(2)) {
        Err(Error::Conflict { expected: Some(2), current: None, .. }) => {}
        other => panic!("expected Conflict {{ expected: Some(2), current: None }}, got {other:?}"),
    }
    assert_eq!(last(), before + 2, "a refused put_expecting wrote something");
    // Read nothing after the delete: created above the floor.
    assert_eq!(s.put_expecting("c", "k", &"f", None).unwrap(), 3);
    assert_eq!(s.put_expecting("c", "k", &"g", Some(3)).unwrap(), 4);
}

#[test]
fn batch_put_expecting_fails_the_whole_batch_with_a_conflict() {
    let t = tmp();
    let s = open(&store_dir(&t));
    s.put("c", "taken", &1).unwrap();
    let mut b = Batch::new();
    b.put_expecting("c", "free", &1, None).put_expecting("c", "taken", &2, None);
    assert!(matches!(s.commit(b), Err(Error::Conflict { expected: None, current: Some(1), .. })));
    assert_eq!(version(&s, "c", "free"), None, "the batch was not all-or-nothing");
    let mut b = Batch::new();
    b.put_expecting("c", "free", &1, None).put_expecting("c", "taken", &2, Some(1));
    assert_eq!(s.commit(b).unwrap(), vec![Some(1), Some(2)]);
}

#[test]
fn update_returns_the_new_version_not_the_value() {
    let t = tmp();
    let s = open(&store_dir(&t));
    assert_eq!(s.update::<u64, _>("c", "n", |n| Some(n.unwrap_or(0) + 10)).unwrap(), Some(1));
    assert_eq!(s.update::<u64, _>("c", "n", |n| Some(n.unwrap() + 10)).unwrap(), Some(2));
    assert_eq!(s.update::<u64, _>("c", "n", |_| None).unwrap(), None);
    assert_eq!(s.update::<u64, _>("c", "n", |_| Some(0)).unwrap(), Some(3), "floor applies");
}
