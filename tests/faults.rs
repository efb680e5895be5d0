//! I/O failures injected through the seam (`FaultyIo`), deterministically, at chosen
//! operations: failing fsyncs, ENOSPC, short writes, torn writes, and a fault at every step of
//! `open`.
//!
//! The contract checked: a failed write or fsync fails every write that waited on it and
//! poisons the store (`Error::Poisoned` naming the operation and OS error, `stats().poisoned`),
//! reads keep working and show none of the failed writes, and reopening with the real file
//! system replays the log with every acknowledged write present. Writes that failed were never
//! acknowledged; after a failed fsync their bytes may still have reached the file, so after a
//! reopen they may be present or absent, but never damaged. Short writes are completed without
//! any error. A gated fsync (`common::GatedIo`) with writers queued behind it shows that when it
//! fails, every one of them fails. Every open that hits a fault returns an error (never panics), and a later clean
//! open loses nothing that was acknowledged before.

mod common;

use std::fs;
use std::path::Path;
use std::sync::Barrier;

use common::{
    copy_dir, faulty_options, gated_store, open, queue_behind_gated_fsync, segments, store_dir, tmp,
};
use walden::io::{Fault, FaultError, FaultOp, FaultyIo};
use walden::{Error, IoOp, PoisonCause, Store};

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// Opens `dir` through `io` and acknowledges puts of `ack0`..`ack{n-1}`.
fn store_with_acked(dir: &Path, io: &FaultyIo, n: usize) -> Store {
    let s = Store::open_with(dir, faulty_options(io)).unwrap();
    for i in 0..n {
        assert_eq!(s.put("c", &format!("ack{i}"), &i).unwrap(), 1);
    }
    s
}

/// A store in a fresh temporary directory, through a new `FaultyIo`, with `n` acknowledged puts.
fn setup(n: usize) -> (tempfile::TempDir, std::path::PathBuf, FaultyIo, Store) {
    let t = tmp();
    let dir = store_dir(&t);
    let io = FaultyIo::new();
    let s = store_with_acked(&dir, &io, n);
    (t, dir, io, s)
}

fn assert_acked(s: &Store, n: usize) {
    for i in 0..n {
        let d = s.get::<usize>("c", &format!("ack{i}")).unwrap();
        assert_eq!(d.map(|d| (d.value, d.version)), Some((i, 1)), "acknowledged ack{i} lost");
    }
}

fn next(io: &FaultyIo, op: FaultOp, error: FaultError, sticky: bool) -> Fault {
    Fault { op, nth: io.count(op) + 1, error, sticky }
}

fn poison_cause(r: walden::Result<u64>) -> PoisonCause {
    match r {
        Err(Error::Poisoned { cause }) => cause,
        other => panic!("expected Poisoned, got {other:?}"),
    }
}

/// A poisoned store refuses every kind of write and keeps serving reads.
fn assert_poisoned(s: &Store, op: IoOp, errno: i32, acked: usize) {
    let cause = s.stats().poisoned.expect("stats report the poisoning");
    assert_eq!((cause.op, cause.raw_os_error), (op, Some(errno)));
    assert!(matches!(s.put("c", "later", &1), Err(Error::Poisoned { .. })));
    assert!(matches!(s.insert("c", "later2", &1), Err(Error::Poisoned { .. })));
    assert!(matches!(s.delete("c", "ack0"), Err(Error::Poisoned { .. })));
    assert!(matches!(s.update::<usize, _>("c", "ack0", |v| v), Err(Error::Poisoned { .. })));
    assert!(matches!(s.sync(), Err(Error::Poisoned { .. })));
    assert!(s.get::<usize>("c", "later").unwrap().is_none());
    assert_acked(s, acked);
    assert_eq!(s.scan::<serde_json::Value>("c").unwrap().count(), acked);
}

#[test]
fn failing_fsync_fails_the_write_and_poisons_the_store() {
    let (_t, dir, io, s) = setup(5);
    io.inject(next(&io, FaultOp::Sync, FaultError::Eio, false));
    let cause = poison_cause(s.put("c", "failed", &99));
    assert_eq!((cause.op, cause.raw_os_error), (IoOp::Sync, Some(EIO)));
    assert!(s.get::<i32>("c", "failed").unwrap().is_none(), "a failed write is visible");
    assert_poisoned(&s, IoOp::Sync, EIO, 5);
    assert_eq!(io.fired().len(), 1, "the fsync must not be retried");
    drop(s);

    let s = open(&dir);
    assert_acked(&s, 5);
    // The failed write's bytes reached the file before the fsync failed; it may replay, intact.
    if let Some(d) = s.get::<i32>("c", "failed").unwrap() {
        assert_eq!((d.value, d.version), (99, 1));
    }
    assert!(s.stats().poisoned.is_none());
    s.put("c", "after", &1).unwrap();
}

