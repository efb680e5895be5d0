//! Bad input gets a typed error and changes nothing: names every path refuses alike, handles
//! of a closed store, non-finite numbers, options out of range, paths and directories that are
//! not stores. Each test checks the error's variant and fields, and that nothing was written
//! (the log position did not move, or the directory is byte-for-byte what it was).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{open, store_dir, tmp};
use walden::{BreakerConfig, Error, LimitKind, Options, Quota, Store};

fn last_lsn(s: &Store) -> u64 {
    s.stats().last_lsn
}

fn is_invalid_collection(r: &walden::Result<impl std::fmt::Debug>, name: &str) -> bool {
    matches!(r, Err(Error::InvalidName { what: LimitKind::CollectionName, name: n, .. }) if n == name)
}

#[test]
fn dot_and_dot_dot_are_not_collection_names() {
    let t = tmp();
    let s = open(&store_dir(&t));
    for name in [".", ".."] {
        assert!(is_invalid_collection(&s.put(name, "k", &1), name), "put into {name:?}");
        assert!(is_invalid_collection(&s.get::<u64>(name, "k"), name), "get from {name:?}");
        assert!(is_invalid_collection(&s.count(name), name), "count of {name:?}");
    }
    // Names merely containing dots stay valid.
    assert_eq!(s.put("a.b", "k", &1).unwrap(), 1);
    assert_eq!(s.put("...", "k", &1).unwrap(), 1);
    assert_eq!(last_lsn(&s), 2);
}

#[test]
fn every_path_refuses_an_invalid_collection_name_with_the_same_error() {
    let t = tmp();
    let s = open(&store_dir(&t));
    s.put("c", "k", &1).unwrap();
    for name in ["/", "", "a/b", "..", "é"] {
        let expected = s.get::<u64>(name, "k").unwrap_err().to_string();
        let same = |what: &str, e: Error| assert_eq!(e.to_string(), expected, "{what}({name:?})");
        same("count", s.count(name).unwrap_err());
        same("scan", s.scan::<u64>(name).err().unwrap());
        same("scan_prefix", s.scan_prefix::<u64>(name, "k").err().unwrap());
        same("put", s.put(name, "k", &1).unwrap_err());
        same("delete", s.delete(name, "k").unwrap_err());
        same("update", s.update::<u64, _>(name, "k", |_| Some(1)).unwrap_err());
        same("set_validator", s.set_validator(name, |_| Ok(())).unwrap_err());
        same("clear_validator", s.clear_validator(name).unwrap_err());
    }
    assert_eq!(last_lsn(&s), 1);
}

#[test]
fn a_clone_kept_after_close_never_reads_stale_data() {
    let t = tmp();
    let dir = store_dir(&t);
    let s = open(&dir);
    s.put("c", "k", &"old").unwrap();
    let kept = s.clone();
    s.close().unwrap();
    // Another opener writes a new value...
    let other = open(&dir);
    other.put("c", "k", &"new").unwrap();
    // ...and the kept clone must not answer with the old one.
    assert!(matches!(kept.get::<String>("c", "k"), Err(Error::Closed)));
    assert!(matches!(kept.scan::<String>("c").err(), Some(Error::Closed)));
    assert!(matches!(kept.scan_prefix::<String>("c", "").err(), Some(Error::Closed)));
    assert!(matches!(kept.count("c"), Err(Error::Closed)));
    assert!(matches!(kept.collections(), Err(Error::Closed)));
    assert!(matches!(kept.put("c", "k", &"x"), Err(Error::Closed)));
    assert!(matches!(kept.update::<String, _>("c", "k", |_| None), Err(Error::Closed)));
    assert!(matches!(kept.sync(), Err(Error::Closed)));
    assert!(matches!(kept.compact(), Err(Error::Closed)));
    assert!(matches!(kept.set_validator("c", |_| Ok(())), Err(Error::Closed)));
    assert!(matches!(kept.rate_limiter("l", Quota::per_second(1)), Err(Error::Closed)));
    assert!(matches!(kept.breaker("b", BreakerConfig::default()), Err(Error::Closed)));
    assert!(matches!(kept.export_all_json(Vec::new()), Err(Error::Closed)));
    assert!(matches!(kept.export_json("c", Vec::new()), Err(Error::Closed)));
    assert!(matches!(kept.backup_to(t.path().join("backup")), Err(Error::Closed)));
    assert_eq!(other.get::<String>("c", "k").unwrap().unwrap().value, "new");
}

