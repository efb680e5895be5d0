//! The public API's contract, one behaviour per test: round trips, version numbering, compare-
//! and-set conflicts, insert/delete semantics, batches (all-or-none), validators, limits,
//! point-in-time scans under concurrent writers, reopening, durability modes and `stats()`.
//!
//! Every rejected operation is checked twice: it returns the typed error, and it wrote nothing
//! (`stats().last_lsn` does not move and the documents read back unchanged). Timestamps come
//! from a `ManualClock` so they can be compared exactly across a reopen.

mod common;

use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{open, store_dir, tmp};
use serde::{Deserialize, Serialize};
use walden::limits::{DEFAULT_MAX_KEY_BYTES, MAX_COLLECTION_NAME_BYTES};
use walden::{Batch, Durability, Error, LimitKind, ManualClock, Options, Store};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    age: u32,
}

fn user(name: &str, age: u32) -> User {
    User { name: name.to_owned(), age }
}

fn last_lsn(s: &Store) -> u64 {
    s.stats().last_lsn
}

fn version(s: &Store, c: &str, k: &str) -> Option<u64> {
    s.get::<serde_json::Value>(c, k).unwrap().map(|d| d.version)
}

#[test]
fn put_then_get_round_trips_structs_and_json() {
    let t = tmp();
    let s = open(&store_dir(&t));
    assert_eq!(s.put("users", "ada", &user("Ada", 36)).unwrap(), 1);
    let got = s.get::<User>("users", "ada").unwrap().unwrap();
    assert_eq!((got.value, got.version), (user("Ada", 36), 1));
    s.put("misc", "list", &vec![1, 2, 3]).unwrap();
    s.put("misc", "str", "hello").unwrap();
    assert_eq!(s.get::<Vec<i32>>("misc", "list").unwrap().unwrap().value, vec![1, 2, 3]);
    assert_eq!(s.get::<String>("misc", "str").unwrap().unwrap().value, "hello");
    assert!(s.get::<User>("users", "nobody").unwrap().is_none());
    assert!(s.get::<User>("nowhere", "ada").unwrap().is_none());
    // A document that does not deserialize into the asked type is a typed error, not a panic.
    assert!(matches!(s.get::<User>("misc", "str"), Err(Error::Json { .. })));
}

#[test]
fn versions_start_at_one_and_grow_by_one_and_continue_above_a_deleted_version() {
    let t = tmp();
    let s = open(&store_dir(&t));
    for v in 1..=5u64 {
        assert_eq!(s.put("c", "k", &v).unwrap(), v);
        assert_eq!(version(&s, "c", "k"), Some(v));
    }
    assert_eq!(s.delete("c", "k").unwrap(), Some(5));
    assert_eq!(version(&s, "c", "k"), None);
    assert_eq!(s.put("c", "k", &"again").unwrap(), 6, "a recreated document reused a version");
    assert_eq!(s.insert("c2", "other", &0).unwrap(), 1);
}