#[test]
fn every_writer_waiting_on_a_failed_fsync_fails() {
    const WRITERS: usize = 16;
    let (_t, dir, io, s) = setup(3);
    io.inject(next(&io, FaultOp::Sync, FaultError::Eio, false));
    let barrier = Barrier::new(WRITERS);
    let results: Vec<walden::Result<u64>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (s, barrier) = (&s, &barrier);
                sc.spawn(move || {
                    barrier.wait();
                    s.put("c", &format!("w{w}"), &w)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (w, r) in results.into_iter().enumerate() {
        let cause = poison_cause(r);
        assert_eq!(cause.op, IoOp::Sync, "writer {w}");
        assert!(s.get::<usize>("c", &format!("w{w}")).unwrap().is_none(), "writer {w} visible");
    }
    assert_poisoned(&s, IoOp::Sync, EIO, 3);
    assert_eq!(io.fired().len(), 1, "exactly one fsync failed and none was retried");
    drop(s);
    let s = open(&dir);
    assert_acked(&s, 3);
}

#[test]
fn enospc_on_write_is_a_clear_error_and_loses_nothing() {
    let (_t, dir, io, s) = setup(4);
    io.inject(next(&io, FaultOp::Write, FaultError::Enospc, true));
    let cause = poison_cause(s.put("c", "nospace", &1));
    assert_eq!((cause.op, cause.raw_os_error), (IoOp::Write, Some(ENOSPC)));
    assert_eq!(cause.kind, std::io::ErrorKind::StorageFull);
    assert!(cause.path.starts_with(dir.join("wal")), "{cause:?}");
    assert_poisoned(&s, IoOp::Write, ENOSPC, 4);
    drop(s);

    // Still full: the open fails with a clear error and changes nothing that matters.
    match Store::open_with(&dir, faulty_options(&io)) {
        Err(Error::NoSpaceAtOpen { op: IoOp::Write, path, .. }) => {
            assert!(path.starts_with(dir.join("wal")), "{path:?}")
        }
        other => panic!("expected NoSpaceAtOpen for a write, got {other:?}"),
    }
    // Space freed: everything acknowledged is there, the failed write is not.
    let s = open(&dir);
    assert_acked(&s, 4);
    assert!(s.get::<i32>("c", "nospace").unwrap().is_none());
    assert_eq!(s.put("c", "nospace", &1).unwrap(), 1);
}

#[test]
fn short_writes_are_completed_without_error() {
    let (_t, dir, io, s) = setup(2);
    let before = io.count(FaultOp::Write);
    io.inject(next(&io, FaultOp::Write, FaultError::ShortWrite { bytes: 3 }, true));
    let mut b = walden::Batch::new();
    b.put("c", "batch1", &"x".repeat(500)).put("d", "batch2", &[1, 2, 3]);
    s.commit(b).unwrap();
    for i in 0..10 {
        assert_eq!(s.put("c", "short", &i).unwrap(), i + 1);
    }
    assert!(io.count(FaultOp::Write) - before > 100, "the writes were not split");
    assert!(s.stats().poisoned.is_none());
    drop(s);
    let s = open(&dir);
    assert!(s.stats().recovery.torn_tail.is_none());
    assert_acked(&s, 2);
    let short = s.get::<u64>("c", "short").unwrap().unwrap();
    assert_eq!((short.value, short.version), (9, 10));
    assert_eq!(s.get::<String>("c", "batch1").unwrap().unwrap().value.len(), 500);
    assert_eq!(s.get::<Vec<i32>>("d", "batch2").unwrap().unwrap().value, [1, 2, 3]);
}

#[test]
fn torn_write_poisons_and_reopen_cuts_the_torn_tail() {
    let (_t, dir, io, s) = setup(3);
    let seg = segments(&dir).last().unwrap().clone();
    let valid_len = fs::metadata(&seg).unwrap().len();
    io.inject(next(&io, FaultOp::Write, FaultError::TornWrite { bytes: 10 }, false));
    let cause = poison_cause(s.put("c", "torn", &"x".repeat(100)));
    assert_eq!((cause.op, cause.raw_os_error), (IoOp::Write, Some(EIO)));
    assert_poisoned(&s, IoOp::Write, EIO, 3);
    drop(s);
    assert_eq!(fs::metadata(&seg).unwrap().len(), valid_len + 10);

    let s = open(&dir);
    let torn = s.stats().recovery.torn_tail.expect("the torn write is cut at reopen");
    assert_eq!((torn.path, torn.offset, torn.len), (seg.clone(), valid_len, 10));
    assert_eq!(fs::metadata(&seg).unwrap().len(), valid_len);
    assert_acked(&s, 3);
    assert!(s.get::<String>("c", "torn").unwrap().is_none());
    assert_eq!(s.put("c", "torn", &"again").unwrap(), 1);
    drop(s);
    assert!(open(&dir).stats().recovery.torn_tail.is_none());
}

/// A fault in the middle of a group that spans a segment roll: the records of the new segment
/// must not reach readers either.
#[test]
fn failure_while_rolling_to_a_new_segment_poisons() {
    let t = tmp();
    let dir = store_dir(&t);
    let io = FaultyIo::new();
    let opts = walden::Options { segment_target_bytes: 512, ..faulty_options(&io) };
    let s = Store::open_with(&dir, opts).unwrap();
    let mut acked = 0;
    while segments(&dir).len() < 2 {
        s.put("c", &format!("ack{acked}"), &acked).unwrap();
        acked += 1;
    }
    // Fill the second segment up to its target, then fail the open of the third.
    let mut results = Vec::new();
    io.inject(next(&io, FaultOp::Open, FaultError::Eio, false));
    for i in 0..100 {
        let r = s.put("c", &format!("more{i}"), &i);
        let failed = r.is_err();
        results.push(r);
        if failed {
            break;
        }
    }
    let last = results.pop().unwrap();
    assert!(matches!(last, Err(Error::Poisoned { .. })), "{last:?}");
    let more_acked = results.len();
    drop(s);
    let s = open(&dir);
    assert_acked(&s, acked);
    for i in 0..more_acked {
        assert_eq!(s.get::<usize>("c", &format!("more{i}")).unwrap().unwrap().value, i);
    }
}

/// Store states to open with faults: new, one with a torn tail, one whose last segment is empty.
fn templates(root: &Path) -> Vec<(std::path::PathBuf, usize)> {
    let fresh = root.join("fresh");
    let torn = root.join("torn");
    let empty_last = root.join("empty-last");
    for (dir, extra_open) in [(&torn, false), (&empty_last, true)] {
        let s = open(dir);
        for i in 0..4 {
            s.put("c", &format!("ack{i}"), &i).unwrap();
        }
        s.close().unwrap();
        if extra_open {
            open(dir).close().unwrap();
        }
    }
    let seg = segments(&torn).last().unwrap().clone();
    let mut bytes = fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[7u8; 40]);
    fs::write(&seg, bytes).unwrap();
    vec![(fresh, 0), (torn, 4), (empty_last, 4)]
}

#[test]
fn a_fault_at_any_step_of_open_is_an_error_and_loses_nothing() {
    let t = tmp();
    let ops = [
        FaultOp::Write,
        FaultOp::Sync,
        FaultOp::SyncDir,
        FaultOp::Open,
        FaultOp::Read,
        FaultOp::Rename,
        FaultOp::Remove,
        FaultOp::Truncate,
        FaultOp::Dir,
    ];
    let errors = [FaultError::Eio, FaultError::Enospc, FaultError::TornWrite { bytes: 5 }];
    let mut cases = 0;
    for (ti, (tpl, acked)) in templates(t.path()).into_iter().enumerate() {
        for op in ops {
            for error in errors {
                if op != FaultOp::Write && matches!(error, FaultError::TornWrite { .. }) {
                    continue;
                }
                for nth in 1.. {
                    let ctx = format!("template {ti}, {op:?} #{nth} fails with {error:?}");
                    let dir = t.path().join("case");
                    if tpl.exists() {
                        copy_dir(&tpl, &dir);
                    }
                    let io = FaultyIo::new();
                    io.inject(Fault { op, nth, error, sticky: false });
                    let r = Store::open_with(&dir, faulty_options(&io));
                    let fired = !io.fired().is_empty();
                    match (&r, fired) {
                        (Ok(_), false) => {}
                        (Err(e), true) => assert!(
                            matches!(
                                e,
                                Error::Io { .. }
                                    | Error::Corruption { .. }
                                    | Error::NoSpaceAtOpen { .. }
                            ),
                            "{ctx}: {e:?}"
                        ),
                        (r, fired) => panic!("{ctx}: fired {fired}, open gave {r:?}"),
                    }
                    drop(r);
                    let s = Store::open(&dir)
                        .unwrap_or_else(|e| panic!("{ctx}: clean reopen failed: {e:?}"));
                    assert_acked(&s, acked);
                    assert_eq!(s.stats().documents, acked as u64, "{ctx}");
                    s.put("c", "after", &1).unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
                    drop(s);
                    fs::remove_dir_all(&dir).unwrap();
                    cases += 1;
                    if !fired {
                        break;
                    }
                }
            }
        }
    }
    assert!(cases > 50, "only {cases} cases ran");
}

#[test]
fn faulty_io_is_only_a_seam_over_the_real_files() {
    // With no fault planned, a store through FaultyIo behaves like one on RealIo.
    let (_t, dir, io, s) = setup(3);
    assert!(io.count(FaultOp::Write) >= 3 && io.count(FaultOp::Sync) >= 3);
    drop(s);
    let s = Store::open_with(&dir, faulty_options(&io)).unwrap();
    assert_acked(&s, 3);
}

/// A `Buffered` store through a new `FaultyIo` that flushes every `interval_ms`.
fn buffered_setup(interval_ms: u64) -> (tempfile::TempDir, std::path::PathBuf, FaultyIo, Store) {
    let t = tmp();
    let dir = store_dir(&t);
    let io = FaultyIo::new();
    let opts = walden::Options {
        durability: walden::Durability::Buffered,
        buffered_flush_interval_ms: interval_ms,
        ..faulty_options(&io)
    };
    let s = Store::open_with(&dir, opts).unwrap();
    (t, dir, io, s)
}

#[test]
fn failing_background_flush_poisons_the_store() {
    let (_t, dir, io, s) = buffered_setup(1);
    io.inject(next(&io, FaultOp::Sync, FaultError::Eio, true));
    // Acknowledged: written to the OS. The flusher's fsync then fails.
    assert_eq!(s.put("c", "ack0", &0usize).unwrap(), 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.stats().poisoned.is_none() {
        assert!(std::time::Instant::now() < deadline, "the failed flush did not poison");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_poisoned(&s, IoOp::Sync, EIO, 1);
    drop(s);
    // The write reached the page cache before the failed fsync: a reopen replays it.
    assert_acked(&open(&dir), 1);
}

#[test]
fn close_reports_a_failing_final_fsync() {
    let (_t, dir, io, s) = buffered_setup(3_600_000);
    s.put("c", "ack0", &0usize).unwrap();
    io.inject(next(&io, FaultOp::Sync, FaultError::Eio, false));
    match s.close() {
        Err(Error::Poisoned { cause }) => assert_eq!(cause.op, IoOp::Sync),
        other => panic!("close hid a failed fsync: {other:?}"),
    }
    assert_acked(&open(&dir), 1);
}

/// One writer's fsync is held at a gate while 15 more queue behind it, then it fails: the first
/// writer and every queued one fail, none of them is visible, and the store is poisoned.
#[test]
fn every_writer_queued_behind_a_failing_fsync_fails() {
    const QUEUED: usize = 15;
    let t = tmp();
    let dir = store_dir(&t);
    let (s, gate, readings) = gated_store(&dir);
    for i in 0..3usize {
        s.put("c", &format!("ack{i}"), &i).unwrap();
    }
    let (first, others) = queue_behind_gated_fsync(&s, &gate, &readings, QUEUED, true);
    assert_eq!(poison_cause(first).op, IoOp::Sync);
    for (i, r) in others.into_iter().enumerate() {
        assert_eq!(poison_cause(r).op, IoOp::Sync, "queued writer {i}");
    }
    assert_eq!(s.count("g").unwrap(), 0, "a failed write is visible");
    assert_poisoned(&s, IoOp::Sync, EIO, 3);
    drop(s);
    let s = open(&dir);
    assert_acked(&s, 3);
}