#[test]
fn limiter_and_breaker_handles_of_a_closed_store_are_closed() {
    let t = tmp();
    let s = open(&store_dir(&t));
    let limiter = s.rate_limiter("login", Quota::per_minute(1)).unwrap();
    assert!(limiter.check("ip").unwrap().allowed);
    assert!(!limiter.check("ip").unwrap().allowed, "a denial writes nothing");
    let breaker = s.breaker("db", BreakerConfig::default()).unwrap();
    let permit = match breaker.try_acquire().unwrap() {
        walden::Acquire::Permitted(p) => p,
        other => panic!("expected a permit, got {other:?}"),
    };
    s.clone().close().unwrap();
    // A denial reads only memory; it must still not answer for a closed store.
    assert!(matches!(limiter.check("ip"), Err(Error::Closed)));
    assert!(matches!(limiter.peek("ip"), Err(Error::Closed)));
    assert!(matches!(limiter.check("other"), Err(Error::Closed)));
    assert!(matches!(breaker.try_acquire(), Err(Error::Closed)));
    assert!(matches!(permit.success(), Err(Error::Closed)));
    assert!(matches!(breaker.reset(), Err(Error::Closed)));
    assert!(matches!(s.get::<u64>("c", "k"), Err(Error::Closed)));
}

#[test]
fn every_option_out_of_range_is_refused_at_open_naming_the_field() {
    use walden::limits::{MAX_DOCUMENT_BYTES_LIMIT, MAX_KEY_BYTES_LIMIT};
    let d = Options::default;
    let cases: Vec<(&str, Options)> = vec![
        ("max_key_bytes", Options { max_key_bytes: 0, ..d() }),
        ("max_key_bytes", Options { max_key_bytes: MAX_KEY_BYTES_LIMIT + 1, ..d() }),
        ("max_key_bytes", Options { max_key_bytes: usize::MAX, ..d() }),
        ("max_document_bytes", Options { max_document_bytes: 0, ..d() }),
        ("max_document_bytes", Options { max_document_bytes: MAX_DOCUMENT_BYTES_LIMIT + 1, ..d() }),
        ("max_document_bytes", Options { max_document_bytes: usize::MAX, ..d() }),
        ("segment_target_bytes", Options { segment_target_bytes: 0, ..d() }),
        ("buffered_flush_interval_ms", Options { buffered_flush_interval_ms: 0, ..d() }),
        ("buffered_flush_interval_ms", Options { buffered_flush_interval_ms: u64::MAX, ..d() }),
        ("compaction_check_interval_ms", Options { compaction_check_interval_ms: 0, ..d() }),
        (
            "compaction_wal_to_snapshot_ratio",
            Options { compaction_wal_to_snapshot_ratio: f64::NAN, ..d() },
        ),
        (
            "compaction_wal_to_snapshot_ratio",
            Options { compaction_wal_to_snapshot_ratio: -1.0, ..d() },
        ),
        (
            "compaction_wal_to_snapshot_ratio",
            Options { compaction_wal_to_snapshot_ratio: f64::INFINITY, ..d() },
        ),
        ("max_commit_delay", Options { max_commit_delay: Some(Duration::MAX), ..d() }),
        ("max_commit_delay", Options { max_commit_delay: Some(Duration::from_secs(2)), ..d() }),
    ];
    for (field, options) in cases {
        let t = tmp();
        let dir = store_dir(&t);
        match Store::open_with(&dir, options) {
            Err(Error::InvalidOption { field: f, accepted, .. }) => {
                assert_eq!(f, field);
                assert!(!accepted.is_empty());
            }
            other => panic!("{field}: expected InvalidOption, got {other:?}"),
        }
        assert!(!dir.exists(), "{field}: a refused open created the directory");
    }
    // The edges of each range open.
    let t = tmp();
    let edges = Options {
        max_key_bytes: MAX_KEY_BYTES_LIMIT,
        max_document_bytes: MAX_DOCUMENT_BYTES_LIMIT,
        segment_target_bytes: 1,
        compaction_wal_to_snapshot_ratio: 0.0,
        max_commit_delay: Some(Duration::from_secs(1)),
        ..d()
    };
    Store::open_with(store_dir(&t), edges).unwrap().close().unwrap();
}