#[test]
fn put_if_version_conflict_reports_current_and_writes_nothing() {
    let t = tmp();
    let s = open(&store_dir(&t));
    s.put("c", "k", &"one").unwrap();
    s.put("c", "k", &"two").unwrap();
    let before = last_lsn(&s);
    match s.put_if_version("c", "k", &"three", 1) {
        Err(Error::Conflict { collection, key, expected, current }) => {
            assert_eq!((collection.as_str(), key.as_str()), ("c", "k"));
            assert_eq!((expected, current), (Some(1), Some(2)));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    match s.put_if_version("c", "absent", &"x", 1) {
        Err(Error::Conflict { current: None, expected: Some(1), .. }) => {}
        other => panic!("expected a conflict on an absent key, got {other:?}"),
    }
    assert_eq!(last_lsn(&s), before, "a conflict must not log anything");
    let got = s.get::<String>("c", "k").unwrap().unwrap();
    assert_eq!((got.value.as_str(), got.version), ("two", 2));
    assert!(s.get::<String>("c", "absent").unwrap().is_none());
    assert_eq!(s.put_if_version("c", "k", &"three", 2).unwrap(), 3);
    assert_eq!(s.get::<String>("c", "k").unwrap().unwrap().value, "three");
}

#[test]
fn insert_creates_only_when_absent() {
    let t = tmp();
    let s = open(&store_dir(&t));
    assert_eq!(s.insert("c", "k", &1).unwrap(), 1);
    let before = last_lsn(&s);
    match s.insert("c", "k", &2) {
        Err(Error::AlreadyExists { collection, key, version }) => {
            assert_eq!((collection.as_str(), key.as_str(), version), ("c", "k", 1));
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(last_lsn(&s), before);
    assert_eq!(s.get::<i32>("c", "k").unwrap().unwrap().value, 1);
    s.delete("c", "k").unwrap();
    assert_eq!(s.insert("c", "k", &3).unwrap(), 2, "insert works again after a delete");
}

#[test]
fn delete_reports_the_removed_version_and_writes_nothing_when_absent() {
    let t = tmp();
    let s = open(&store_dir(&t));
    let before = last_lsn(&s);
    assert_eq!(s.delete("c", "nothing").unwrap(), None);
    assert_eq!(last_lsn(&s), before, "deleting an absent document must not log anything");
    s.put("c", "k", &1).unwrap();
    s.put("c", "k", &2).unwrap();
    assert_eq!(s.delete("c", "k").unwrap(), Some(2));
    assert_eq!(last_lsn(&s), before + 3);
    assert!(s.get::<i32>("c", "k").unwrap().is_none());
    assert_eq!(s.delete("c", "k").unwrap(), None);
    assert_eq!(last_lsn(&s), before + 3);
    assert_eq!(s.count("c").unwrap(), 0);
    assert!(s.collections().unwrap().is_empty(), "an emptied collection is not listed");
}

#[test]
fn delete_if_version_deletes_only_at_that_version() {
    let t = tmp();
    let s = open(&store_dir(&t));
    s.put("c", "k", &1).unwrap();
    s.put("c", "k", &2).unwrap();
    let before = last_lsn(&s);
    match s.delete_if_version("c", "k", 1) {
        Err(Error::Conflict { expected: Some(1), current: Some(2), .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    match s.delete_if_version("c", "absent", 1) {
        Err(Error::Conflict { expected: Some(1), current: None, .. }) => {}
        other => panic!("expected a conflict on an absent key, got {other:?}"),
    }
    assert_eq!(last_lsn(&s), before);
    assert_eq!(version(&s, "c", "k"), Some(2));
    s.delete_if_version("c", "k", 2).unwrap();
    assert_eq!(version(&s, "c", "k"), None);
    assert_eq!(last_lsn(&s), before + 1);
}

#[test]
fn update_reads_modifies_writes_and_deletes() {
    let t = tmp();
    let s = open(&store_dir(&t));
    assert_eq!(s.update::<u64, _>("c", "n", |n| Some(n.unwrap_or(0) + 10)).unwrap(), Some(1));
    assert_eq!(s.update::<u64, _>("c", "n", |n| n.map(|n| n * 2)).unwrap(), Some(2));
    assert_eq!(s.get::<u64>("c", "n").unwrap().unwrap().value, 20);
    assert_eq!(s.update::<u64, _>("c", "n", |_| None).unwrap(), None);
    assert!(s.get::<u64>("c", "n").unwrap().is_none());
    let before = last_lsn(&s);
    assert_eq!(s.update::<u64, _>("c", "n", |_| None).unwrap(), None);
    assert_eq!(last_lsn(&s), before, "deleting nothing writes nothing");
}

#[test]
fn batch_with_one_failing_precondition_applies_nothing() {
    let t = tmp();
    let s = open(&store_dir(&t));
    s.put("accounts", "alice", &100).unwrap();
    s.put("accounts", "bob", &0).unwrap();
    s.put("audit", "seq", &1).unwrap();
    let before = last_lsn(&s);

    // Failing precondition last, after ops that would succeed on their own.
    let mut b = Batch::new();
    b.put_if_version("accounts", "alice", &70, 1)
        .put("accounts", "bob", &30)
        .insert("audit", "new", &"x")
        .put_if_version("audit", "seq", &2, 7);
    assert!(matches!(s.commit(b), Err(Error::Conflict { expected: Some(7), .. })));

    // Failing insert first.
    let mut b = Batch::new();
    b.insert("accounts", "alice", &0).delete("accounts", "bob").put("audit", "z", &1);
    assert!(matches!(s.commit(b), Err(Error::AlreadyExists { .. })));

    // Failing expect_version in the middle.
    let mut b = Batch::new();
    b.put("accounts", "carol", &5).expect_version("accounts", "bob", None).delete("audit", "seq");
    assert!(matches!(s.commit(b), Err(Error::Conflict { expected: None, current: Some(1), .. })));

    assert_eq!(last_lsn(&s), before, "a failed batch must not log anything");
    assert_eq!(s.get::<i32>("accounts", "alice").unwrap().unwrap().value, 100);
    assert_eq!(s.get::<i32>("accounts", "bob").unwrap().unwrap().value, 0);
    assert!(s.get::<i32>("accounts", "carol").unwrap().is_none());
    assert!(s.get::<String>("audit", "new").unwrap().is_none());
    assert_eq!(version(&s, "audit", "seq"), Some(1));
}

#[test]
fn batch_applies_ops_on_several_collections_as_one_record() {
    let t = tmp();
    let dir = store_dir(&t);
    let s = open(&dir);
    s.put("accounts", "alice", &100).unwrap();
    s.put("old", "gone", &1).unwrap();
    let before = last_lsn(&s);
    let mut b = Batch::new();
    b.put_if_version("accounts", "alice", &70, 1)
        .insert("accounts", "bob", &30)
        .put("ledger", "t1", &"alice->bob 30")
        .delete("old", "gone")
        .delete("old", "never")
        .expect_version("accounts", "alice", Some(2))
        .put("ledger", "t1", &"alice->bob 30 (amended)");
    let versions = s.commit(b).unwrap();
    assert_eq!(versions, vec![Some(2), Some(1), Some(1), Some(1), None, Some(2), Some(2)]);
    assert_eq!(last_lsn(&s), before + 1, "a batch is one record");
    assert_eq!(s.collections().unwrap(), vec!["accounts".to_owned(), "ledger".to_owned()]);
    s.close().unwrap();

    let s = open(&dir);
    assert_eq!(s.get::<i32>("accounts", "alice").unwrap().unwrap().value, 70);
    assert_eq!(s.get::<i32>("accounts", "bob").unwrap().unwrap().value, 30);
    let t1 = s.get::<String>("ledger", "t1").unwrap().unwrap();
    assert_eq!((t1.value.as_str(), t1.version), ("alice->bob 30 (amended)", 2));
    assert!(s.get::<i32>("old", "gone").unwrap().is_none());
    assert_eq!(s.stats().recovery.records_replayed, before + 1);
}

#[test]
fn empty_batch_and_check_only_batch_write_nothing() {
    let t = tmp();
    let s = open(&store_dir(&t));
    s.put("c", "k", &1).unwrap();
    let before = last_lsn(&s);
    assert_eq!(s.commit(Batch::new()).unwrap(), Vec::<Option<u64>>::new());
    let mut b = Batch::new();
    b.expect_version("c", "k", Some(1)).expect_version("c", "none", None);
    assert_eq!(s.commit(b).unwrap(), vec![Some(1), None]);
    assert_eq!(last_lsn(&s), before);
}

#[test]
fn validator_rejection_is_typed_and_writes_nothing() {
    let t = tmp();
    let s = open(&store_dir(&t));
    s.set_validator("users", |v| match v.get("age").and_then(|a| a.as_u64()) {
        Some(a) if a < 150 => Ok(()),
        _ => Err("age must be a number below 150".to_owned()),
    })
    .unwrap();
    s.put("users", "ada", &user("Ada", 36)).unwrap();
    let before = last_lsn(&s);
    match s.put("users", "old", &user("Old", 200)) {
        Err(Error::Invalid { collection, key, message }) => {
            assert_eq!((collection.as_str(), key.as_str()), ("users", "old"));
            assert_eq!(message, "age must be a number below 150");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(matches!(s.put("users", "ada", &"not an object"), Err(Error::Invalid { .. })));
    // One invalid document fails its whole batch.
    let mut b = Batch::new();
    b.put("other", "x", &1).put("users", "bad", &user("Bad", 999));
    assert!(matches!(s.commit(b), Err(Error::Invalid { .. })));
    assert!(matches!(
        s.update::<User, _>("users", "ada", |u| u.map(|u| User { age: 500, ..u })),
        Err(Error::Invalid { .. })
    ));
    assert_eq!(last_lsn(&s), before);
    assert!(s.get::<User>("users", "old").unwrap().is_none());
    assert!(s.get::<i32>("other", "x").unwrap().is_none());
    assert_eq!(s.get::<User>("users", "ada").unwrap().unwrap().value, user("Ada", 36));
    // Other collections are not validated; clearing the validator lifts the check.
    s.put("other", "x", &"anything").unwrap();
    s.clear_validator("users").unwrap();
    s.put("users", "old", &user("Old", 200)).unwrap();
}

fn assert_rejected(s: &Store, r: walden::Result<u64>, check: impl Fn(&Error) -> bool) {
    let before = last_lsn(s);
    match r {
        Err(e) if check(&e) => {}
        other => panic!("unexpected result {other:?}"),
    }
    assert_eq!(last_lsn(s), before);
}

#[test]
fn limits_are_typed_errors_that_write_nothing() {
    let t = tmp();
    let opts = Options { max_document_bytes: 100, ..Options::default() };
    let s = Store::open_with(store_dir(&t), opts).unwrap();
    let before = last_lsn(&s);

    assert_rejected(&s, s.put("c", "", &1), |e| {
        matches!(e, Error::InvalidName { what: LimitKind::Key, .. })
    });
    let long_key = "k".repeat(DEFAULT_MAX_KEY_BYTES + 1);
    assert_rejected(&s, s.put("c", &long_key, &1), |e| {
        matches!(e, Error::TooLarge { what: LimitKind::Key, size, limit }
            if *size == DEFAULT_MAX_KEY_BYTES + 1 && *limit == DEFAULT_MAX_KEY_BYTES)
    });
    assert_rejected(&s, s.put("", "k", &1), |e| {
        matches!(e, Error::InvalidName { what: LimitKind::CollectionName, .. })
    });
    let long_name = "c".repeat(MAX_COLLECTION_NAME_BYTES + 1);
    assert_rejected(&s, s.put(&long_name, "k", &1), |e| {
        matches!(e, Error::TooLarge { what: LimitKind::CollectionName, size: 65, limit: 64 })
    });
    for bad in ["a/b", "a b", "ü", "a\0"] {
        assert_rejected(&s, s.put(bad, "k", &1), |e| {
            matches!(e, Error::InvalidName { what: LimitKind::CollectionName, .. })
        });
    }
    let big = "x".repeat(200);
    assert_rejected(&s, s.put("c", "k", &big), |e| {
        matches!(e, Error::TooLarge { what: LimitKind::Document, size: 202, limit: 100 })
    });
    // The same limits hold inside a batch, and on reads and deletes of names.
    let mut b = Batch::new();
    b.put("c", "fine", &1).put("c", "k", &big);
    assert!(matches!(s.commit(b), Err(Error::TooLarge { what: LimitKind::Document, .. })));
    assert!(matches!(s.get::<i32>("a/b", "k"), Err(Error::InvalidName { .. })));
    assert!(matches!(s.delete("c", ""), Err(Error::InvalidName { .. })));
    let mut b = Batch::new();
    for i in 0..=walden::limits::MAX_BATCH_OPS {
        b.delete("c", &format!("k{i}"));
    }
    assert!(matches!(s.commit(b), Err(Error::TooLarge { what: LimitKind::BatchOps, .. })));
    assert_eq!(last_lsn(&s), before);
    assert_eq!(s.stats().documents, 0);

    // Exactly at the limits is fine.
    let key = "k".repeat(DEFAULT_MAX_KEY_BYTES);
    let name = "Az09_.-".repeat(10)[..MAX_COLLECTION_NAME_BYTES].to_owned();
    assert_eq!(s.put(&name, &key, &"x".repeat(98)).unwrap(), 1);
    assert_eq!(s.get::<String>(&name, &key).unwrap().unwrap().value.len(), 98);
}

/// Writers move amounts between accounts with CAS batches, so the total never changes; every
/// scan, taken while they run, must see the invariant hold and the keys in order.
#[test]
fn scans_see_one_consistent_state_while_writers_run() {
    const ACCOUNTS: usize = 8;
    const TOTAL: i64 = 800;
    const WRITERS: usize = 4;
    const TRANSFERS: usize = 60;
    let t = tmp();
    let s = Store::open_with(
        store_dir(&t),
        Options { durability: Durability::Buffered, ..Options::default() },
    )
    .unwrap();
    let name = |i: usize| format!("acct-{i:02}");
    for i in 0..ACCOUNTS {
        s.put("bank", &name(i), &(TOTAL / ACCOUNTS as i64)).unwrap();
    }
    s.put("bank", "zz-other", &0).unwrap();
    let writers_done = Arc::new(AtomicUsize::new(0));
    let scans = Arc::new(AtomicU64::new(0));
    std::thread::scope(|sc| {
        for w in 0..WRITERS {
            let (s, writers_done, scans) = (s.clone(), writers_done.clone(), scans.clone());
            sc.spawn(move || {
                let mut rng = common::Rng::new(w as u64 + 1);
                let mut moved = 0;
                // Keep writing until a scan has overlapped the writes (on a loaded machine the
                // scanners may be scheduled late), bounded so a broken scanner cannot hang.
                while moved < TRANSFERS
                    || (scans.load(Ordering::SeqCst) == 0 && moved < TRANSFERS * 1_000)
                {
                    let (a, b) = (rng.range(0, ACCOUNTS as u64), rng.range(0, ACCOUNTS as u64));
                    if a == b {
                        continue;
                    }
                    let (a, b) = (name(a as usize), name(b as usize));
                    let da = s.get::<i64>("bank", &a).unwrap().unwrap();
                    let db = s.get::<i64>("bank", &b).unwrap().unwrap();
                    let amount = rng.range(1, 20) as i64;
                    let mut batch = Batch::new();
                    batch
                        .put_if_version("bank", &a, &(da.value - amount), da.version)
                        .put_if_version("bank", &b, &(db.value + amount), db.version);
                    match s.commit(batch) {
                        Ok(_) => moved += 1,
                        Err(Error::Conflict { .. }) => {}
                        Err(e) => panic!("transfer failed: {e:?}"),
                    }
                }
                writers_done.fetch_add(1, Ordering::SeqCst);
            });
        }
        for r in 0..2 {
            let (s, writers_done, scans) = (s.clone(), writers_done.clone(), scans.clone());
            sc.spawn(move || loop {
                let running = writers_done.load(Ordering::SeqCst) < WRITERS;
                {
                    let check = |items: Vec<(String, i64)>, what: &str| {
                        let keys: Vec<&String> = items.iter().map(|(k, _)| k).collect();
                        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{what}: keys out of order");
                        let accts: Vec<i64> = items
                            .iter()
                            .filter(|(k, _)| k.starts_with("acct-"))
                            .map(|(_, v)| *v)
                            .collect();
                        assert_eq!(accts.len(), ACCOUNTS, "{what}: wrong number of accounts");
                        assert_eq!(accts.iter().sum::<i64>(), TOTAL, "{what}: torn state seen");
                    };
                    let collect = |scan: walden::Scan<i64>| -> Vec<(String, i64)> {
                        scan.map(|r| r.map(|(k, d)| (k, d.value)))
                            .collect::<Result<_, _>>()
                            .unwrap()
                    };
                    if r == 0 {
                        check(collect(s.scan("bank").unwrap()), "scan");
                    } else {
                        check(collect(s.scan_prefix("bank", "acct-").unwrap()), "scan_prefix");
                    }
                    let range = collect(
                        s.scan_range("bank", Bound::Included("acct-"), Bound::Excluded("acct-99"))
                            .unwrap(),
                    );
                    check(range, "scan_range");
                    if running {
                        scans.fetch_add(1, Ordering::SeqCst);
                    }
                }
                if !running {
                    break;
                }
            });
        }
    });
    assert!(scans.load(Ordering::SeqCst) > 0, "no scan ran while writers were writing");
    let total: i64 = s.scan::<i64>("bank").unwrap().map(|r| r.unwrap().1.value).sum();
    assert_eq!(total, TOTAL);
}

#[test]
fn scans_are_ordered_and_bounded() {
    let t = tmp();
    let s = open(&store_dir(&t));
    for k in ["b", "a", "ab", "abc", "b1", "c"] {
        s.put("c", k, &k).unwrap();
    }
    s.put("d", "a", &"other collection").unwrap();
    let keys = |scan: walden::Scan<String>| -> Vec<String> { scan.map(|r| r.unwrap().0).collect() };
    assert_eq!(keys(s.scan("c").unwrap()), ["a", "ab", "abc", "b", "b1", "c"]);
    assert_eq!(keys(s.scan_prefix("c", "ab").unwrap()), ["ab", "abc"]);
    assert_eq!(keys(s.scan_prefix("c", "z").unwrap()), Vec::<String>::new());
    assert_eq!(
        keys(s.scan_range("c", Bound::Excluded("ab"), Bound::Included("b1")).unwrap()),
        ["abc", "b", "b1"]
    );
    assert_eq!(keys(s.scan("nothing").unwrap()), Vec::<String>::new());
    // A scan is a snapshot: writes after it is taken are not seen.
    let scan = s.scan::<String>("c").unwrap();
    s.put("c", "aa", &"late").unwrap();
    s.delete("c", "c").unwrap();
    assert_eq!(keys(scan), ["a", "ab", "abc", "b", "b1", "c"]);
    assert_eq!(s.count("c").unwrap(), 6);
    assert_eq!(s.count("d").unwrap(), 1);
    assert_eq!(s.collections().unwrap(), ["c", "d"]);
}

#[test]
fn reopen_preserves_documents_versions_and_timestamps() {
    let t = tmp();
    let dir = store_dir(&t);
    let clock = ManualClock::new(1_700_000_000_000_000_000);
    let opts = || Options { clock: Arc::new(clock.clone()), ..Options::default() };
    let s = Store::open_with(&dir, opts()).unwrap();
    s.put("users", "ada", &user("Ada", 36)).unwrap();
    clock.advance_ns(1_000);
    s.put("users", "ada", &user("Ada", 37)).unwrap();
    clock.advance_ns(1_000);
    s.put("users", "bob", &user("Bob", 20)).unwrap();
    s.put("tmp", "x", &1).unwrap();
    s.delete("tmp", "x").unwrap();
    let ada = s.get::<User>("users", "ada").unwrap().unwrap();
    assert_eq!((ada.version, ada.written_unix_ns), (2, 1_700_000_000_000_001_000));
    let before = s.stats();
    drop(s);

    clock.advance_ns(1_000_000);
    let s = Store::open_with(&dir, opts()).unwrap();
    assert_eq!(s.get::<User>("users", "ada").unwrap().unwrap(), ada);
    let bob = s.get::<User>("users", "bob").unwrap().unwrap();
    assert_eq!(
        (bob.value, bob.version, bob.written_unix_ns),
        (user("Bob", 20), 1, 1_700_000_000_000_002_000)
    );
    assert!(s.get::<i32>("tmp", "x").unwrap().is_none());
    let after = s.stats();
    assert_eq!(after.last_lsn, before.last_lsn);
    assert_eq!(after.documents_per_collection, before.documents_per_collection);
    assert_eq!(after.recovery.records_replayed, 5);
    assert_eq!(after.epoch, before.epoch + 1, "every open starts a new epoch");
    assert!(after.recovery.torn_tail.is_none());
    // Versions continue where they were.
    assert_eq!(s.put("users", "ada", &user("Ada", 38)).unwrap(), 3);
    assert_eq!(s.stats().last_lsn, before.last_lsn + 1);
}

#[test]
fn reopen_after_close_without_writes_keeps_everything() {
    let t = tmp();
    let dir = store_dir(&t);
    let s = open(&dir);
    s.put("c", "k", &1).unwrap();
    s.close().unwrap();
    for _ in 0..3 {
        open(&dir).close().unwrap();
    }
    let s = open(&dir);
    assert_eq!(version(&s, "c", "k"), Some(1));
    assert_eq!(s.stats().wal_segments, 2, "empty segments are not piling up");
}

#[test]
fn closed_store_refuses_reads_and_writes() {
    let t = tmp();
    let s = open(&store_dir(&t));
    let clone = s.clone();
    s.close().unwrap();
    assert!(matches!(clone.put("c", "k", &1), Err(Error::Closed)));
    assert!(matches!(clone.get::<i32>("c", "k"), Err(Error::Closed)));
}

#[test]
fn buffered_store_acknowledges_without_fsync_until_sync() {
    let t = tmp();
    let opts = Options {
        durability: Durability::Buffered,
        buffered_flush_interval_ms: 3_600_000,
        ..Options::default()
    };
    let s = Store::open_with(store_dir(&t), opts).unwrap();
    let start = s.stats();
    for i in 0..20 {
        s.put("c", &format!("k{i}"), &i).unwrap();
    }
    let st = s.stats();
    assert_eq!(st.fsyncs, start.fsyncs, "buffered writes must not fsync");
    assert_eq!(st.last_lsn, start.last_lsn + 20);
    assert_eq!(st.written_lsn, st.last_lsn, "acknowledged buffered writes are written");
    assert_eq!(st.durable_lsn, start.durable_lsn);
    assert_eq!(s.get::<i32>("c", "k19").unwrap().unwrap().value, 19);
    s.sync().unwrap();
    let st = s.stats();
    assert_eq!(st.fsyncs, start.fsyncs + 1);
    assert_eq!(st.durable_lsn, st.last_lsn);
}

#[test]
fn buffered_writes_are_fsynced_by_the_flusher_within_its_interval() {
    let t = tmp();
    let opts = Options {
        durability: Durability::Buffered,
        buffered_flush_interval_ms: 10,
        ..Options::default()
    };
    let s = Store::open_with(store_dir(&t), opts).unwrap();
    s.put("c", "k", &1).unwrap();
    let lsn = s.stats().last_lsn;
    // Bounded wait for a background thread that offers no event to wait on.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.stats().durable_lsn < lsn {
        assert!(Instant::now() < deadline, "flusher never fsynced the buffered write");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn batch_durability_overrides_the_store_default() {
    let t = tmp();
    let s = open(&store_dir(&t));
    let start = s.stats();
    let mut b = Batch::new();
    b.put("c", "buffered", &1).durability(Durability::Buffered);
    s.commit(b).unwrap();
    let st = s.stats();
    assert_eq!(st.fsyncs, start.fsyncs, "a Buffered batch must not fsync");
    assert_eq!(st.written_lsn, st.last_lsn);
    assert!(st.durable_lsn < st.last_lsn);
    s.put("c", "immediate", &2).unwrap();
    let st = s.stats();
    assert_eq!(st.fsyncs, start.fsyncs + 1);
    assert_eq!(st.durable_lsn, st.last_lsn, "an Immediate write makes everything before durable");

    let t2 = tmp();
    let opts = Options {
        durability: Durability::Buffered,
        buffered_flush_interval_ms: 3_600_000,
        ..Options::default()
    };
    let s = Store::open_with(store_dir(&t2), opts).unwrap();
    let start = s.stats();
    let mut b = Batch::new();
    b.put("c", "k", &1).durability(Durability::Immediate);
    s.commit(b).unwrap();
    let st = s.stats();
    assert_eq!(st.fsyncs, start.fsyncs + 1, "an Immediate batch fsyncs in a Buffered store");
    assert_eq!(st.durable_lsn, st.last_lsn);
}

#[test]
fn stats_move_with_the_work_done() {
    let t = tmp();
    let dir = store_dir(&t);
    let s = open(&dir);
    let st = s.stats();
    assert_eq!((st.documents, st.last_lsn, st.durable_lsn, st.commits), (0, 0, 0, 0));
    assert_eq!((st.epoch, st.active_segment_no, st.wal_segments), (1, 1, 1));
    assert!(st.poisoned.is_none());
    assert_eq!(st.recovery.records_replayed, 0);

    for i in 0..10 {
        s.put("a", &format!("k{i}"), &i).unwrap();
    }
    for i in 0..4 {
        s.put("b", &format!("k{i}"), &i).unwrap();
    }
    s.delete("a", "k0").unwrap();
    let st = s.stats();
    assert_eq!(st.documents, 13);
    assert_eq!(st.documents_per_collection.get("a"), Some(&9));
    assert_eq!(st.documents_per_collection.get("b"), Some(&4));
    assert_eq!((st.last_lsn, st.written_lsn, st.durable_lsn), (15, 15, 15));
    assert_eq!(st.commits, 15);
    assert!(st.groups >= 1 && st.groups <= 15);
    assert!(st.fsyncs >= 1 && st.fsyncs <= 15);
    assert!(st.avg_group_size >= 1.0);
    assert!(st.max_group_size >= 1);
    assert!(st.wal_bytes_written > 15 * 28, "each record has at least its 28-byte header");
    assert!(st.wal_bytes >= 64 + st.wal_bytes_written);
    assert!(st.commit_latency_max_us >= st.commit_latency_mean_us);
    assert!(st.commit_latency_p99_upper_bound_us >= st.commit_latency_p50_upper_bound_us);
    s.close().unwrap();

    let s = open(&dir);
    let st = s.stats();
    assert_eq!((st.epoch, st.active_segment_no, st.wal_segments), (2, 2, 2));
    assert_eq!((st.last_lsn, st.durable_lsn, st.commits, st.fsyncs), (15, 15, 0, 0));
    assert_eq!(st.recovery.records_replayed, 15);
    assert_eq!(st.recovery.segments_read, 1);
    assert_eq!(st.documents, 13);
}

#[test]
fn timestamps_never_go_backwards_even_when_the_clock_does() {
    let t = tmp();
    let dir = store_dir(&t);
    let clock = ManualClock::new(5_000_000);
    let opts = || Options { clock: Arc::new(clock.clone()), ..Options::default() };
    let s = Store::open_with(&dir, opts()).unwrap();
    s.put("c", "a", &1).unwrap();
    clock.set_ns(1_000);
    s.put("c", "b", &1).unwrap();
    let ts = |s: &Store, k: &str| s.get::<i32>("c", k).unwrap().unwrap().written_unix_ns;
    assert_eq!((ts(&s, "a"), ts(&s, "b")), (5_000_000, 5_000_000));
    drop(s);
    // Across a reopen too: the log's last timestamp is the floor.
    let s = Store::open_with(&dir, opts()).unwrap();
    s.put("c", "c", &1).unwrap();
    assert_eq!(ts(&s, "c"), 5_000_000);
    clock.set_ns(9_000_000);
    s.put("c", "d", &1).unwrap();
    assert_eq!(ts(&s, "d"), 9_000_000);
}

#[test]
fn store_is_send_sync_and_clones_share_one_store() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Store>();
    let t = tmp();
    let s = open(&store_dir(&t));
    let c = s.clone();
    std::thread::spawn(move || c.put("c", "ключ", &"from another thread").unwrap()).join().unwrap();
    assert_eq!(s.get::<String>("c", "ключ").unwrap().unwrap().value, "from another thread");
}

#[test]
fn many_small_segments_replay_in_order() {
    let t = tmp();
    let dir = store_dir(&t);
    let opts = || Options { segment_target_bytes: 512, ..Options::default() };
    let s = Store::open_with(&dir, opts()).unwrap();
    for i in 0..150u64 {
        s.put("c", &format!("k{}", i % 10), &i).unwrap();
    }
    let segs = s.stats().wal_segments;
    assert!(segs > 5, "only {segs} segments: the log did not roll");
    drop(s);
    let s = Store::open_with(&dir, opts()).unwrap();
    let st = s.stats();
    assert_eq!((st.last_lsn, st.recovery.records_replayed, st.documents), (150, 150, 10));
    assert_eq!(st.recovery.segments_read, segs);
    for k in 0..10u64 {
        let d = s.get::<u64>("c", &format!("k{k}")).unwrap().unwrap();
        assert_eq!((d.value, d.version), (140 + k, 15));
    }
}

#[test]
fn store_directory_is_private_and_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("new-store");
    let store =
        Store::open_with(&dir, Options { auto_compact: false, ..Options::default() }).unwrap();
    store.put("c", "k", &1).unwrap();
    store.compact().unwrap().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("wal")), 0o700);
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap().chain(std::fs::read_dir(dir.join("wal")).unwrap())
    {
        let path = entry.unwrap().path();
        if path.is_file() {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            files += 1;
        }
    }
    assert!(files >= 4, "LOCK, STORE, a snapshot and a segment");
}