#[test]
fn a_lock_timeout_of_duration_max_waits_forever_without_panicking() {
    let t = tmp();
    let dir = store_dir(&t);
    let holder = open(&dir);
    let waiter = {
        let dir = dir.clone();
        std::thread::spawn(move || {
            Store::open_with(
                &dir,
                Options { lock_timeout: Some(Duration::MAX), ..Options::default() },
            )
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(!waiter.is_finished(), "the waiter gave up (or panicked) while the lock was held");
    holder.close().unwrap();
    waiter.join().expect("the waiter panicked").expect("the waiter opened").close().unwrap();
}

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Reading {
    sensor: String,
    celsius: Option<f64>,
    history: Vec<f64>,
}

fn assert_non_finite<T: std::fmt::Debug>(r: walden::Result<T>, key: &str, at: &str) {
    match r {
        Err(Error::NonFiniteNumber { collection, key: k, path }) => {
            assert_eq!((collection.as_str(), k.as_str(), path.as_str()), ("sensors", key, at));
        }
        other => panic!("expected NonFiniteNumber for {key}, got {other:?}"),
    }
}

#[test]
fn non_finite_numbers_are_refused_by_every_write_before_anything_is_logged() {
    let t = tmp();
    let s = open(&store_dir(&t));
    let nan = Reading { sensor: "a".into(), celsius: Some(f64::NAN), history: vec![] };
    let inf = Reading { sensor: "a".into(), celsius: None, history: vec![1.0, f64::INFINITY] };
    assert_non_finite(s.put("sensors", "nan", &nan), "nan", "/celsius");
    assert_non_finite(s.put("sensors", "inf", &inf), "inf", "/history/1");
    assert_non_finite(s.put("sensors", "top", &f64::NEG_INFINITY), "top", "");
    assert_non_finite(s.insert("sensors", "nan", &nan), "nan", "/celsius");
    let mut b = walden::Batch::new();
    b.put("sensors", "ok", &1.5).put("sensors", "nan", &nan);
    assert_non_finite(s.commit(b), "nan", "/celsius");
    let v = s.put("sensors", "u", &Reading { sensor: "u".into(), celsius: None, history: vec![] });
    assert_eq!(v.unwrap(), 1);
    let r = s.update::<Reading, _>("sensors", "u", |r| {
        let mut r = r.unwrap();
        r.celsius = Some(f64::INFINITY);
        Some(r)
    });
    assert_non_finite(r, "u", "/celsius");
    assert_eq!(last_lsn(&s), 1, "a refused write was logged");
    assert!(s.get::<Reading>("sensors", "nan").unwrap().is_none());
    // A real `None` is still a null, and finite floats round-trip.
    assert_eq!(s.get::<Reading>("sensors", "u").unwrap().unwrap().value.celsius, None);
    let e = s.put("sensors", "nan", &nan).unwrap_err().to_string();
    assert!(e.contains("sensors/nan") && e.contains("/celsius") && e.contains("NaN"), "{e}");
}

#[test]
fn enforce_turns_a_denial_into_an_error_and_spends_nothing() {
    let t = tmp();
    let s = open(&store_dir(&t));
    let api = s.rate_limiter("api", Quota::per_minute(2)).unwrap();
    assert_eq!(api.enforce("ip").unwrap().remaining, 1);
    assert!(api.enforce("ip").is_ok());
    let before = last_lsn(&s);
    match api.enforce("ip") {
        Err(Error::RateLimited { limiter, key, retry_after }) => {
            assert_eq!((limiter.as_str(), key.as_str()), ("api", "ip"));
            assert_eq!(retry_after.as_secs_f64().round(), 30.0);
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    // A denial spends nothing; the one record it may write is the key's violation history
    // (at most one per key per interval, docs/LIMITERS.md).
    assert!(last_lsn(&s) <= before + 1, "a denial wrote more than its violation history");
    assert!(matches!(api.enforce("ip"), Err(Error::RateLimited { .. })), "still denied");
    assert!(api.enforce("other-ip").is_ok(), "keys are independent");
}

#[test]
fn an_empty_path_is_refused_and_creates_nothing() {
    let lock_here = std::path::Path::new("LOCK");
    assert!(!lock_here.exists());
    match Store::open("") {
        Err(Error::InvalidPath { path, .. }) => assert_eq!(path, std::path::PathBuf::new()),
        other => panic!("expected InvalidPath, got {other:?}"),
    }
    assert!(!lock_here.exists(), "open(\"\") created LOCK in the current directory");
}

fn assert_not_a_store(dir: &std::path::Path, mentions: &str) {
    let before = common::dir_digest(dir);
    match Store::open(dir) {
        Err(Error::NotAStore { path, found }) => {
            assert_eq!(path, dir);
            assert!(found.contains(mentions), "{found:?} does not mention {mentions:?}");
        }
        other => panic!("expected NotAStore for {mentions}, got {other:?}"),
    }
    assert_eq!(common::dir_digest(dir), before, "a refused open changed the directory");
    assert!(!dir.join("LOCK").exists() && !dir.join("wal").exists(), "created LOCK or wal/");
}

#[test]
fn a_directory_that_is_not_a_store_is_refused_and_left_untouched() {
    let t = tmp();
    // A project folder.
    let project = t.path().join("project");
    std::fs::create_dir_all(project.join(".git")).unwrap();
    std::fs::write(project.join("README"), "hello").unwrap();
    assert_not_a_store(&project, "README");
    // A foreign STORE file.
    let foreign = t.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("STORE"), "my own store format").unwrap();
    assert_not_a_store(&foreign, "not a walden identity file");
    // A single stray file.
    let stray = t.path().join("stray");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::write(stray.join("notes.txt"), "").unwrap();
    assert_not_a_store(&stray, "notes.txt");
    // Many: the first few are named.
    let many = t.path().join("many");
    std::fs::create_dir_all(&many).unwrap();
    for i in 0..9 {
        std::fs::write(many.join(format!("f{i}")), "").unwrap();
    }
    assert_not_a_store(&many, "and 4 more");
}

#[test]
fn empty_directories_and_a_bare_lost_and_found_open_as_new_stores() {
    let t = tmp();
    let empty = t.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    open(&empty).close().unwrap();
    let mount = t.path().join("mount");
    std::fs::create_dir_all(mount.join("lost+found")).unwrap();
    let s = open(&mount);
    s.put("c", "k", &1).unwrap();
    s.close().unwrap();
    // And the stores reopen (they are stores now, with STORE).
    open(&empty).close().unwrap();
    assert_eq!(open(&mount).get::<u64>("c", "k").unwrap().unwrap().value, 1);
}

#[test]
fn locked_names_the_holder() {
    let t = tmp();
    let dir = store_dir(&t);
    let _holder = open(&dir);
    match Store::open(&dir) {
        Err(e @ Error::Locked { .. }) => {
            let Error::Locked { path, holder } = &e else { unreachable!() };
            assert_eq!(path, &dir);
            let h = holder.as_ref().expect("the holder wrote who it is");
            assert_eq!(h.pid, std::process::id());
            assert!(!h.host.is_empty() && h.since_unix_ns > 0);
            let msg = e.to_string();
            assert!(msg.contains(&format!("process {}", h.pid)), "{msg}");
        }
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[test]
fn reopen_on_a_full_disk_says_space_must_be_freed_and_what_needs_it() {
    use walden::io::{Fault, FaultError, FaultOp, FaultyIo};
    let t = tmp();
    let dir = store_dir(&t);
    let s = open(&dir);
    s.put("c", "k", &1).unwrap();
    drop(s);
    // A torn tail: the open must save it to a .torn file before cutting it.
    let seg = common::segments(&dir).last().unwrap().clone();
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, &[0xAB; 10]).unwrap();
    drop(f);
    let io = FaultyIo::new();
    io.inject(Fault { op: FaultOp::Write, nth: 1, error: FaultError::Enospc, sticky: true });
    let options = Options { io: Arc::new(io), ..Options::default() };
    match Store::open_with(&dir, options) {
        Err(e @ Error::NoSpaceAtOpen { .. }) => {
            let msg = e.to_string();
            let Error::NoSpaceAtOpen { dir: d, path, needed_for, .. } = e else { unreachable!() };
            assert_eq!(d, dir);
            assert!(path.to_string_lossy().contains(".torn-"), "{path:?}");
            assert!(needed_for.contains("torn tail"), "{needed_for}");
            assert!(msg.contains("free space"), "{msg}");
        }
        other => panic!("expected NoSpaceAtOpen, got {other:?}"),
    }
    // Nothing was lost: with space, the open cuts the tail and has the document.
    let s = open(&dir);
    assert!(s.stats().recovery.torn_tail.is_some());
    assert_eq!(s.get::<u64>("c", "k").unwrap().unwrap().value, 1);
}

#[test]
fn creating_a_store_on_a_full_disk_says_so() {
    use walden::io::{Fault, FaultError, FaultOp, FaultyIo};
    let t = tmp();
    let io = FaultyIo::new();
    io.inject(Fault { op: FaultOp::Write, nth: 1, error: FaultError::Enospc, sticky: true });
    let options = Options { io: Arc::new(io), ..Options::default() };
    match Store::open_with(store_dir(&t), options) {
        Err(Error::NoSpaceAtOpen { needed_for, .. }) => assert!(needed_for.contains("identity")),
        other => panic!("expected NoSpaceAtOpen, got {other:?}"),
    }
}
